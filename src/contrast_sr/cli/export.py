"""``contrast-sr export``: ONNX (verified with onnxruntime) or safetensors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="deployable exports (ONNX verified with onnxruntime, safetensors)",
        description="ONNX: traced with the loop-free chunked scan, dynamic height/width where "
        "the model allows, checked against PyTorch before the file is written.",
    )
    p.add_argument("--model", required=True, help="name, checkpoint path")
    p.add_argument("--format", required=True, choices=("onnx", "safetensors"))
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--scale", type=int, default=None)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument(
        "--dynamic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="dynamic batch/height/width (default on)",
    )
    p.add_argument("--size", type=int, default=32, help="example LR size for tracing/checking")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs error allowed")
    p.add_argument("--random-init", action="store_true", help="untrained registered variant")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from contrast_sr.cli.analysis_args import model_from_arg
    from contrast_sr.errors import UsageError

    out = Path(args.output)
    src = Path(args.model)
    if src.exists() and out.exists() and out.resolve() == src.resolve():
        raise UsageError("-o", "would overwrite the input model")
    if out.is_dir():
        raise UsageError("-o", f"{out} is a directory")
    if args.model == "bicubic":
        raise UsageError("--model", "bicubic has nothing to export")
    if args.size < 1:
        raise UsageError("--size", "must be positive")
    model = model_from_arg(args.model, args.scale, args.random_init)
    if args.format == "onnx":
        from contrast_sr.export.onnx import export_onnx

        report = export_onnx(
            model,
            out,
            size=args.size,
            opset=args.opset,
            dynamic=args.dynamic,
            tolerance=args.tolerance,
        ).to_dict()
    else:
        from contrast_sr.export.safetensors import export_safetensors

        report = export_safetensors(model, out)
    report["format"] = args.format
    print(
        f"wrote {out} ({args.format}); max abs error vs PyTorch {report['max_abs_err']:.3g}"
        + (f"; {report['note']}" if report.get("note") else ""),
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(report))
    return 0
