"""The page's before/after views: a thumbnail of the input, and one crop of the result next to
the same crop upscaled with MATLAB bicubic (``contrast_sr.ops.imresize``), as 8-bit PNGs."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from contrast_sr.errors import ArgumentError
from contrast_sr.ops.imresize import imresize

THUMB_SIZE = 480  # longest side of the thumbnail, pixels
CROP_SIZES = (8, 256)  # smallest and largest crop side, input pixels
METHODS = ("model", "bicubic")
_MARGIN = 4  # input pixels around a crop for bicubic (its kernel reaches 2 pixels)


@dataclass(frozen=True)
class Box:
    """A square crop in input pixels: left, top, side."""

    x: int
    y: int
    size: int


def fit_box(x: int, y: int, size: int, width: int, height: int) -> Box:
    """The crop of side ``size`` at (``x``, ``y``), moved and shrunk to lie inside the image."""
    low, high = CROP_SIZES
    if not low <= size <= high:
        raise ArgumentError("size", f"must be between {low} and {high} pixels, got {size}")
    size = min(size, width, height)
    return Box(min(max(x, 0), width - size), min(max(y, 0), height - size), size)


def _image(array: np.ndarray) -> Image.Image:
    """(H, W, C) uint8, C in 1..4 (gray, gray+alpha, RGB, RGBA) -> a Pillow image."""
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    """(H, W, C) uint8 with C in 1..4 -> PNG file bytes."""
    return _png(_image(array))


def thumbnail(array: np.ndarray, size: int = THUMB_SIZE) -> bytes:
    """PNG of the input, at most ``size`` pixels on its longest side (never enlarged)."""
    image = _image(array)
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    return _png(image)


def model_crop(output: np.ndarray, box: Box, scale: int) -> np.ndarray:
    """The result's pixels over ``box`` (given in input pixels)."""
    s = scale
    return np.ascontiguousarray(
        output[box.y * s : (box.y + box.size) * s, box.x * s : (box.x + box.size) * s]
    )


def bicubic_crop(source: np.ndarray, box: Box, scale: int) -> np.ndarray:
    """``box`` of the input upscaled ``scale`` times with MATLAB bicubic; equal to that crop
    of the whole image upscaled (the crop is taken with a margin, mirrored only at the image's
    own border, as for the whole image)."""
    h, w = source.shape[:2]
    top, left = max(box.y - _MARGIN, 0), max(box.x - _MARGIN, 0)
    bottom, right = min(box.y + box.size + _MARGIN, h), min(box.x + box.size + _MARGIN, w)
    patch = torch.from_numpy(np.array(source[top:bottom, left:right]))  # a writable copy
    x = patch.permute(2, 0, 1).float() / 255.0
    y = imresize(x, scale=scale).clamp_(0, 1)
    oy, ox = (box.y - top) * scale, (box.x - left) * scale
    side = box.size * scale
    y = y[:, oy : oy + side, ox : ox + side]
    return torch.round(y * 255.0).to(torch.uint8).permute(1, 2, 0).numpy()
