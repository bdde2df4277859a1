"""``contrast-sr lam``: Local Attribution Maps and Diffusion Index for one or more models."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "lam",
        help="Local Attribution Map figure (+ diffusion index) for an output box",
        description="Integrated gradients from a blurred LR to the LR for the summed gradient "
        "magnitude of the SR output inside a box; one heat map and DI per model.",
    )
    p.add_argument("--model", required=True, help="M[,M2,...]: names, checkpoints or bicubic")
    p.add_argument("--image", required=True, help="HR image; the LR is its bicubic downscale")
    p.add_argument("--box", required=True, help="X,Y[,SIZE] of the output box in HR pixels")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--steps", type=int, default=50, help="path steps (default 50)")
    p.add_argument("--sigma", type=float, default=9.0, help="blur of the path start (LR px)")
    p.add_argument("--path", choices=("blur", "linear"), default="blur")
    p.add_argument("--batch", type=int, default=4, help="path points per forward pass")
    p.add_argument(
        "--gamma",
        type=float,
        default=0.5,
        help="display gamma of the heat maps (DI uses the linear map; default 0.5)",
    )
    p.add_argument("--random-init", action="store_true", help="untrained registered variants")
    p.add_argument("--device", default="cpu")
    p.add_argument("-o", "--output", required=True, help="figure (PNG)")
    p.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from contrast_sr.analysis import figure
    from contrast_sr.analysis.common import check_box, hr_and_lr, load_image
    from contrast_sr.analysis.lam import local_attribution_map
    from contrast_sr.cli.analysis_args import models_from_arg, parse_box
    from contrast_sr.errors import UsageError
    from contrast_sr.utils.device import resolve_device

    if min(args.steps, args.batch, args.scale) < 1 or min(args.sigma, args.gamma) <= 0:
        raise UsageError("lam", "--steps, --batch, --scale, --sigma, --gamma must be positive")
    box = parse_box(args.box)
    device = resolve_device(args.device)
    hr, lr = hr_and_lr(load_image(args.image), args.scale)
    check_box(box, *hr.shape[-2:])
    models = models_from_arg(args.model, args.scale, args.random_init)
    rows, images, captions = [], [], []
    lr_pil = figure.to_pil(lr[0])
    x, y, size = box
    images.append(figure.draw_box(figure.to_pil(hr[0]), x, y, size))
    captions.append(f"HR, box {size}x{size}")
    for name, model in models:
        if getattr(model, "scale", args.scale) != args.scale:
            raise UsageError("--scale", f"{name} is a x{model.scale} model, not x{args.scale}")
        res = local_attribution_map(
            model.to(device), lr.to(device), box, args.steps, args.sigma, args.path, args.batch
        )
        rows.append(
            {
                "model": name,
                "di": res.di,
                "gini": res.gini,
                "target": res.target,
                "target_baseline": res.target_baseline,
                "attribution_sum": float(res.attribution.sum()),
                # integrated-gradients completeness: 1.0 when the path integral is exact
                "completeness": float(res.attribution.sum())
                / (res.target - res.target_baseline or float("nan")),
            }
        )
        heat = figure.overlay(lr_pil, figure.heatmap(res.map.pow(args.gamma)), alpha=0.7)
        s = args.scale
        heat = figure.upscale_nearest(heat, hr.shape[-2])
        f = heat.width / lr_pil.width
        images.append(
            figure.draw_box(
                heat, round(x / s * f), round(y / s * f), round(size / s * f), (0, 220, 255), 1
            )
        )
        captions.append(f"{name}\nDI {res.di:.2f}")
        print(f"{name}: DI {res.di:.2f}", file=sys.stderr)
    fig = figure.panels(images, captions, height=max(192, min(384, hr.shape[-2])))
    figure.save_png(fig, args.output)
    result = {
        "image": str(args.image),
        "box": list(box),
        "scale": args.scale,
        "steps": args.steps,
        "sigma": args.sigma,
        "path": args.path,
        "lr_size": list(lr.shape[-2:]),
        "results": rows,
        "figure": str(args.output),
    }
    if args.json:
        print(json.dumps(result))
    return 0
