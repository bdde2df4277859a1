"""Tiled inference: run a model on overlapping tiles and blend them without seams.

A tile's border pixels see padding instead of the real neighbourhood, so tiles overlap and each
tile's contribution fades out smoothly (smoothstep ramp) across the overlap on every side that
touches another tile. Outputs are accumulated as ``sum(w * y) / sum(w)``; on the image border
the weight stays 1. Memory is bounded by one tile through the model plus the output buffers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

Forward = Callable[[Tensor], Tensor]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)``.

    Tiles overlap by at least ``overlap`` pixels; the first starts at 0, the last ends at
    ``length``, and the starts in between are spread evenly (so overlaps are near-equal).
    """
    if tile >= length:
        return [0]
    overlap = min(overlap, tile // 2)
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    span = length - tile
    return [round(i * span / (count - 1)) for i in range(count)]


def _ramp(n: int, device: torch.device) -> Tensor:
    """Smoothstep weights rising from ~0 to ~1 over ``n`` pixels (all strictly positive)."""
    t = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n
    return t * t * (3.0 - 2.0 * t)


def blend_weights(
    size: int, fade_start: int, fade_end: int, device: torch.device | str = "cpu"
) -> Tensor:
    """1-D weights of length ``size``: ramp up over ``fade_start``, down over ``fade_end``."""
    w = torch.ones(size, dtype=torch.float32, device=device)
    if fade_start > 0:
        w[:fade_start] = _ramp(fade_start, w.device)
    if fade_end > 0:
        w[size - fade_end :] = torch.minimum(
            w[size - fade_end :], _ramp(fade_end, w.device).flip(0)
        )
    return w


def _fades(starts: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """Per tile, (pixels to fade in at the start, pixels to fade out at the end)."""
    fades = []
    for i, s in enumerate(starts):
        end = min(s + tile, length)
        fade_in = (starts[i - 1] + tile - s) if i > 0 else 0
        fade_out = (end - starts[i + 1]) if i + 1 < len(starts) else 0
        fades.append((max(fade_in, 0), max(fade_out, 0)))
    return fades


def count_tiles(height: int, width: int, tile: int, overlap: int) -> int:
    return len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))


def tiled_forward(
    forward: Forward,
    x: Tensor,
    scale: int,
    tile: int,
    overlap: int = 32,
    on_tile: Callable[[], None] | None = None,
) -> Tensor:
    """Apply ``forward`` ((B,C,h,w) -> (B,C',s*h,s*w)) to ``x`` (B,C,H,W) tile by tile.

    Returns (B, C', s*H, s*W) float32 on ``x.device``. ``forward`` may run elsewhere (it moves
    the tile to its device); each tile's output is moved back to ``x.device`` and blended.
    ``on_tile`` is called after every tile (for progress bars).
    """
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    b, _, h, w = x.shape
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    fy, fx = _fades(ys, tile, h), _fades(xs, tile, w)
    out: Tensor | None = None
    weight_sum = torch.zeros(1, 1, scale * h, scale * w, dtype=torch.float32, device=x.device)
    for y0, (fy_in, fy_out) in zip(ys, fy, strict=True):
        for x0, (fx_in, fx_out) in zip(xs, fx, strict=True):
            patch = x[:, :, y0 : y0 + tile, x0 : x0 + tile]
            y = forward(patch).to(device=x.device, dtype=torch.float32)
            th, tw = patch.shape[-2] * scale, patch.shape[-1] * scale
            if y.shape[-2:] != (th, tw):
                raise RuntimeError(
                    f"model output {tuple(y.shape[-2:])} for a {tuple(patch.shape[-2:])} tile "
                    f"is not x{scale}"
                )
            if out is None:
                out = torch.zeros(b, y.shape[1], scale * h, scale * w, device=x.device)
            wy = blend_weights(th, fy_in * scale, fy_out * scale, x.device)
            wx = blend_weights(tw, fx_in * scale, fx_out * scale, x.device)
            wt = wy[:, None] * wx[None, :]
            oy, ox = y0 * scale, x0 * scale
            out[:, :, oy : oy + th, ox : ox + tw].addcmul_(y, wt)
            weight_sum[:, :, oy : oy + th, ox : ox + tw].add_(wt)
            del y
            if on_tile is not None:
                on_tile()
    assert out is not None
    return out.div_(weight_sum)
