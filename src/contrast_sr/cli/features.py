"""``contrast-sr features``: per-layer L2-norm maps of the body's feature maps."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "features",
        help="per-layer L2-norm maps of the feature maps through the body",
        description="Hooks the residual groups (or blocks) and the final norm; the figure shows "
        "each layer's per-pixel channel L2 norm on one shared colour scale.",
    )
    p.add_argument("--model", required=True, help="name, checkpoint or path")
    p.add_argument("--image", required=True, help="input image (used as the LR input)")
    p.add_argument("--scale", type=int, default=None)
    p.add_argument("--level", choices=("group", "block"), default="group")
    p.add_argument(
        "--shared-scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one colour scale for all layers (default) or one per layer",
    )
    p.add_argument("--random-init", action="store_true", help="untrained registered variant")
    p.add_argument("-o", "--output", required=True, help="figure (PNG)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from contrast_sr.analysis import figure
    from contrast_sr.analysis.common import load_image
    from contrast_sr.analysis.features import feature_norms
    from contrast_sr.cli.analysis_args import model_from_arg
    from contrast_sr.errors import ContrastError

    image = load_image(args.image)[None]
    model = model_from_arg(args.model, args.scale, args.random_init)
    try:
        layers = feature_norms(model, image, args.level)
    except ValueError as exc:
        raise ContrastError("features", str(exc)) from None
    if not layers:
        raise ContrastError("features", "no body layer ran")
    top = max(layer.max for layer in layers)
    images = [figure.to_pil(image[0])]
    captions = ["input"]
    for layer in layers:
        images.append(figure.heatmap(layer.map, vmax=top if args.shared_scale else None))
        captions.append(f"{layer.name}\nmax {layer.max:.3g} mean {layer.mean:.3g}")
        print(f"{layer.name}: max {layer.max:.4g} mean {layer.mean:.4g}", file=sys.stderr)
    side = max(96, min(192, image.shape[-1]))
    fig = figure.panels(images, captions, columns=min(len(images), 5), height=side)
    figure.save_png(fig, args.output)
    if args.json:
        print(
            json.dumps(
                {
                    "model": args.model,
                    "image": str(args.image),
                    "level": args.level,
                    "layers": [
                        {
                            "name": lay.name,
                            "max": lay.max,
                            "mean": lay.mean,
                            "channels": lay.channels,
                            "size": list(lay.map.shape),
                        }
                        for lay in layers
                    ],
                    "figure": str(args.output),
                }
            )
        )
    return 0
