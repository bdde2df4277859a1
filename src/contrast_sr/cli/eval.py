"""``contrast-sr eval``: paper-protocol PSNR / SSIM (Y) of a model on a folder of HR images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from contrast_sr.errors import UsageError


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval",
        help="PSNR/SSIM (Y channel) on a benchmark folder, as SR papers report them",
        description=(
            "Crop each HR image to a multiple of --scale, make its LR with MATLAB bicubic (or take "
            "it from --lr), super-resolve, and report PSNR/SSIM on Y with a border of --scale "
            "pixels removed. See docs/evaluation.md."
        ),
    )
    parser.add_argument(
        "--model",
        default=None,
        help="'bicubic' (baseline), a registered model name, or a checkpoint path "
        "(default: the bundled default model)",
    )
    parser.add_argument("--data", required=True, type=Path, help="folder of HR images")
    parser.add_argument("--scale", required=True, type=int, help="upscaling factor, e.g. 2, 3, 4")
    parser.add_argument(
        "--lr", type=Path, default=None, help="folder of prepared LR images (matched by file stem)"
    )
    parser.add_argument(
        "--lr-degradation",
        default=None,
        metavar="SPEC",
        help="make a degraded LR instead of plain bicubic: 'photo' (blur 1.0, bicubic down, "
        "noise 5/255, JPEG 75) or e.g. 'blur=1.0,noise=5,jpeg=75' (deterministic)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--save-dir", type=Path, default=None, help="write the SR images here")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    parser.add_argument(
        "--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="model precision"
    )
    parser.add_argument(
        "--self-ensemble", action="store_true", help="average the model over 8 flips/rotations"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run, flag_names={"hr_dir": "--data", "lr_dir": "--lr"})
    return parser


def _sr_function(args, device):
    from contrast_sr.evaluate import bicubic_sr, model_sr

    if args.model == "bicubic":
        return bicubic_sr(args.scale), "bicubic"
    try:
        from contrast_sr.models import resolve_model
    except ImportError:
        raise UsageError(
            "--model", f"unknown model {args.model!r} (only 'bicubic' is available in this install)"
        ) from None
    if args.model is None:
        from contrast_sr.infer import DEFAULT_MODEL_NAME, default_model

        model, args.model = default_model(args.scale), DEFAULT_MODEL_NAME
    else:
        model = resolve_model(args.model, args.scale)
    model_scale = getattr(model, "scale", args.scale)
    if model_scale != args.scale:
        raise UsageError("--scale", f"model {args.model!r} is x{model_scale}, not x{args.scale}")
    if args.self_ensemble:
        from contrast_sr.infer import Upscaler

        upscaler = Upscaler(model, device=device, precision=args.precision, self_ensemble=True)
        return upscaler, f"{args.model} (self-ensemble x8)"
    return model_sr(model, device, args.precision), args.model


def run(args) -> int:
    from contrast_sr.evaluate import evaluate
    from contrast_sr.utils.device import precision_dtype, resolve_device

    if args.scale < 1:
        raise UsageError("--scale", f"must be a positive integer, got {args.scale}")
    device = resolve_device(args.device)
    precision_dtype(args.precision)
    sr_fn, name = _sr_function(args, device)
    result = evaluate(
        sr_fn,
        args.data,
        args.scale,
        lr_dir=args.lr,
        save_dir=args.save_dir,
        model_name=name,
        device=device,
        progress=not args.no_progress,
        limit=args.limit,
        lr_degradation=args.lr_degradation,
    )
    if args.json:
        print(result.table(), file=sys.stderr)
        print(json.dumps(result.to_dict()))
    else:
        print(result.table())
    return 0
