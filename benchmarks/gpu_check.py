"""One prepared GPU check: verify every CUDA path of contrast_sr and measure it, in one call.

    pip install "torch==2.13.0" -e ".[dev]"
    python benchmarks/gpu_check.py [--output gpu_check_out] [--budget-s 450]
    python benchmarks/gpu_check.py --dry-run       # the same code on CPU, tiny shapes (~30 s)
    python benchmarks/gpu_check.py --only attention_sdpa,bench_train

Checks: each Triton kernel (Mamba-1 scan, cross-scan/merge, dwconv+GELU, SSD) against its
PyTorch path, values and gradients, fp32 and bf16 (kernels not written yet: "not available");
SDPA window attention (equal to explicit attention, the kernel each module gets); a bf16
autocast training step; DDP over NCCL with one process; tiled upscaling; ONNX export of a
CUDA-trained checkpoint; torch.compile (in a child process, killed after at most 240 s).
Measurements: the scan at the training shape (b 8, L 4096, dim 192, N 1 and 16), the training
step time and peak memory of contrast_light / baseline vs hat_light (batch 8, LR 64, x4, bf16 and
fp32) with the seed's claims (41% faster, 29% less memory), x4 throughput at 256x256 and 1080p.

Writes gpu_check.json and gpu_check.md to --output after every item, so a crash keeps what ran.
Items that would overrun --budget-s are recorded as skipped. See docs/gpu.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

CHILD_ITEMS = {"torch_compile"}  # run in a child process with a timeout (compile time varies)
CHILD_TIMEOUT_S = 240.0
ESTIMATES_S = {  # rough cost on one GPU; an item starts only if it fits in the budget
    "env": 1,
    "triton_scan": 40,
    "triton_cross_scan": 20,
    "triton_dwconv_gelu": 20,
    "triton_ssd": 30,
    "attention_sdpa": 15,
    "bf16_train_step": 10,
    "ddp_nccl_1proc": 10,
    "upscale_tiled": 10,
    "onnx_cuda_checkpoint": 30,
    "torch_compile": 90,
    "bench_train": 60,
    "bench_scan": 30,
    "bench_inference": 60,
}


class Budget:
    """Wall-clock budget of the whole run, started at construction."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def allows(self, estimate_s: float) -> bool:
        return self.elapsed() + estimate_s <= self.seconds


def _items(setup, output: Path):
    import _gpu_kernels as kernels
    import _gpu_measure as measure
    import _gpu_verify as verify

    by_name = {k.name: k for k in kernels.KERNELS}
    return {
        "env": ("check", lambda b: environment(setup)),
        "triton_scan": ("check", lambda b: kernels.check_kernel(by_name["scan"], setup)),
        "triton_cross_scan": (
            "check",
            lambda b: kernels.check_kernel(by_name["cross_scan"], setup),
        ),
        "triton_dwconv_gelu": (
            "check",
            lambda b: kernels.check_kernel(by_name["dwconv_gelu"], setup),
        ),
        "triton_ssd": ("check", lambda b: kernels.check_kernel(by_name["ssd"], setup)),
        "attention_sdpa": ("check", lambda b: verify.check_attention(setup)),
        "bf16_train_step": ("check", lambda b: verify.check_bf16_step(setup)),
        "ddp_nccl_1proc": ("check", lambda b: verify.check_ddp(setup)),
        "upscale_tiled": ("check", lambda b: verify.check_upscale_tiled(setup)),
        "onnx_cuda_checkpoint": ("check", lambda b: verify.check_onnx(setup, output)),
        "torch_compile": ("check", lambda b: verify.check_compile(setup)),
        "bench_train": ("measure", lambda b: _measured(measure.bench_train(setup, b))),
        "bench_scan": ("measure", lambda b: _measured(measure.bench_scan(setup, b))),
        "bench_inference": ("measure", lambda b: _measured(measure.bench_inference(setup, b))),
    }


def _measured(details: dict) -> dict:
    text = json.dumps(details)
    status = "partial (over budget)" if '"over budget"' in text else "measured"
    return {"status": status, "details": details}


