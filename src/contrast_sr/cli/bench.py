"""``contrast-sr bench [TARGET]``: speed benchmarks, always as ratios measured in one run.

Without a target: models (speed, memory, parameters, FLOPs; ratios against the first model;
``contrast_sr.analysis.bench``). ``scan`` times the selective scan against its sequential
reference (``contrast_sr.analysis.bench_scan``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from contrast_sr.cli.threads_arg import add_threads_argument
from contrast_sr.errors import UsageError

DEFAULT_MODELS = "hat_light,mamba,baseline"


def _shape(text: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected BATCH,DIM,N,L (positive integers), got {text!r}"
        )
    return values  # type: ignore[return-value]


def _ssd_shape(text: str) -> tuple[int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected BATCH,L (positive integers), got {text!r}")
    return values  # type: ignore[return-value]


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="speed, memory, parameters and FLOPs of models, or of the scan (ratios in one run)",
        description="Without a target: models on random inputs, min time of several steps after "
        "warm-up, untrained registered variants (weights do not change speed) or checkpoint "
        "paths. 'bench scan --help' for the selective-scan benchmark.",
    )
    parser.add_argument(
        "--models", default=DEFAULT_MODELS, help=f"a,b,... (default {DEFAULT_MODELS})"
    )
    parser.add_argument("--mode", choices=("infer", "train"), default="infer")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=64, help="LR input height = width")
    parser.add_argument(
        "--sizes",
        default=None,
        metavar="S1,S2,...",
        help="several LR sizes (e.g. 64,128,256,512): every model at each, plus a time-vs-size "
        "table (time per output megapixel, growth against the pixel count)",
    )
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    add_threads_argument(parser)
    parser.add_argument("--no-flops", dest="flops", action="store_false", help="skip FLOP counting")
    parser.add_argument(
        "--isolate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="each model in its own process (default on CPU: clean peak-RSS numbers)",
    )
    parser.add_argument("--json", action="store_true")
    targets = parser.add_subparsers(dest="bench_target", metavar="TARGET")
    scan = targets.add_parser(
        "scan",
        help="selective scan: fast backends vs the sequential reference",
        description="Time the selective scan (forward, forward+backward) per backend, the "
        "speedup over the sequential reference and the fraction of the measured memory-copy "
        "bandwidth reached, all in one process.",
    )
    scan.add_argument(
        "--shape",
        action="append",
        type=_shape,
        metavar="B,DIM,N,L",
        help="shape to time (repeatable; default: 8,240,1,4096 8,240,16,4096 1,240,1,65536)",
    )
    scan.add_argument("--groups", type=int, default=4, help="B/C groups (SS2D: 4 directions)")
    scan.add_argument(
        "--backends",
        default=None,
        help="comma-separated backends (default: reference, torch and the auto-selected fused "
        "backend, if any)",
    )
    scan.add_argument("--no-reference", action="store_true", help="skip the slow reference")
    scan.add_argument("--reps", type=int, default=5, help="repetitions per fast backend")
    scan.add_argument("--ref-reps", type=int, default=2, help="repetitions of the reference")
    scan.add_argument(
        "--mode", choices=("fwd", "fwdbwd", "both"), default="both", help="what to time"
    )
    scan.add_argument(
        "--bandwidth-mb", type=int, default=256, help="size of the memory-copy probe (MB)"
    )
    add_threads_argument(scan)
    scan.add_argument(
        "--no-malloc-tune",
        action="store_true",
        help="leave glibc malloc as is (default: keep freed large blocks, Linux only)",
    )
    scan.add_argument(
        "--ssd",
        action="store_true",
        help="time the Mamba-2 SSD scan instead: its sequential reference, the chunked scan and "
        "the Mamba-1 scan on the same tokens, at a light model's shapes",
    )
    scan.add_argument(
        "--ssd-shape",
        action="append",
        type=_ssd_shape,
        metavar="B,L",
        help="with --ssd: batch and tokens (repeatable; default: 8,1024 8,4096)",
    )
    scan.add_argument("--ssd-dim", type=int, default=48, help="with --ssd: model width C")
    scan.add_argument("--ssd-state", type=int, default=4, help="with --ssd: state size N")
    scan.add_argument("--ssd-chunk", type=int, default=16, help="with --ssd: chunk length")
    scan.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    scan.set_defaults(func=run_scan)
    parser.set_defaults(func=run)
    return parser


def _sizes(args) -> list[int]:
    if args.sizes is None:
        return [args.size]
    try:
        sizes = [int(v) for v in args.sizes.split(",") if v.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise UsageError("--sizes", f"expected positive integers S1,S2,..., got {args.sizes!r}")
    return sizes


def _bench_one(args, spec: str, device) -> dict:
    from contrast_sr.analysis.bench import bench_model
    from contrast_sr.analysis.common import load_analysis_model

    # Speed does not depend on the weights: registered names are built untrained.
    model = load_analysis_model(spec, args.scale, random_init=True)
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


def run(args: argparse.Namespace) -> int:
    """The model benchmark (no target)."""
    import torch

    from contrast_sr.analysis.bench import (
        BenchResult,
        add_ratios,
        format_growth,
        format_table,
        matmul_peak_gflops,
        size_growth,
        thread_scaling,
    )
    from contrast_sr.errors import UsageError
    from contrast_sr.utils.device import resolve_device
    from contrast_sr.utils.threads import busy_cores

    if min(args.batch, args.size, args.repeat, args.scale) < 1 or args.warmup < 0:
        raise UsageError("bench", "--batch, --size, --repeat, --scale must be positive")
    sizes = _sizes(args)
    busy = busy_cores()
    device = resolve_device(args.device)
    specs = [s.strip() for s in args.models.split(",") if s.strip()]
    if not specs:
        raise UsageError("--models", "give at least one model")
    isolate = device.type == "cpu" if args.isolate is None else args.isolate
    peak = matmul_peak_gflops(device=device)
    scaling = thread_scaling(full_gflops=peak) if device.type == "cpu" else None
    delivered = "" if scaling is None else f" ({scaling:.2f}x one thread's)"
    print(
        f"float32 matmul peak {peak:.1f} GFLOP/s at {torch.get_num_threads()} threads{delivered}",
        file=sys.stderr,
    )
    rows = []
    for spec in specs:
        for size in sizes:
            args.size = size
            raw = _isolated(args, spec) if isolate else _bench_one(args, spec, device)
            row = BenchResult(**{k: v for k, v in raw.items()})
            row.peak_share = None if row.gflops_per_s is None else row.gflops_per_s / peak
            rows.append(row)
            print(f"{spec} {size}²: {row.time_s * 1e3:.1f} ms/step", file=sys.stderr)
    add_ratios(rows)
    table = format_table(rows)
    growth = size_growth(rows) if len(sizes) > 1 else []
    if growth:
        table += "\n\n" + format_growth(growth)
    report = {
        "mode": args.mode,
        "batch": args.batch,
        "size": sizes[0],
        "sizes": sizes,
        "scale": args.scale,
        "device": str(device),
        "precision": args.precision,
        "threads": torch.get_num_threads(),
        "busy_cores_at_start": busy,
        "matmul_peak_gflops": peak,
        "thread_scaling": scaling,
        "torch": torch.__version__,
        "results": [r.to_dict() for r in rows],
        "size_growth": growth,
    }
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps(report))
    else:
        print(table)
    return 0


def run_scan(args: argparse.Namespace) -> int:
    from contrast_sr.analysis import bench_scan
    from contrast_sr.utils.malloc import tune_malloc

    tuned = False if args.no_malloc_tune else tune_malloc()

    from contrast_sr.ops.scan import list_scan_backends

    if args.reps < 1 or args.ref_reps < 1:
        raise UsageError("--reps", "repetitions must be >= 1")
    if args.groups < 1:
        raise UsageError("--groups", f"must be >= 1, got {args.groups}")
    if args.ssd:
        return _run_ssd(args)
    shapes = args.shape or list(bench_scan.DEFAULT_SHAPES)
    for shape in shapes:
        dim = shape[1]
        if dim % args.groups:
            raise UsageError("--shape", f"dim {dim} is not divisible by --groups {args.groups}")
    if args.backends:
        backends = [n.strip() for n in args.backends.split(",") if n.strip()]
        unknown = [n for n in backends if n not in [*list_scan_backends(), bench_scan.SS2D]]
        if unknown:
            known = ", ".join(list_scan_backends())
            raise UsageError("--backends", f"unknown {', '.join(unknown)} (known: {known})")
    else:
        backends = bench_scan.default_backends()
    if args.no_reference:
        backends = [n for n in backends if n != "reference"]
    elif "reference" in backends:
        backends = ["reference"] + [n for n in backends if n != "reference"]
    modes = ("fwd", "fwdbwd") if args.mode == "both" else (args.mode,)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result = bench_scan.run_benchmark(
        shapes,
        backends,
        args.groups,
        args.reps,
        args.ref_reps,
        modes,
        tuned,
        log,
        max(1, args.bandwidth_mb),
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(bench_scan.format_table(result))
    return 0


def _run_ssd(args: argparse.Namespace) -> int:
    """``bench scan --ssd``: the Mamba-2 SSD table."""
    from contrast_sr.analysis import bench_ssd

    if min(args.ssd_dim, args.ssd_state, args.ssd_chunk) < 1:
        raise UsageError("--ssd-dim", "--ssd-dim, --ssd-state and --ssd-chunk must be >= 1")
    result = bench_ssd.run_ssd_benchmark(
        args.ssd_shape or list(bench_ssd.DEFAULT_SSD_SHAPES),
        dim=args.ssd_dim,
        d_state=args.ssd_state,
        chunk=args.ssd_chunk,
        reps=args.reps,
        ref_reps=args.ref_reps,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(json.dumps(result) if args.json else bench_ssd.format_ssd_table(result))
    return 0
