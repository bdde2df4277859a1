"""The shared ``--threads N|auto`` flag of every command that computes (policy in
:mod:`contrast_sr.utils.threads`; ``main`` applies it before the command runs)."""

from __future__ import annotations

import argparse

# commands that run models or kernels; the others (models, convert, plot) only read and write
COMPUTING_COMMANDS = ("upscale", "eval", "train", "export", "bench", "lam", "features", "compare")
# auto ignores the load here: sums depend on the thread count, and a training run (or its
# resume) must give the same bits whatever else the machine was doing
LOAD_INDEPENDENT_COMMANDS = ("train", "study")
HELP = (
    "CPU threads: N, or auto (default): $OMP_NUM_THREADS if set, else the physical cores "
    "minus those other processes keep busy now"
)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads`` (default "auto") unless the parser has it."""
    if "--threads" not in parser._option_string_actions:
        parser.add_argument("--threads", default="auto", metavar="N|auto", help=HELP)
