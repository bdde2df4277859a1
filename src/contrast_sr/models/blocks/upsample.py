"""Reconstruction heads. Each builds the modules under their original names.

* ``pixelshuffledirect``: ``upsample`` = conv3x3 C -> 3s², PixelShuffle(s). 27Cs² + 3s².
* ``pixelshuffle``: ``conv_before_upsample`` = conv3x3 C -> F (+ LeakyReLU 0.01),
  ``upsample`` = [conv3x3 F -> 4F, PixelShuffle(2)] x log2(s) or conv3x3 F -> 9F, PixelShuffle(3),
  ``conv_last`` = conv3x3 F -> 3.
* ``pixelshuffle_v2`` (x4 only): ``upsample`` = PixelShuffle(2), conv3x3 C/4 -> 12, PixelShuffle(2).
"""

from __future__ import annotations

import math

from torch import nn

UPSAMPLERS = ("pixelshuffledirect", "pixelshuffle", "pixelshuffle_v2")


def _pixelshuffle_body(scale: int, feats: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    if scale & (scale - 1) == 0:
        for _ in range(int(math.log2(scale))):
            layers += [nn.Conv2d(feats, 4 * feats, 3, 1, 1), nn.PixelShuffle(2)]
    elif scale == 3:
        layers += [nn.Conv2d(feats, 9 * feats, 3, 1, 1), nn.PixelShuffle(3)]
    else:
        raise ValueError(f"pixelshuffle supports scales 2^n and 3, not {scale}")
    return nn.Sequential(*layers)


def build_upsampler(
    kind: str,
    dim: int,
    scale: int,
    out_chans: int = 3,
    features: int = 64,
    leaky_relu: bool = True,
) -> dict[str, nn.Module]:
    """Modules of the head, in order, keyed by their original attribute names."""
    if kind == "pixelshuffledirect":
        return {
            "upsample": nn.Sequential(
                nn.Conv2d(dim, out_chans * scale * scale, 3, 1, 1), nn.PixelShuffle(scale)
            )
        }
    if kind == "pixelshuffle":
        before: list[nn.Module] = [nn.Conv2d(dim, features, 3, 1, 1)]
        if leaky_relu:
            before.append(nn.LeakyReLU(0.01, inplace=True))
        return {
            "conv_before_upsample": nn.Sequential(*before),
            "upsample": _pixelshuffle_body(scale, features),
            "conv_last": nn.Conv2d(features, out_chans, 3, 1, 1),
        }
    if kind == "pixelshuffle_v2":
        if scale != 4 or dim % 4:
            raise ValueError("pixelshuffle_v2 needs scale 4 and dims divisible by 4")
        return {
            "upsample": nn.Sequential(
                nn.PixelShuffle(2), nn.Conv2d(dim // 4, 4 * out_chans, 3, 1, 1), nn.PixelShuffle(2)
            )
        }
    raise ValueError(f"unknown upsampler {kind!r}; choose from {list(UPSAMPLERS)}")
