"""Import the real spandrel for the integration tests, also where torchvision is missing.

spandrel imports ``torchvision.transforms.functional`` at import time for two architectures
(LaMa: ``InterpolationMode``, ``rotate``; RestoreFormer: ``normalize``) and uses it nowhere
else. torchvision's PyPI wheel is built against CUDA torch and does not import with the CPU
torch (``operator torchvision::nms does not exist``), and no CPU wheel is in the offline index,
so without torchvision this stands in those three names (calling them raises) while spandrel
imports, then removes the stand-in from ``sys.modules``. A working torchvision is used as is.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import sys
import types

import pytest

_STUB_NAMES = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")


class _InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _not_installed(*args, **kwargs):
    raise RuntimeError("torchvision is not installed (a test stand-in for spandrel's import)")


def _stub_modules() -> dict[str, types.ModuleType]:
    root, transforms, functional = (types.ModuleType(name) for name in _STUB_NAMES)
    functional.InterpolationMode = _InterpolationMode
    functional.rotate = functional.normalize = _not_installed
    root.transforms, transforms.functional = transforms, functional
    return dict(zip(_STUB_NAMES, (root, transforms, functional), strict=True))


def import_spandrel() -> types.ModuleType:
    """The spandrel module, or a module-level skip saying why it cannot be imported."""
    if importlib.util.find_spec("spandrel") is None:
        pytest.skip(
            'spandrel is not installed (pip install "contrast-sr[spandrel]")',
            allow_module_level=True,
        )
    if "spandrel" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        try:
            return importlib.import_module("spandrel")
        except Exception as exc:  # a torchvision built for another torch raises RuntimeError
            pytest.skip(f"spandrel does not import: {exc}", allow_module_level=True)
    sys.modules.update(_stub_modules())
    try:
        return importlib.import_module("spandrel")
    finally:
        for name in _STUB_NAMES:
            sys.modules.pop(name, None)
