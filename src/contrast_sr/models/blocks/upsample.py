"""Reconstruction heads: (B, C, H, W) features -> (B, out_chans, s·H, s·W).

Every head is three modules under their original state-dict names, applied in order
``conv_last(upsample(conv_before_upsample(x)))``; a head without one of them holds an
``nn.Identity`` there (no parameters, so the state-dict keys are the original ones).

* ``pixelshuffledirect``: ``upsample`` = conv3x3 C -> 3s², PixelShuffle(s). 27Cs² + 3s².
* ``pixelshuffle``: ``conv_before_upsample`` = conv3x3 C -> F (+ LeakyReLU 0.01),
  ``upsample`` = [conv3x3 F -> 4F, PixelShuffle(2)] x log2(s) or conv3x3 F -> 9F, PixelShuffle(3),
  ``conv_last`` = conv3x3 F -> 3.
* ``pixelshuffle_v2`` (x4 only): ``upsample`` = PixelShuffle(2), conv3x3 C/4 -> 12, PixelShuffle(2).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from torch import nn

UPSAMPLERS = ("pixelshuffledirect", "pixelshuffle", "pixelshuffle_v2")


class Head(NamedTuple):
    """The three stages of a reconstruction head (``nn.Identity`` where a head has none)."""

    conv_before_upsample: nn.Module
    upsample: nn.Module
    conv_last: nn.Module


def pixelshuffle_direct(dim: int, scale: int, out_chans: int = 3) -> Head:
    """One conv3x3 C -> out_chans·s², then PixelShuffle(s) (the light models)."""
    conv = nn.Conv2d(dim, out_chans * scale * scale, 3, 1, 1)
    return Head(nn.Identity(), nn.Sequential(conv, nn.PixelShuffle(scale)), nn.Identity())


def pixelshuffle(
    dim: int, scale: int, out_chans: int = 3, features: int = 64, leaky_relu: bool = True
) -> Head:
    """conv3x3 C -> F [+ LeakyReLU], x2 (or x3) conv + PixelShuffle steps, conv3x3 F -> out."""
    if scale & (scale - 1) and scale != 3:
        raise ValueError(f"pixelshuffle supports scales 2^n and 3, not {scale}")
    before: list[nn.Module] = [nn.Conv2d(dim, features, 3, 1, 1)]
    if leaky_relu:
        before.append(nn.LeakyReLU(0.01, inplace=True))
    steps: list[nn.Module] = []
    if scale == 3:
        steps += [nn.Conv2d(features, 9 * features, 3, 1, 1), nn.PixelShuffle(3)]
    else:
        for _ in range(int(math.log2(scale))):
            steps += [nn.Conv2d(features, 4 * features, 3, 1, 1), nn.PixelShuffle(2)]
    upsample = nn.Sequential(*steps)
    return Head(nn.Sequential(*before), upsample, nn.Conv2d(features, out_chans, 3, 1, 1))


def pixelshuffle_v2(dim: int, scale: int, out_chans: int = 3) -> Head:
    """v2's head (x4 only): PixelShuffle(2), conv3x3 C/4 -> 4·out_chans, PixelShuffle(2)."""
    if scale != 4 or dim % 4:
        raise ValueError("pixelshuffle_v2 needs scale 4 and dims divisible by 4")
    conv = nn.Conv2d(dim // 4, 4 * out_chans, 3, 1, 1)
    upsample = nn.Sequential(nn.PixelShuffle(2), conv, nn.PixelShuffle(2))
    return Head(nn.Identity(), upsample, nn.Identity())


def build_upsampler(
    kind: str,
    dim: int,
    scale: int,
    out_chans: int = 3,
    features: int = 64,
    leaky_relu: bool = True,
) -> Head:
    """The head named ``kind`` (one of :data:`UPSAMPLERS`); ``features`` and ``leaky_relu``
    apply to ``pixelshuffle`` only."""
    if kind == "pixelshuffledirect":
        return pixelshuffle_direct(dim, scale, out_chans)
    if kind == "pixelshuffle":
        return pixelshuffle(dim, scale, out_chans, features, leaky_relu)
    if kind == "pixelshuffle_v2":
        return pixelshuffle_v2(dim, scale, out_chans)
    raise ValueError(f"unknown upsampler {kind!r}; choose from {', '.join(UPSAMPLERS)}")
