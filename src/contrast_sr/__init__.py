"""Contrast-SR: hybrid Mamba / attention single-image super-resolution in pure PyTorch."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "ContrastConfig",
    "__version__",
    "create_model",
    "list_models",
    "load_model",
    "upscale",
]

_LAZY = {"ContrastConfig", "create_model", "list_models", "load_model"}


def __getattr__(name: str):
    """Lazy model-API exports, so ``import contrast_sr`` stays light (no torch import)."""
    if name in _LAZY:
        from contrast_sr import models

        return getattr(models, name)
    if name == "upscale":
        from contrast_sr.infer import upscale

        return upscale
    raise AttributeError(f"module 'contrast_sr' has no attribute {name!r}")