def environment(setup) -> dict:
    import importlib.util

    import torch

    details = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(setup.device),
        "dry_run": setup.dry_run,
        "triton": None,
        "TRITON_INTERPRET": os.environ.get("TRITON_INTERPRET"),
    }
    if importlib.util.find_spec("triton") is not None:
        import triton

        details["triton"] = triton.__version__
    if setup.device.type == "cuda":
        props = torch.cuda.get_device_properties(setup.device)
        details.update(
            gpu=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_gib=round(props.total_memory / 2**30, 1),
            cudnn=torch.backends.cudnn.version(),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    return {"status": "pass", "details": details}


def _run_child(name: str, args, budget: Budget, output: Path) -> dict:
    """Run one item in a fresh process, killed when the budget runs out."""
    child_out = output / f"child_{name}"
    cmd = [sys.executable, __file__, "--only", name, "--output", str(child_out), "--child"]
    cmd += ["--dry-run"] if args.dry_run else []
    timeout = max(min(budget.seconds - budget.elapsed() - 120.0, CHILD_TIMEOUT_S), 30.0)
    try:
        done = subprocess.run(cmd, timeout=timeout, check=False, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return {"status": "skipped", "note": f"killed at the budget after {timeout:.0f} s"}
    finally:
        report_file = child_out / "gpu_check.json"
        text = report_file.read_text() if report_file.is_file() else ""
        shutil.rmtree(child_out, ignore_errors=True)
    try:
        return json.loads(text)["results"][name]
    except (KeyError, ValueError):
        tail = done.stderr.strip().splitlines()[-6:]
        return {"status": "fail", "error": "the child process wrote no result", "stderr": tail}


def run(args) -> dict:
    if args.dry_run:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports triton
    import torch
    from _gpu_setup import Setup, first_line

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    budget = Budget(args.budget_s)
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --dry-run for the CPU rehearsal")
    setup = Setup.dry() if args.dry_run else Setup.real()
    items = _items(setup, output)
    chosen = args.only.split(",") if args.only else list(items)
    unknown = [n for n in chosen if n not in items]
    if unknown:
        raise SystemExit(f"unknown items {unknown}; known: {', '.join(items)}")
    report = {"meta": {"budget_s": args.budget_s, "dry_run": args.dry_run}, "results": {}}
    lost = ""  # set when the CUDA context is unusable: later items cannot run
    for name in chosen:
        kind, fn = items[name]
        start = time.perf_counter()
        if lost:
            result = {"status": "skipped", "note": f"CUDA context lost in {lost}"}
        elif not budget.allows(ESTIMATES_S[name] if kind == "check" else 5):
            result = {"status": "skipped", "note": f"over budget at {budget.elapsed():.0f} s"}
        elif name in CHILD_ITEMS and not args.child:
            result = _run_child(name, args, budget, output)
        else:
            try:
                result = fn(budget)
            except Exception as exc:
                tail = traceback.format_exc().strip().splitlines()[-6:]
                result = {"status": "fail", "error": first_line(exc), "traceback": tail}
                if setup.device.type == "cuda" and "CUDA error" in str(exc):
                    lost = name
        result = {"kind": kind, **result, "seconds": round(time.perf_counter() - start, 2)}
        report["results"][name] = result
        report["meta"]["elapsed_s"] = round(budget.elapsed(), 1)
        write_report(report, output)
    return report


def write_report(report: dict, output: Path) -> None:
    from _gpu_report import markdown

    (output / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (output / "gpu_check.md").write_text(markdown(report))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="gpu_check_out", help="folder for the two reports")
    parser.add_argument("--dry-run", action="store_true", help="CPU rehearsal, tiny shapes")
    parser.add_argument("--budget-s", type=float, default=450.0, help="wall-clock budget")
    parser.add_argument("--only", default="", help="comma-separated items to run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    report = run(args)
    failed = [n for n, r in report["results"].items() if r["status"] == "fail"]
    print(f"gpu_check: {len(report['results'])} items, {len(failed)} failed", *failed)
    print(f"reports: {Path(args.output) / 'gpu_check.json'}, {Path(args.output) / 'gpu_check.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
