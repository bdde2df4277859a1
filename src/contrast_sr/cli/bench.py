"""``contrast-sr bench``: model speed / memory / FLOPs with ratios against the first model."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

DEFAULT_MODELS = "hat_light,mamba,baseline"


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench",
        help="speed, memory, parameters and FLOPs of models (ratios vs the first)",
        description="Random inputs, min time of several steps after warm-up; untrained "
        "registered variants (the weights do not change speed) or checkpoint paths.",
    )
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"a,b,... (default {DEFAULT_MODELS})")
    p.add_argument("--mode", choices=("infer", "train"), default="infer")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=64, help="LR input height = width")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-flops", dest="flops", action="store_false", help="skip FLOP counting")
    p.add_argument(
        "--isolate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="each model in its own process (default on CPU: clean peak-RSS numbers)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


def _bench_one(args, spec: str, device) -> dict:
    from contrast_sr.analysis.bench import bench_model
    from contrast_sr.analysis.common import load_model

    # Speed does not depend on the weights: registered names are built untrained.
    model = load_model(spec, args.scale, random_init=True)
    return bench_model(
        spec,
        model,
        args.mode,
        args.batch,
        args.size,
        device,
        args.precision,
        args.warmup,
        args.repeat,
        args.flops,
    ).to_dict()


def _isolated(args, spec: str) -> dict:
    cmd = [sys.executable, "-m", "contrast_sr", "bench", "--models", spec, "--json", "--no-isolate"]
    for flag in ("mode", "batch", "size", "scale", "device", "precision", "warmup", "repeat"):
        cmd += [f"--{flag}", str(getattr(args, flag))]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if not args.flops:
        cmd.append("--no-flops")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        from contrast_sr.errors import ContrastError

        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise ContrastError(f"bench {spec}", last.removeprefix("error: "))
    return json.loads(proc.stdout)["results"][0]


def run(args) -> int:
    import torch

    from contrast_sr.analysis.bench import BenchResult, add_ratios, format_table
    from contrast_sr.errors import UsageError
    from contrast_sr.utils.device import resolve_device

    if min(args.batch, args.size, args.repeat, args.scale) < 1 or args.warmup < 0:
        raise UsageError("bench", "--batch, --size, --repeat, --scale must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    specs = [s.strip() for s in args.models.split(",") if s.strip()]
    if not specs:
        raise UsageError("--models", "give at least one model")
    isolate = device.type == "cpu" if args.isolate is None else args.isolate
    rows = []
    for spec in specs:
        raw = _isolated(args, spec) if isolate else _bench_one(args, spec, device)
        rows.append(BenchResult(**{k: v for k, v in raw.items()}))
        print(f"{spec}: {rows[-1].time_s * 1e3:.1f} ms/step", file=sys.stderr)
    add_ratios(rows)
    table = format_table(rows)
    report = {
        "mode": args.mode,
        "batch": args.batch,
        "size": args.size,
        "scale": args.scale,
        "device": str(device),
        "precision": args.precision,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "results": [r.to_dict() for r in rows],
    }
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps(report))
    else:
        print(table)
    return 0
