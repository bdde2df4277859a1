"""BasicSR's numpy PSNR / SSIM (``basicsr.metrics.psnr_ssim``), same signature and values.

``calculate_psnr(img, img2, crop_border, input_order='HWC', test_y_channel=False, **kwargs)``
and ``calculate_ssim(...)`` take images on the 0..255 scale, ``(H, W, C)`` by default (BasicSR
reads images with OpenCV: **channel order BGR**, so ``test_y_channel`` converts with
:func:`~contrast_sr.basicsr.color.bgr2ycbcr`), ``'CHW'`` on request, or ``(H, W)``. Steps as
BasicSR: shapes equal, reorder to HWC, crop ``crop_border`` on every side, Y (float32, as
BasicSR's ``to_y_channel``), float64, then PSNR = ``10 log10(255^2 / MSE)`` (inf when equal) or
the mean over channels of the SSIM map (11x11 Gaussian, sigma 1.5, valid windows).

Differences from the project's :mod:`contrast_sr.metrics`: that one is RGB ``(C, H, W)`` and
computes Y in float64; the two agree to about 1e-5 dB on real images.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from contrast_sr.basicsr.color import bgr2ycbcr
from contrast_sr.basicsr.errors import ShapeMismatchError
from contrast_sr.errors import ArgumentError
from contrast_sr.metrics import ssim_per_channel

__all__ = ["calculate_psnr", "calculate_ssim", "reorder_image", "to_y_channel"]

INPUT_ORDERS = ("HWC", "CHW")


def reorder_image(img: np.ndarray, input_order: str = "HWC") -> np.ndarray:
    """(H, W) -> (H, W, 1); (C, H, W) with ``'CHW'`` -> (H, W, C); (H, W, C) unchanged."""
    if input_order not in INPUT_ORDERS:
        raise ArgumentError("input_order", f"must be 'HWC' or 'CHW', not {input_order!r}")
    if img.ndim == 2:
        return img[..., None]
    if img.ndim != 3:
        raise ArgumentError("img", f"expected (H, W), (H, W, C) or (C, H, W), got {img.shape}")
    return img.transpose(1, 2, 0) if input_order == "CHW" else img


def to_y_channel(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) BGR on 0..255 -> Y (H, W, 1) on 16..235, float32 without rounding (other
    channel counts are only converted to float32)."""
    img = img.astype(np.float32) / 255.0
    if img.ndim == 3 and img.shape[2] == 3:
        img = bgr2ycbcr(img, y_only=True)[..., None]
    return img * 255.0


def _as_array(img) -> np.ndarray:
    if isinstance(img, torch.Tensor):
        return img.detach().cpu().numpy()
    return np.asarray(img)


def _prepare(img, img2, crop_border: int, input_order: str, test_y_channel: bool):
    """Both images as float64 (H', W', C) after reordering, cropping and the Y conversion."""
    img, img2 = _as_array(img), _as_array(img2)
    if img.shape != img2.shape:
        raise ShapeMismatchError("img2", f"shape {img2.shape} differs from img's {img.shape}")
    if input_order not in INPUT_ORDERS:
        raise ArgumentError("input_order", f"must be 'HWC' or 'CHW', not {input_order!r}")
    if crop_border < 0:
        raise ArgumentError("crop_border", f"must be >= 0, got {crop_border}")
    out = []
    for x in (img, img2):
        x = reorder_image(x, input_order)
        if crop_border:
            x = x[crop_border:-crop_border, crop_border:-crop_border, ...]
        if test_y_channel:
            x = to_y_channel(x)
        out.append(x.astype(np.float64))
    return out


def calculate_psnr(
    img, img2, crop_border: int, input_order: str = "HWC", test_y_channel: bool = False, **kwargs
) -> float:
    """PSNR in dB of two images on 0..255 (``inf`` when they are equal); other keyword
    arguments are ignored, as in BasicSR."""
    a, b = _prepare(img, img2, crop_border, input_order, test_y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return math.inf
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def calculate_ssim(
    img, img2, crop_border: int, input_order: str = "HWC", test_y_channel: bool = False, **kwargs
) -> float:
    """SSIM averaged over channels. Images smaller than 11x11 after cropping give NaN (with a
    RuntimeWarning), as BasicSR's empty mean does."""
    a, b = _prepare(img, img2, crop_border, input_order, test_y_channel)
    if a.shape[0] < 11 or a.shape[1] < 11:
        warnings.warn(
            f"SSIM needs at least 11x11 pixels, got {a.shape[:2]}: NaN (as BasicSR)",
            RuntimeWarning,
            stacklevel=2,
        )
        return math.nan
    return float(ssim_per_channel(a.transpose(2, 0, 1), b.transpose(2, 0, 1)).mean())
