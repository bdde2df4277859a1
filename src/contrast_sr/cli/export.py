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
        description="ONNX: one graph with dynamic batch/height/width (traced with the loop-free "
        "chunked scan), checked against PyTorch with onnxruntime at the example size and two "
        "other sizes before the file is written. A model whose graph does not serve other sizes "
        "is an error (exit 1) unless --static asks for a fixed-size graph.",
    )
    p.add_argument("--model", required=True, help="name, checkpoint path")
    p.add_argument("--format", required=True, choices=("onnx", "safetensors"))
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--scale", type=int, default=None)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument(
        "--static",
        "--no-dynamic",
        dest="dynamic",
        action="store_false",
        help="fixed batch and --size x --size input (default: dynamic batch/height/width)",
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
        from contrast_sr.errors import ContrastError
        from contrast_sr.export.onnx import NotDynamicError, export_onnx

        try:
            report = export_onnx(
                model,
                out,
                size=args.size,
                opset=args.opset,
                dynamic=args.dynamic,
                tolerance=args.tolerance,
            ).to_dict()
        except NotDynamicError as exc:
            hint = f"nothing written; --static exports a fixed {args.size}x{args.size} graph"
            raise ContrastError(exc.message, hint) from None
    else:
        from contrast_sr.export.safetensors import export_safetensors

        report = export_safetensors(model, out)
    report["format"] = args.format
    sizes = ", ".join(f"{h}x{w}" for h, w in report.get("checked_sizes", []))
    print(
        f"wrote {out} ({args.format}"
        + (", dynamic H/W" if report.get("dynamic") else "")
        + f"); max abs error vs PyTorch {report['max_abs_err']:.3g}"
        + (f" at {sizes}" if sizes else ""),
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(report))
    return 0
