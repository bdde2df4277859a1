"""What the analysis tools share: loading images and models, the (HR, LR) pair a figure starts
from, and the check that an output box fits the image."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from contrast_sr.data.degrade import bicubic_lr
from contrast_sr.errors import ArgumentError, InputError
from contrast_sr.io import read_image, to_uint8
from contrast_sr.ops.imresize import imresize


def load_image(path: str | Path) -> torch.Tensor:
    """Read an image as RGB (3, H, W) float32 in [0, 1] (gray is repeated, alpha dropped)."""
    image, _ = read_image(path)
    return image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)


def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """MATLAB-bicubic resize of (B, 3, H, W) by ``scale`` (differentiable)."""
    return imresize(x, scale=scale)


def hr_and_lr(hr: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop HR (3, H, W) in [0, 1] to a multiple of ``scale`` and make its LR as the papers do
    (:func:`~contrast_sr.data.degrade.bicubic_lr`, 8-bit).

    Returns (hr_cropped (1, 3, H', W'), lr (1, 3, H'/s, W'/s)), float32 in [0, 1].
    """
    h, w = hr.shape[-2:]
    h, w = h - h % scale, w - w % scale
    if h < scale or w < scale:
        raise InputError("image", f"smaller than the scale factor {scale}")
    hr = hr[None, :, :h, :w]
    return hr, bicubic_lr(to_uint8(hr), scale).float().div_(255.0)


class Bicubic(nn.Module):
    """The ``bicubic`` baseline as a model: (B, 3, H, W) -> (B, 3, sH, sW), differentiable."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.config = {"name": "bicubic", "scale": scale}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize(x, float(self.scale))


def load_analysis_model(spec: str, scale: int | None = 4, random_init: bool = False) -> nn.Module:
    """``bicubic``, a checkpoint path, or a registered name: with its bundled weights, or with
    random initialisation (seed 0) when ``random_init`` (to study an untrained architecture).

    Raises :class:`~contrast_sr.errors.MissingWeightsError` for a registered name without
    bundled weights.
    """
    scale_or_4 = scale or 4
    if spec == "bicubic":
        return Bicubic(scale_or_4)
    from contrast_sr.models import create_model, resolve_model

    if random_init and not Path(spec).is_file():
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same "untrained" weights on every run
            return create_model(spec, scale=scale_or_4)
    return resolve_model(spec, scale)


def check_box(box: tuple[int, int, int], height: int, width: int) -> None:
    """Raise unless the square ``box`` (x, y, size) lies inside a ``width`` x ``height`` image."""
    x, y, size = box
    if x + size > width or y + size > height:
        raise ArgumentError(
            "box", f"{x},{y},{size} does not fit in the {width}x{height} (WxH) output image"
        )
