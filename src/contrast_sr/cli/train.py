"""``contrast-sr train CONFIG.yml [--output DIR] [--resume] [--set key=value ...]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a model from a YAML config (also under torchrun -m contrast_sr train)",
        description="Train a super-resolution model. The config is validated before anything "
        "runs; see docs/training.md. Multi-GPU: torchrun --nproc_per_node N -m contrast_sr "
        "train CONFIG.",
    )
    p.add_argument("config", help="YAML config (e.g. configs/smoke.yml)")
    p.add_argument(
        "--output", "-o", help="run folder (default: the config's `output`, else runs/<config>)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest complete checkpoint"
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (dotted, YAML value), e.g. --set train.iters=24; repeatable",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from contrast_sr.train.config import load_config
    from contrast_sr.train.loop import train

    cfg = load_config(args.config, args.sets)
    output = args.output or cfg.output or str(Path("runs") / Path(args.config).stem)
    summary = train(cfg, Path(output), resume=args.resume)
    if args.json and summary is not None:
        import os

        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps(summary), file=sys.stdout)
    return 0
