"""``contrast-sr upscale INPUT... -o OUT``: super-resolve files, folders or globs."""

from __future__ import annotations

import argparse
import json
import sys
import time

DESCRIPTION = """\
Super-resolve images with the bundled default model (or --model). INPUT: files, folders (their
images) or glob patterns. OUT: a file when it has an image extension (one input), else a folder.
Each output keeps its input's kind (gray, 16-bit, alpha) and metadata (ICC, EXIF, DPI scaled);
palette and CMYK images become RGB, alpha is composited onto --background for JPEG/BMP. Memory
is bounded: an image that would not fit --max-memory is tiled with blended overlaps. Inputs are
never overwritten; existing outputs only with --overwrite (--skip-existing continues a batch).
If some inputs fail, the others are still written, the failures are listed, and the exit code
is 1."""


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
        "--tile",
        default="auto",
        metavar="N|auto|0",
        help="auto (default): tile only images that do not fit --max-memory; N: N x N tiles; "
        "0: never tile",
    )
    p.add_argument(
        "--tile-overlap",
        type=int,
        default=32,
        metavar="N",
        help="overlap of neighbouring tiles, less than half the tile (default 32)",
    )
    p.add_argument(
        "--max-memory",
        default=None,
        metavar="SIZE",
        help="memory one forward pass may use, e.g. 2G or 512M (default: half the available "
        "RAM, at most 1.5G, on CPU; 60%% of the free GPU memory)",
    )
    p.add_argument("--self-ensemble", action="store_true", help="average 8 flips/rotations")
    p.add_argument(
        "--alpha", choices=("bicubic", "model"), default="bicubic", help="how to upscale alpha"
    )
    p.add_argument(
        "--background",
        default="white",
        metavar="COLOR",
        help="colour under transparent pixels for formats without alpha (JPEG, BMP): a name or "
        "#rrggbb (default white)",
    )
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep existing outputs and skip their inputs (continue an interrupted batch)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)
    return p


def _tile_bar(name: list[str]):
    """``progress(total)`` for the upscaler: a tiles-done / total bar for the current image
    (``name[0]``) on stderr, when it is a terminal."""
    from tqdm import tqdm

    def progress(total: int):
        desc = f"{name[0]} tiles"
        bar = tqdm(total=total, desc=desc, unit="tile", leave=False, file=sys.stderr, disable=None)

        def tick() -> None:
            bar.update()
            if bar.n >= total:
                bar.close()

        return tick

    return progress


def _background(text: str) -> tuple[float, float, float]:
    from PIL import ImageColor

    from contrast_sr.errors import UsageError

    try:
        rgb = ImageColor.getrgb(text)
    except ValueError:
        raise UsageError(
            "--background", f"unknown colour {text!r} (a name such as white, or #rrggbb)"
        ) from None
    return rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0


def _error_text(exc: Exception, source) -> str:
    from contrast_sr.errors import ContrastError

    why = exc.message if isinstance(exc, ContrastError) else " ".join(str(exc).split())
    why = why or type(exc).__name__
    return why if str(source) in why else f"{source}: {why}"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from contrast_sr.cli.upscale_plan import plan_jobs
    from contrast_sr.errors import ContrastError, Interrupted, UsageError
    from contrast_sr.infer import defaults
    from contrast_sr.infer.upscaler import Upscaler, parse_tile
    from contrast_sr.io import format_keeps_alpha, read_image, write_image

    if args.scale is not None and args.scale < 1:
        raise UsageError("--scale", f"must be a positive integer, got {args.scale}")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError("--threads", f"must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    background = _background(args.background)
    tile = parse_tile(args.tile)
    jobs = plan_jobs(args.inputs, args.output, args.overwrite, args.skip_existing)
    todo = [job for job in jobs if not job.skip]
    model = defaults.get_model(args.model, args.scale)
    current = [""]
    upscaler = Upscaler(
        model,
        device=args.device,
        precision=args.precision,
        tile=tile,
        tile_overlap=args.tile_overlap,
        max_memory=args.max_memory,
        self_ensemble=args.self_ensemble,
        alpha=args.alpha,
        scale=args.scale,
        progress=_tile_bar(current),
    )
    done, failures, warnings = [], [], []
    bar = tqdm(
        todo, desc="upscale", unit="img", file=sys.stderr, disable=None if len(todo) > 1 else True
    )
    try:
        for job in bar:
            start = time.perf_counter()
            current[0] = job.source.name
            try:
                x, info = read_image(job.source)
                y = upscaler(x)
                info = info.resized(y.shape[-1], y.shape[-2])
                if info.has_alpha and not format_keeps_alpha(job.target) and y[-1].min() < 1:
                    warnings.append(
                        f"{job.source}: {job.target.suffix} has no alpha; transparent pixels "
                        f"composited onto {args.background} (--background)"
                    )
                    print(f"warning: {warnings[-1]}", file=sys.stderr)
                write_image(job.target, y, info, background=background)
            except (ContrastError, OSError, ValueError, MemoryError) as exc:
                failures.append({"input": str(job.source), "error": _error_text(exc, job.source)})
                continue
            done.append(
                {
                    "input": str(job.source),
                    "output": str(job.target),
                    "width": int(y.shape[-1]),
                    "height": int(y.shape[-2]),
                    "tile": list(upscaler.last_tile) if upscaler.last_tile else None,
                    "tiles": upscaler.last_tiles,
                    "seconds": round(time.perf_counter() - start, 3),
                }
            )
    except KeyboardInterrupt:
        bar.close()
        raise Interrupted(
            "interrupted",
            f"{len(done)} of {len(todo)} image(s) written (each one whole); rerun with "
            "--skip-existing to continue",
        ) from None
    skipped = [str(job.source) for job in jobs if job.skip]
    name = getattr(model, "variant", None) or type(model).__name__
    summary = {
        "model": args.model or f"{defaults.DEFAULT_MODEL_NAME} (bundled)",
        "architecture": name,
        "scale": upscaler.scale,
        "device": str(upscaler.device),
        "precision": args.precision,
        "tile": args.tile if tile == "auto" else (tile or 0),
        "max_memory": upscaler.budget(),
        "self_ensemble": bool(args.self_ensemble),
        "outputs": done,
        "skipped": skipped,
        "warnings": warnings,
        "failures": failures,
    }
    for failure in failures:
        print(f"error: {failure['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"upscaled {len(done)} of {len(todo)} image(s) x{upscaler.scale} -> {args.output}"
            + (f" ({len(skipped)} skipped: output exists)" if skipped else "")
            + (f" ({len(failures)} failed)" if failures else "")
        )
    return 1 if failures else 0
