"""``contrast-sr convert``: import a checkpoint of the original research code."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert",
        help="import an original Contrast checkpoint (.pth / .safetensors)",
        description=(
            "Map a checkpoint of the original research code (.pth with params/params_ema or a "
            "plain state dict, or .safetensors) onto a named variant, strictly: every weight "
            "used, every shape checked. Writes a Contrast-SR safetensors checkpoint."
        ),
    )
    parser.add_argument("original", help="original checkpoint (.pth or .safetensors)")
    parser.add_argument("output", help="output checkpoint (.safetensors)")
    parser.add_argument(
        "--variant", required=True, help="registered variant (see 'contrast-sr models')"
    )
    parser.add_argument(
        "--scale", type=int, choices=(2, 3, 4), help="upscale factor (default: inferred)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from contrast_sr.errors import ArgumentError, UnknownModelError, UsageError
    from contrast_sr.models.contrast import count_parameters
    from contrast_sr.models.original import convert_checkpoint
    from contrast_sr.models.registry import supported_scales

    try:
        supported_scales(args.variant)
    except UnknownModelError as exc:
        raise UsageError(f"unknown variant {args.variant!r}", exc.why) from None
    if not args.output.endswith(".safetensors"):
        raise UsageError(f"output {args.output}", "must end in .safetensors")
    try:
        model = convert_checkpoint(args.original, args.output, args.variant, args.scale)
    except ArgumentError as exc:  # dst is the `output` argument; others are flags
        raise exc.as_flag(f"output {args.output}" if exc.argument == "dst" else None) from None
    info = {
        "output": args.output,
        "variant": model.variant,
        "scale": model.scale,
        "params": count_parameters(model),
    }
    if args.json:
        print(json.dumps(info))
    else:
        print(f"wrote {args.output}: {model.variant} x{model.scale}, {info['params']:,} parameters")
    return 0
