"""BasicSR's colour conversions (``basicsr.utils.color_util``), same names and results.

ITU-R BT.601 as MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb`` (not OpenCV's JPEG YCrCb). The numpy
functions take ``uint8`` images in [0, 255] or ``float32`` images in [0, 1], channels last
(..., 3), and return the same dtype and range: uint8 results are rounded, float32 ones are not.
They compute as BasicSR does (float32 input, the matrix product in float64, float32 output), so
the values agree to the last bit; one deliberate difference: uint8 results are clipped to
[0, 255] before the cast (BasicSR wraps, e.g. -1 -> 255). ``rgb2ycbcr_pt`` takes float
tensors (n, 3, h, w) in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from contrast_sr.basicsr.errors import DTypeError

__all__ = ["bgr2ycbcr", "rgb2ycbcr", "rgb2ycbcr_pt", "ycbcr2bgr", "ycbcr2rgb"]

# rows: input channel R, G, B; columns: output Y, Cb, Cr (inputs in [0, 1], outputs in [0, 255])
_RGB_TO_YCBCR = [[65.481, -37.797, 112.0], [128.553, -74.203, -93.786], [24.966, 112.0, -18.214]]
_YCBCR_OFFSET = [16, 128, 128]
# rows: Y, Cb, Cr; columns: R, G, B (inputs in [0, 255], times 255 again, plus the offset)
_YCBCR_TO_RGB = [
    [0.00456621, 0.00456621, 0.00456621],
    [0, -0.00153632, 0.00791071],
    [0.00625893, -0.00318811, 0],
]
_RGB_OFFSET = [-222.921, 135.576, -276.836]


def _to_unit_float32(img: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] or float32 [0, 1] -> float32 [0, 1]; DTypeError for anything else."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float32) / np.float32(255.0)
    if img.dtype == np.float32:
        return img.astype(np.float32)
    raise DTypeError("img", f"must be uint8 in [0, 255] or float32 in [0, 1], not {img.dtype}")


def _from_255(img: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A [0, 255] result back to the input's kind: uint8 rounded (and clipped: BasicSR casts
    e.g. -1 to uint8 as it is, which wraps), float32 divided by 255."""
    if dtype == np.uint8:
        return img.round().clip(0, 255).astype(np.uint8)
    return (img / 255.0).astype(np.float32)


def _to_ycbcr(img: np.ndarray, matrix: list[list[float]], y_only: bool) -> np.ndarray:
    dtype = np.asarray(img).dtype
    x = _to_unit_float32(img)
    if y_only:
        out = np.dot(x, [row[0] for row in matrix]) + 16.0
    else:
        out = np.matmul(x, matrix) + _YCBCR_OFFSET
    return _from_255(out, dtype)


def rgb2ycbcr(img: np.ndarray, y_only: bool = False) -> np.ndarray:
    """RGB (..., 3) -> YCbCr (..., 3), or Y (...) with ``y_only``; Y in 16..235 (/255 for float)."""
    return _to_ycbcr(img, _RGB_TO_YCBCR, y_only)


def bgr2ycbcr(img: np.ndarray, y_only: bool = False) -> np.ndarray:
    """BGR (..., 3) -> YCbCr (..., 3) or Y (...): :func:`rgb2ycbcr` with the input reversed."""
    return _to_ycbcr(img, _RGB_TO_YCBCR[::-1], y_only)


def ycbcr2rgb(img: np.ndarray) -> np.ndarray:
    """YCbCr (..., 3) -> RGB (..., 3), MATLAB's ``ycbcr2rgb``."""
    dtype = np.asarray(img).dtype
    x = _to_unit_float32(img) * 255
    out = np.matmul(x, _YCBCR_TO_RGB) * 255.0 + _RGB_OFFSET
    return _from_255(out, dtype)


def ycbcr2bgr(img: np.ndarray) -> np.ndarray:
    """YCbCr (..., 3) -> BGR (..., 3): :func:`ycbcr2rgb` with the output reversed."""
    dtype = np.asarray(img).dtype
    x = _to_unit_float32(img) * 255
    out = np.matmul(x, [row[::-1] for row in _YCBCR_TO_RGB]) * 255.0 + _RGB_OFFSET[::-1]
    return _from_255(out, dtype)


def rgb2ycbcr_pt(img: torch.Tensor, y_only: bool = False) -> torch.Tensor:
    """RGB tensors (n, 3, h, w) in [0, 1] -> YCbCr (n, 3, h, w) or Y (n, 1, h, w) in [0, 1],
    in img's dtype and device (differentiable). The coefficients are float32 numbers even for
    float64 images, as in BasicSR (``torch.tensor`` of Python floats)."""
    if y_only:
        weight = torch.tensor([[row[0]] for row in _RGB_TO_YCBCR]).to(img)
        out = torch.matmul(img.permute(0, 2, 3, 1), weight).permute(0, 3, 1, 2) + 16.0
    else:
        weight = torch.tensor(_RGB_TO_YCBCR).to(img)
        bias = torch.tensor(_YCBCR_OFFSET).view(1, 3, 1, 1).to(img)
        out = torch.matmul(img.permute(0, 2, 3, 1), weight).permute(0, 3, 1, 2) + bias
    return out / 255.0
