"""The ``contrast-sr`` command: one parser, one module per subcommand.

Each subcommand lives in ``contrast_sr/cli/<name>.py`` and exposes
``register(subparsers) -> argparse.ArgumentParser`` which adds its parser and sets
``func=run`` with ``run(args) -> int``. Heavy imports (torch, models) happen inside ``run`` so
that ``--help`` stays fast. Library errors name parameters
(:class:`~contrast_sr.errors.ArgumentError`); ``main`` shows them as flags (``tile_overlap`` as
``--tile-overlap``), or as the command's own flag where the names differ
(``set_defaults(flag_names={"hr_dir": "--data"})``). Conventions (exit codes, one-line errors,
``--json``) are in ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from contrast_sr import __version__
from contrast_sr.cli.threads_arg import (
    COMPUTING_COMMANDS,
    LOAD_INDEPENDENT_COMMANDS,
    add_threads_argument,
)
from contrast_sr.errors import ArgumentError, ContrastError, UsageError

# Order = order in `contrast-sr --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "upscale",
    "serve",
    "eval",
    "train",
    "models",
    "convert",
    "export",
    "bench",
    "lam",
    "features",
    "compare",
    "plot",
    "study",
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit code 2) instead of a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}", f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="contrast-sr",
        description="Contrast-SR: single-image super-resolution toolkit.",
    )
    parser.add_argument("--version", action="version", version=f"contrast-sr {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when something fails"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"contrast_sr.cli.{name}")
        command = module.register(subparsers)
        if name in COMPUTING_COMMANDS:
            add_threads_argument(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            parser.print_help(sys.stderr)
            return 2
        if getattr(args, "threads", None) is not None:  # a computing command
            from contrast_sr.utils.malloc import keep_malloc_as_is, tune_malloc
            from contrast_sr.utils.threads import set_threads

            load_aware = args.command not in LOAD_INDEPENDENT_COMMANDS
            args.threads = set_threads(args.threads, load_aware)
            if getattr(args, "no_malloc_tune", False):
                keep_malloc_as_is()  # nor may the kernels tune it later
            else:
                # an untiled upscale allocates maps of ever new sizes: keep its memory lean
                untiled = args.command == "upscale" and not getattr(args, "tile", None)
                tune_malloc("lean" if untiled else "fast")
        return int(args.func(args) or 0)
    except ContrastError as exc:
        if isinstance(exc, ArgumentError):  # library arguments are flags here
            exc = exc.as_flag(getattr(args, "flag_names", {}).get(exc.argument))
        if debug:
            traceback.print_exc()
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # last line of defence: never a traceback without --debug
        if debug:
            traceback.print_exc()
        detail = " ".join(str(exc).split()) or type(exc).__name__
        print(
            f"error: unexpected {type(exc).__name__}: {detail} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return 1
