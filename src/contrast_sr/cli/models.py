"""``contrast-sr models``: list the registered variants with their parameter counts."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models",
        help="list named model variants with parameter counts",
        description="List every registered model variant with its parameter count and the "
        "scales it has bundled weights for (the others need a checkpoint or --random-init).",
    )
    parser.add_argument(
        "--scale", type=int, default=4, choices=(2, 3, 4), help="upscale factor (default 4)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from contrast_sr.models.registry import list_models, model_info, supported_scales

    rows = [model_info(n, args.scale) for n in list_models() if args.scale in supported_scales(n)]
    if args.json:
        print(json.dumps({"scale": args.scale, "models": rows}))
        return 0
    width = max(len(r["name"]) for r in rows)
    out = sys.stdout
    head = f"{'model':<{width}}  {'params (x' + str(args.scale) + ')':>14}  {'weights':<8}  summary"
    print(head, file=out)
    for r in rows:
        weights = ",".join(f"x{s}" for s in r["weights"]) or "-"
        print(f"{r['name']:<{width}}  {r['params']:>14,}  {weights:<8}  {r['summary']}", file=out)
    return 0
