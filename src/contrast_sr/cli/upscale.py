"""``contrast-sr upscale INPUT... -o OUT``: super-resolve files, folders or globs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

DESCRIPTION = """\
Super-resolve images with the bundled default model (or --model). INPUT: files, folders (their
images) or glob patterns. OUT: a file for a single input file, else a folder. Each output keeps
its input's kind (gray, 16-bit, alpha); palette and CMYK images become RGB. Existing files,
inputs included, are never replaced without --overwrite; files are written atomically. If some
inputs fail, the others are still written, the failures are listed, and the exit code is 1."""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "upscale", help="super-resolve files, folders or globs", description=DESCRIPTION
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file or folder")
    p.add_argument(
        "--model", default=None, help="registered name or checkpoint path (default: bundled)"
    )
    p.add_argument("--scale", type=int, default=None, help="upscaling factor (default: model's)")
    p.add_argument(
        "--tile", default=None, metavar="N|auto", help="tile size in input pixels, or auto"
    )
    p.add_argument("--tile-overlap", type=int, default=32, metavar="N", help="default 32")
    p.add_argument("--self-ensemble", action="store_true", help="average 8 flips/rotations")
    p.add_argument(
        "--alpha", choices=("bicubic", "model"), default="bicubic", help="how to upscale alpha"
    )
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--overwrite", action="store_true", help="allow replacing existing files")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)
    return p


def _tile_bar(show: bool):
    from tqdm import tqdm

    def progress(total: int):
        bar = tqdm(
            total=total,
            desc="tiles",
            unit="tile",
            leave=False,
            file=sys.stderr,
            disable=None if show else True,
        )

        def tick() -> None:
            bar.update()
            if bar.n >= total:
                bar.close()

        return tick

    return progress


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from contrast_sr.cli.upscale_plan import plan_jobs
    from contrast_sr.errors import ContrastError
    from contrast_sr.infer import defaults
    from contrast_sr.infer.upscaler import Upscaler, parse_tile
    from contrast_sr.io import read_image, write_image

    if args.scale is not None and args.scale < 1:
        from contrast_sr.errors import UsageError

        raise UsageError("--scale", f"must be a positive integer, got {args.scale}")
    tile = parse_tile(args.tile)
    jobs = plan_jobs(args.inputs, args.output, overwrite=args.overwrite)
    model = defaults.get_model(args.model, args.scale)
    upscaler = Upscaler(
        model,
        device=args.device,
        precision=args.precision,
        tile=tile,
        tile_overlap=args.tile_overlap,
        self_ensemble=args.self_ensemble,
        alpha=args.alpha,
        scale=args.scale,
        progress=_tile_bar(True),
    )
    done, failures = [], []
    bar = tqdm(
        jobs, desc="upscale", unit="img", file=sys.stderr, disable=None if len(jobs) > 1 else True
    )
    for job in bar:
        start = time.perf_counter()
        try:
            x, info = read_image(job.source)
            y = upscaler(x)
            if dataclasses.is_dataclass(info) and hasattr(info, "width"):
                info = dataclasses.replace(info, width=y.shape[-1], height=y.shape[-2])
            write_image(job.target, y, info)
        except (ContrastError, OSError, ValueError) as exc:
            why = exc.message if isinstance(exc, ContrastError) else " ".join(str(exc).split())
            why = why or type(exc).__name__
            if str(job.source) not in why:
                why = f"{job.source}: {why}"
            failures.append({"input": str(job.source), "error": why})
            continue
        done.append(
            {
                "input": str(job.source),
                "output": str(job.target),
                "width": int(y.shape[-1]),
                "height": int(y.shape[-2]),
                "seconds": round(time.perf_counter() - start, 3),
            }
        )
    name = getattr(model, "variant", None) or type(model).__name__
    summary = {
        "model": args.model or f"{defaults.DEFAULT_MODEL_NAME} (bundled)",
        "architecture": name,
        "scale": upscaler.scale,
        "device": str(upscaler.device),
        "precision": args.precision,
        "tile": upscaler.last_tile,
        "self_ensemble": bool(args.self_ensemble),
        "outputs": done,
        "failures": failures,
    }
    for failure in failures:
        print(f"error: {failure['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    else:
        where = args.output
        print(
            f"upscaled {len(done)} of {len(jobs)} image(s) x{upscaler.scale} -> {where}"
            + (f" ({len(failures)} failed)" if failures else "")
        )
    return 1 if failures else 0
