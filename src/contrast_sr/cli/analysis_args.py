"""Command-line arguments the analysis commands share (``lam``, ``compare``, ``features``,
``export``): the ``--box X,Y[,SIZE]`` text and ``--model(s)`` with its ``--random-init`` hint.

Not a command itself (it is not in ``COMMAND_MODULES``).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from contrast_sr.errors import MissingWeightsError, UsageError


def parse_box(text: str, default_size: int = 16) -> tuple[int, int, int]:
    """``X,Y[,SIZE]`` -> (x, y, size) of a square in output (HR) pixels."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise UsageError("--box", f"expected X,Y[,SIZE] integers, got {text!r}") from None
    if len(parts) not in (2, 3) or min(parts) < 0 or (len(parts) == 3 and parts[2] < 1):
        raise UsageError("--box", f"expected X,Y[,SIZE] with X,Y >= 0, SIZE >= 1, got {text!r}")
    x, y = parts[:2]
    return x, y, parts[2] if len(parts) == 3 else default_size


def model_from_arg(spec: str, scale: int | None, random_init: bool) -> nn.Module:
    """:func:`~contrast_sr.analysis.common.load_analysis_model` in eval mode, a missing-weights
    error phrased with the ``--random-init`` flag."""
    from contrast_sr.analysis.common import load_analysis_model

    try:
        return load_analysis_model(spec, scale, random_init).eval()
    except MissingWeightsError as exc:
        hint = "pass a checkpoint path, or --random-init for untrained weights"
        raise MissingWeightsError(exc.model, exc.scale, hint, exc.bundled) from None


def models_from_arg(
    specs: str, scale: int | None, random_init: bool, flag: str = "--model"
) -> list[tuple[str, nn.Module]]:
    """Comma-separated ``flag`` value -> [(name, model in eval mode)]."""
    names = [s.strip() for s in specs.split(",") if s.strip()]
    if not names:
        raise UsageError(flag, "give at least one model")
    return [
        (Path(name).stem if Path(name).suffix else name, model_from_arg(name, scale, random_init))
        for name in names
    ]
