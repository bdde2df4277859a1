"""``contrast-sr plot RUN_DIR... -o fig.png``: loss and PSNR curves of one or more runs."""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plot",
        help="plot training loss and validation PSNR of runs (PNG; needs matplotlib)",
        description="Loss and validation PSNR against iterations, several runs on one figure. "
        "Reads RUN_DIR/metrics.jsonl. Needs the `plot` extra (matplotlib).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="training output folders")
    p.add_argument("-o", "--output", required=True, help="PNG file to write")
    p.add_argument("--set", dest="val_set", help="validation set to plot (default: the first)")
    p.add_argument(
        "--smooth", type=int, default=1, help="moving average over N loss records (default 1)"
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from contrast_sr.train.plot import plot_runs

    plot_runs(args.runs, args.output, val_set=args.val_set, smooth=args.smooth)
    print(f"wrote {args.output}: training loss and validation PSNR of {len(args.runs)} run(s)")
    return 0
