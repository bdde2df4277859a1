"""``contrast-sr convert``: import an original Contrast or an official HAT checkpoint."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert",
        help="import an original Contrast or official HAT checkpoint (.pth / .safetensors)",
        description=(
            "Map a checkpoint of the original research code or of HAT (HAT-S, HAT, HAT-L; .pth "
            "with params/params_ema or a plain state dict, read without running pickled code, "
            "or .safetensors) onto a Contrast-SR model, strictly: every weight used, every "
            "shape checked. Without --variant the architecture is detected from the tensors' "
            "shapes. Writes a Contrast-SR safetensors checkpoint."
        ),
    )
    parser.add_argument("original", help="checkpoint to import (.pth or .safetensors)")
    parser.add_argument("output", help="output checkpoint (.safetensors)")
    parser.add_argument(
        "--variant",
        help="registered variant (see 'contrast-sr models'); default: detected from the shapes",
    )
    parser.add_argument(
        "--scale", type=int, choices=(2, 3, 4), help="upscale factor (default: inferred)"
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a model config field (YAML value), e.g. --set mean_norm=false; repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=run)
    return parser


def _overrides(sets: list[str]) -> dict:
    """``["mean_norm=false", "model.depths=[6, 6]"]`` -> ``{"mean_norm": False, ...}``."""
    from contrast_sr.train.config import parse_set

    out = {}
    for item in sets:
        key, value = parse_set(item)
        out[key.removeprefix("model.")] = value
    return out


def run(args: argparse.Namespace) -> int:
    from contrast_sr.errors import ArgumentError, UnknownModelError, UsageError
    from contrast_sr.models.contrast import count_parameters
    from contrast_sr.models.original import convert_checkpoint
    from contrast_sr.models.registry import supported_scales

    if args.variant is not None:
        try:
            supported_scales(args.variant)
        except UnknownModelError as exc:
            raise UsageError(f"unknown variant {args.variant!r}", exc.why) from None
    if not args.output.endswith(".safetensors"):
        raise UsageError(f"output {args.output}", "must end in .safetensors")
    overrides = _overrides(args.sets)
    try:
        result = convert_checkpoint(
            args.original, args.output, args.variant, args.scale, overrides=overrides
        )
    except ArgumentError as exc:  # dst is the `output` argument; others are flags
        raise exc.as_flag(f"output {args.output}" if exc.argument == "dst" else None) from None
    model, detected = result.model, result.detected
    assumed = [f for f in (detected.assumed if detected else ()) if f not in overrides]
    info = {
        "output": args.output,
        "variant": model.variant,
        "scale": model.scale,
        "params": count_parameters(model),
        "detected": detected is not None,
        "also_matches": list(detected.also) if detected else [],
        "assumed": assumed,
        "config": model.config.to_dict(),
    }
    if args.json:
        print(json.dumps(info))
        return 0
    what = model.variant or "detected config"
    print(f"wrote {args.output}: {what} x{model.scale}, {info['params']:,} parameters")
    if detected is not None and detected.variant is None:
        cfg = model.config
        print(
            f"  architecture from the shapes: dim {cfg.dim}, depths {list(cfg.depths)}, "
            f"blocks {list(cfg.block_pattern)}, heads {cfg.num_heads}, window {cfg.window_size}, "
            f"{cfg.upsampler} head"
        )
    if assumed:
        kept = ", ".join(f"{f}={getattr(model.config, f)}" for f in assumed)
        print(f"  not stored in the weights, defaults kept (--set to change): {kept}")
    if detected is not None and detected.also:
        also = ", ".join(detected.also)
        print(f"  the same shapes also fit: {also} (they differ in fields the weights do not show)")
    return 0
