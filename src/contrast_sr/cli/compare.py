"""``contrast-sr compare``: HR crop, bicubic and each model's crop with PSNR (paper figure)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare",
        help="HR / bicubic / model crops side by side with PSNR",
        description="Downscales the HR image (bicubic), super-resolves it with each model and "
        "shows the boxed crop of every result with its PSNR (Y).",
    )
    p.add_argument("--models", required=True, help="a,b,...: names, checkpoints or bicubic")
    p.add_argument("--image", required=True, help="HR image")
    p.add_argument("--box", required=True, help="X,Y[,SIZE] in HR pixels (SIZE default 64)")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--random-init", action="store_true", help="untrained registered variants")
    p.add_argument("-o", "--output", required=True, help="figure (PNG)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from contrast_sr.analysis import figure
    from contrast_sr.analysis.common import check_box, hr_and_lr, load_image
    from contrast_sr.analysis.compare import compare_models
    from contrast_sr.cli.analysis_args import models_from_arg, parse_box
    from contrast_sr.errors import UsageError

    if args.scale < 1:
        raise UsageError("--scale", "must be positive")
    box = parse_box(args.box, default_size=64)
    hr, lr = hr_and_lr(load_image(args.image), args.scale)
    check_box(box, *hr.shape[-2:])
    models = models_from_arg(args.models, args.scale, args.random_init, "--models")
    fig, numbers = compare_models(models, hr, lr, box, args.scale)
    figure.save_png(fig, args.output)
    for row in numbers["results"]:
        print(f"{row['model']}: {row['psnr_y']:.2f} dB", file=sys.stderr)
    if args.json:
        print(json.dumps({"image": str(args.image), **numbers, "figure": str(args.output)}))
    return 0
