"""Contrast-SR: hybrid Mamba / attention single-image super-resolution in pure PyTorch."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
