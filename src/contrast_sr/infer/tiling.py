"""Tiled inference: run a model on overlapping tiles and blend them without seams.

A tile's border pixels see padding instead of the real neighbourhood, so tiles overlap and each
tile's contribution fades out smoothly (smoothstep ramp) across the overlap on every side that
touches another tile. Outputs are accumulated as ``sum(w * y) / sum(w)``; on the image border
the weight stays 1. A tile's weight is a product ``wy[:, None] * wx[None, :]`` and the tiles
form a grid, so ``sum(w)`` is the product of two 1-D sums: no full-size weight map. Memory is
one tile through the model plus the float32 output; the final division runs in bands of rows,
so an interrupt (Ctrl-C) is acted on within a fraction of a second even on huge outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

Forward = Callable[[Tensor], Tensor]
Tile = int | tuple[int, int]  # a square side, or (height, width)
_BAND_ELEMENTS = 1 << 24  # elements per normalisation step (64 MB of float32)


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


def _sides(tile: Tile) -> tuple[int, int]:
    return (tile, tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))


def count_tiles(height: int, width: int, tile: Tile, overlap: int) -> int:
    """Number of tiles of ``tile`` (side or (h, w)) that cover a ``height`` x ``width`` image."""
    th, tw = _sides(tile)
    return len(tile_starts(height, th, overlap)) * len(tile_starts(width, tw, overlap))


def _axis_weights(
    length: int, tile: int, overlap: int, scale: int, device: torch.device
) -> tuple[list[int], list[Tensor], Tensor]:
    """Tile starts along an axis, each tile's 1-D output weights, and their sum (s*length,)."""
    starts = tile_starts(length, tile, overlap)
    total = torch.zeros(scale * length, dtype=torch.float32, device=device)
    weights = []
    for s, (fade_in, fade_out) in zip(starts, _fades(starts, tile, length), strict=True):
        size = (min(s + tile, length) - s) * scale
        w = blend_weights(size, fade_in * scale, fade_out * scale, device)
        total[s * scale : s * scale + size] += w
        weights.append(w)
    return starts, weights, total


def _normalise(out: Tensor, row_sum: Tensor, col_sum: Tensor) -> Tensor:
    """``out / (row_sum[:, None] * col_sum[None, :])`` in place, a band of rows at a time."""
    rows = max(1, _BAND_ELEMENTS // max(1, out.shape[0] * out.shape[1] * out.shape[-1]))
    for r in range(0, out.shape[-2], rows):
        band = out[:, :, r : r + rows]
        band.div_(row_sum[r : r + rows, None]).div_(col_sum[None, :])
    return out


def tiled_forward(
    forward: Forward,
    x: Tensor,
    scale: int,
    tile: Tile,
    overlap: int = 32,
    on_tile: Callable[[], None] | None = None,
) -> Tensor:
    """Apply ``forward`` ((B,C,h,w) -> (B,C',s*h,s*w)) to ``x`` (B,C,H,W) tile by tile.

    ``tile``: a square side or (tile_h, tile_w). Returns (B, C', s*H, s*W) float32 on
    ``x.device``. ``forward`` may run elsewhere (it moves the tile to its device); each tile's
    output is moved back to ``x.device`` and blended. ``on_tile`` is called after every tile
    (progress bars); an exception it raises (KeyboardInterrupt) stops the loop there.
    """
    th, tw = _sides(tile)
    if th < 1 or tw < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    b, _, h, w = x.shape
    ys, wys, row_sum = _axis_weights(h, th, overlap, scale, x.device)
    xs, wxs, col_sum = _axis_weights(w, tw, overlap, scale, x.device)
    out: Tensor | None = None
    for y0, wy in zip(ys, wys, strict=True):
        for x0, wx in zip(xs, wxs, strict=True):
            patch = x[:, :, y0 : y0 + th, x0 : x0 + tw]
            y = forward(patch).to(device=x.device, dtype=torch.float32)
            if y.shape[-2:] != (wy.numel(), wx.numel()):
                raise RuntimeError(
                    f"model output {tuple(y.shape[-2:])} for a {tuple(patch.shape[-2:])} tile "
                    f"is not x{scale}"
                )
            if out is None:
                out = torch.zeros(b, y.shape[1], scale * h, scale * w, device=x.device)
            oy, ox = y0 * scale, x0 * scale
            region = out[:, :, oy : oy + wy.numel(), ox : ox + wx.numel()]
            region.addcmul_(y, wy[:, None] * wx[None, :])
            del y
            if on_tile is not None:
                on_tile()
    assert out is not None
    return _normalise(out, row_sum, col_sum)
