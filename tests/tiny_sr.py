"""A tiny SR network for fast training tests (custom-model path ``tests.tiny_sr:tiny_sr``)."""

from __future__ import annotations

from torch import nn


class TinySR(nn.Module):
    def __init__(self, scale: int = 2, dims: int = 8) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(3, dims, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(dims, 3 * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x):
        return self.body(x) + nn.functional.interpolate(x, scale_factor=self.scale)


def tiny_sr(scale: int = 2, dims: int = 8) -> TinySR:
    return TinySR(scale, dims)
