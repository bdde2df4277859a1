"""``contrast-sr bench [TARGET]``: speed benchmarks, always as ratios measured in one run.

Targets are sub-subcommands; ``scan`` times the selective scan against its sequential
reference (``contrast_sr.analysis.bench_scan``).
"""

from __future__ import annotations

import argparse
import json
import sys

from contrast_sr.errors import UsageError


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


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench", help="speed benchmarks (ratios measured in one run)", description=__doc__
    )
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
    scan.add_argument("--threads", type=int, default=None, help="torch threads (default: as is)")
    scan.add_argument(
        "--no-malloc-tune",
        action="store_true",
        help="leave glibc malloc as is (default: keep freed large blocks, Linux only)",
    )
    scan.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    scan.set_defaults(func=run_scan)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    raise UsageError("bench", "choose a target, e.g. 'contrast-sr bench scan'")


def run_scan(args: argparse.Namespace) -> int:
    from contrast_sr.analysis import bench_scan

    tuned = False if args.no_malloc_tune else bench_scan.tune_malloc()
    import torch

    from contrast_sr.ops.selective_scan import list_scan_backends

    if args.threads is not None:
        if args.threads < 1:
            raise UsageError("--threads", f"must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.reps < 1 or args.ref_reps < 1:
        raise UsageError("--reps", "repetitions must be >= 1")
    if args.groups < 1:
        raise UsageError("--groups", f"must be >= 1, got {args.groups}")
    shapes = args.shape or list(bench_scan.DEFAULT_SHAPES)
    for shape in shapes:
        dim = shape[1]
        if dim % args.groups:
            raise UsageError("--shape", f"dim {dim} is not divisible by --groups {args.groups}")
    if args.backends:
        backends = [n.strip() for n in args.backends.split(",") if n.strip()]
        unknown = [n for n in backends if n not in list_scan_backends()]
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
