"""Which tiles an image is cut into: the grid behind ``--tile auto`` and the overlap rule.

``plan_tiles(h, w, max_pixels, overlap)`` returns ``None`` when the whole image fits in
``max_pixels`` input pixels (no tiling at all), else the tile size ``(tile_h, tile_w)`` that
covers the image with the fewest pixels through the model: it tries every number of tile rows,
takes the fewest columns that fit, and shrinks the tiles to the smallest size that still covers
the image with the overlap (rounded up to a multiple of 16, the window of the Contrast models).
A 1000x750 image with room for 233k pixels gets 2 x 2 tiles of 400x528 (13% extra work) instead
of 3 x 2 squares of 480 (84% extra).
"""

from __future__ import annotations

import math

from contrast_sr.errors import ArgumentError
from contrast_sr.infer.tiling import tile_starts

MIN_TILE = 32
TILE_MULTIPLE = 16


def check_overlap(overlap: int, tile: int | None) -> int:
    """``overlap`` if it is >= 0 and, for a fixed ``tile``, less than half of it."""
    if overlap < 0:
        raise ArgumentError("tile_overlap", f"must be >= 0, got {overlap}")
    if tile is not None and 2 * overlap >= tile:
        raise ArgumentError(
            "tile_overlap",
            f"must be less than half the tile ({tile} pixels: at most {(tile - 1) // 2}), "
            f"got {overlap}; use larger tiles or a smaller overlap",
        )
    return int(overlap)


def smallest_tile(overlap: int) -> int:
    """The smallest tile side the planner uses: more than twice the overlap, at least 32."""
    return max(MIN_TILE, 2 * overlap + TILE_MULTIPLE)


def axis_tile(length: int, count: int, overlap: int) -> int:
    """Smallest tile (a multiple of 16, at most ``length``) with which ``count`` tiles that
    overlap by ``overlap`` cover ``length`` pixels."""
    if count <= 1:
        return length
    side = math.ceil((length + (count - 1) * overlap) / count)
    return min(math.ceil(side / TILE_MULTIPLE) * TILE_MULTIPLE, length)


def _fewest_tiles(length: int, most: int, overlap: int) -> int | None:
    """The tile side along an axis: the smallest count whose tiles are at most ``most``."""
    if length <= most:
        return length
    if most <= 2 * overlap:
        return None
    count = max(2, math.ceil((length - overlap) / (most - overlap)))
    while axis_tile(length, count, overlap) > most:
        count += 1
    return axis_tile(length, count, overlap)


def processed_pixels(height: int, width: int, tile: tuple[int, int], overlap: int) -> int:
    """Input pixels that go through the model for ``tile`` (h, w) tiles of the image."""
    th, tw = min(tile[0], height), min(tile[1], width)
    rows, cols = tile_starts(height, th, overlap), tile_starts(width, tw, overlap)
    return len(rows) * th * len(cols) * tw


def plan_tiles(height: int, width: int, max_pixels: int, overlap: int) -> tuple[int, int] | None:
    """``None`` if the whole image has at most ``max_pixels`` pixels; else the (tile_h, tile_w)
    of at most ``max_pixels`` pixels with the least work (module docstring). When not even the
    smallest tile (:func:`smallest_tile`) fits, that smallest tile is returned: the caller
    compares ``tile_h * tile_w`` with its budget."""
    if height * width <= max_pixels:
        return None
    smallest = smallest_tile(overlap)
    best: tuple[int, int, int, int] | None = None  # (work, tiles, th, tw)
    rows = 1
    while True:
        th = axis_tile(height, rows, overlap)
        if th < min(smallest, height):
            break
        tw = _fewest_tiles(width, max_pixels // th, overlap)
        if tw is not None and tw >= min(smallest, width):
            work = processed_pixels(height, width, (th, tw), overlap)
            tiles = len(tile_starts(height, th, overlap)) * len(tile_starts(width, tw, overlap))
            if best is None or (work, tiles) < best[:2]:
                best = (work, tiles, th, tw)
        if th == height and rows > 1:
            break
        rows += 1
    if best is None:
        return min(smallest, height), min(smallest, width)
    return best[2], best[3]
