"""The bundled weights: ``<name>_x<scale>.safetensors`` project checkpoints beside this file."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent


def bundled_weights(name: str, scale: int) -> Path:
    """Path of the bundled checkpoint of variant ``name`` at ``scale`` (it may not exist)."""
    return WEIGHTS_DIR / f"{name}_x{int(scale)}.safetensors"
