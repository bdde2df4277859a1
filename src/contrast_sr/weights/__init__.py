"""The bundled weights: ``<name>_x<scale>.safetensors`` project checkpoints beside this file."""

from __future__ import annotations

import re
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"(?P<name>.+)_x(?P<scale>\d+)\.safetensors")


def bundled_weights(name: str, scale: int) -> Path:
    """Path of the bundled checkpoint of variant ``name`` at ``scale`` (it may not exist)."""
    return WEIGHTS_DIR / f"{name}_x{int(scale)}.safetensors"


def bundled_scales(name: str) -> list[int]:
    """The scales that variant ``name`` has bundled weights for (sorted; often none)."""
    return [scale for n, scale in bundled_variants() if n == name]


def bundled_variants() -> list[tuple[str, int]]:
    """(name, scale) of every bundled checkpoint, sorted."""
    found = (_NAME.fullmatch(p.name) for p in WEIGHTS_DIR.glob("*.safetensors"))
    return sorted((m["name"], int(m["scale"])) for m in found if m)
