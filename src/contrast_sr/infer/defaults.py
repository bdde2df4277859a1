"""The bundled default model and how ``--model`` / ``model=`` specs are turned into modules."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from torch import nn

from contrast_sr.errors import ContrastError

DEFAULT_MODEL_NAME = "contrast_tiny"


def default_weights(scale: int = 4) -> Path:
    """Path of the bundled weights for ``scale`` (the file may be missing)."""
    from contrast_sr.weights import bundled_weights

    return bundled_weights(DEFAULT_MODEL_NAME, scale)


@functools.lru_cache(maxsize=4)
def default_model(scale: int = 4) -> nn.Module:
    """The bundled model for ``scale``; falls back to the x4 one (resized output) if missing."""
    from contrast_sr.models import load_model
    from contrast_sr.weights import WEIGHTS_DIR

    for candidate in (scale, 4):
        path = default_weights(candidate)
        if path.is_file():
            return load_model(path)
    raise ContrastError(
        "default model", f"no bundled weights in {WEIGHTS_DIR}; pass --model NAME or a checkpoint"
    )


@functools.lru_cache(maxsize=4)
def _resolve(spec: str, scale: int | None) -> nn.Module:
    from contrast_sr.models import resolve_model

    return resolve_model(spec, scale)


def get_model(model: nn.Module | str | os.PathLike | None, scale: int | None = None) -> nn.Module:
    """``None`` -> bundled default; a module as is; a name or checkpoint path -> resolve_model."""
    if isinstance(model, nn.Module):
        return model
    if model is None:
        return default_model(scale or 4)
    return _resolve(os.fspath(model), scale)
