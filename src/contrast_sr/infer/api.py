"""``contrast_sr.upscale``: super-resolve one image and get the same type back."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from contrast_sr.infer.arrays import to_batch
from contrast_sr.infer.defaults import get_model
from contrast_sr.infer.upscaler import Upscaler


def upscale(
    image: Any,
    model: nn.Module | str | os.PathLike | None = None,
    scale: int = 4,
    tile: int | str | None = "auto",
    *,
    tile_overlap: int = 32,
    max_memory: int | str | None = None,
    self_ensemble: bool = False,
    device: str = "auto",
    precision: str = "fp32",
    alpha: str = "bicubic",
) -> Any:
    """Upscale ``image`` by ``scale`` and return it as the same type and kind.

    ``image``: a PIL image, a numpy array (H, W[, C]) uint8/uint16/float in [0, 1], or a torch
    tensor (C, H, W) / (B, C, H, W) float in [0, 1] or uint8. ``model``: None (the bundled
    default), a registered name, a checkpoint path, or an ``nn.Module`` with ``.scale``. If the
    model's own scale differs from ``scale``, its output is resized (bicubic) to ``scale``.
    ``tile``: ``"auto"`` (default: tiles only when the image would not fit ``max_memory``
    bytes, e.g. ``"2G"``; default a safe share of the free memory), a tile size in input
    pixels, or 0 / None (never tiled). ``tile_overlap`` must be less than half the tile.

    Raises :class:`~contrast_sr.errors.ArgumentError` (naming the parameter: ``tile``,
    ``precision``, ...) for bad arguments and :class:`~contrast_sr.errors.InputError` for an
    image it cannot take.
    """
    net = get_model(model, scale)
    upscaler = Upscaler(
        net,
        device=device,
        precision=precision,
        tile=tile,
        tile_overlap=tile_overlap,
        max_memory=max_memory,
        self_ensemble=self_ensemble,
        alpha=alpha,
        scale=scale,
    )
    x, restore = to_batch(image)
    return restore(upscaler(x))
