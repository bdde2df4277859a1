"""PSNR and SSIM exactly as the SR literature computes them (BasicSR / MATLAB protocol).

Inputs are images on the 0..255 scale (uint8 tensors or arrays, or floats already quantised), laid
out ``(C, H, W)`` or ``(H, W)``; ``C`` is 3 (RGB) or 1 (gray). Everything is computed in float64.
The layout is never guessed: a 3-D image whose first axis is not 1 or 3 (an ``(H, W, C)`` array
such as OpenCV / BasicSR use), or one that reads both ways (``(3, H, 3)``), raises ArgumentError;
:mod:`contrast_sr.basicsr` has BasicSR's functions with their ``input_order='HWC'``.

- Y channel: ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for RGB in [0, 1] (BT.601, 16..235).
  A single-channel image is measured on its own channel (no conversion), as MATLAB evaluations do.
- ``crop_border`` pixels are removed on every side before measuring (usually the SR scale).
- PSNR = ``10 log10(255^2 / MSE)`` (``inf`` for identical images).
- SSIM: 11x11 Gaussian window (sigma 1.5), valid region only, ``C1 = (0.01 * 255)^2``,
  ``C2 = (0.03 * 255)^2``, mean of the SSIM map (averaged over channels for RGB SSIM).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from contrast_sr.errors import ArgumentError

__all__ = [
    "calculate_psnr",
    "calculate_psnr_y",
    "calculate_ssim",
    "calculate_ssim_y",
    "gaussian_window",
    "rgb_to_y",
    "ssim_per_channel",
]

_Y_WEIGHTS = (65.481, 128.553, 24.966)
C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def _as_chw64(img, name: str = "img") -> np.ndarray:
    """``(H, W)`` / ``(C, H, W)`` tensor or array -> float64 array ``(C, H, W)``.

    ArgumentError (naming ``name``) for any other shape, for ``C`` not 1 or 3, and for a shape
    that is also a valid ``(H, W, C)`` (``(3, H, 3)``, ``(1, H, 1)``, ...): never guessed."""
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu().numpy()
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 2:
        return a[None]
    if a.ndim != 3:
        raise ArgumentError(name, f"expected an image (C, H, W) or (H, W), got shape {a.shape}")
    hint = (
        "pass (C, H, W) with C = 1 or 3 (an (H, W, C) array: img.transpose(2, 0, 1)), or use "
        "contrast_sr.basicsr.calculate_psnr / calculate_ssim with input_order='HWC'"
    )
    if a.shape[0] not in (1, 3):
        raise ArgumentError(name, f"shape {a.shape} is not (C, H, W) with C = 1 or 3; {hint}")
    if a.shape[2] in (1, 3):
        raise ArgumentError(name, f"shape {a.shape} reads as (C, H, W) and (H, W, C); {hint}")
    return a


def _crop(a: np.ndarray, crop_border: int) -> np.ndarray:
    if crop_border < 0:
        raise ArgumentError("crop_border", f"must be >= 0, got {crop_border}")
    if crop_border == 0:
        return a
    return a[:, crop_border:-crop_border, crop_border:-crop_border]


def _pair(img1, img2, crop_border: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_chw64(img1, "img1"), _as_chw64(img2, "img2")
    if a.shape != b.shape:
        raise ArgumentError("img2", f"shape {b.shape} differs from img1's {a.shape}")
    a, b = _crop(a, crop_border), _crop(b, crop_border)
    if a.shape[-1] < 1 or a.shape[-2] < 1:
        raise ArgumentError(
            "crop_border", f"nothing left after cropping {crop_border} pixels from each side"
        )
    return a, b


def rgb_to_y(img) -> np.ndarray:
    """Y of BT.601 YCbCr on the 0..255 scale, float64 ``(1, H, W)``.

    ``img`` is RGB on 0..255 ``(3, H, W)``; a single-channel image is returned unchanged
    (as float64), so gray images are measured on their own channel.
    """
    a = _as_chw64(img)
    if a.shape[0] == 1:
        return a
    rgb = a / 255.0
    y = 16.0 + _Y_WEIGHTS[0] * rgb[0] + _Y_WEIGHTS[1] * rgb[1] + _Y_WEIGHTS[2] * rgb[2]
    return y[None]


def calculate_psnr(img1, img2, crop_border: int = 0) -> float:
    """PSNR over all channels (RGB PSNR for RGB input), 0..255 scale, float64."""
    a, b = _pair(img1, img2, crop_border)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def calculate_psnr_y(img1, img2, crop_border: int = 0) -> float:
    """PSNR on the Y channel (gray images: on their own channel)."""
    return calculate_psnr(
        rgb_to_y(_as_chw64(img1, "img1")), rgb_to_y(_as_chw64(img2, "img2")), crop_border
    )


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1-D Gaussian (as ``cv2.getGaussianKernel(size, sigma)``), float64 ``(size,)``.

    The SSIM window is its outer product with itself.
    """
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable filter with a symmetric odd kernel ``g``, valid region.

    ``(N, H, W)`` -> ``(N, H-k+1, W-k+1)`` with ``k = len(g)``; equal to filtering with the 2-D
    window ``outer(g, g)`` and keeping only positions where it fits inside the image.
    """

    def one_axis(a: np.ndarray, axis: int) -> np.ndarray:
        k, r = len(g), len(g) // 2
        n = a.shape[axis] - k + 1

        def part(i: int) -> np.ndarray:
            return a[:, i : i + n] if axis == 1 else a[:, :, i : i + n]

        out = g[r] * part(r)
        tmp = np.empty_like(out)
        for i in range(r):  # g[i] == g[k-1-i]: add the mirrored taps, multiply once
            np.add(part(i), part(k - 1 - i), out=tmp)
            tmp *= g[i]
            out += tmp
        return out

    return one_axis(one_axis(x, 1), 2)


def ssim_per_channel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-channel SSIM of ``(C, H, W)`` float64 images on the 0..255 scale -> ``(C,)``
    (any C; the mean of each channel's SSIM map over the valid 11x11 windows)."""
    if a.shape[-1] < 11 or a.shape[-2] < 11:
        raise ArgumentError("img1", f"SSIM needs at least 11x11 pixels, got {a.shape[-2:]}")
    c = a.shape[0]
    stats = _filter_valid(np.concatenate([a, b, a * a, b * b, a * b]), gaussian_window(11, 1.5))
    mu1, mu2, s11, s22, s12 = (stats[i * c : (i + 1) * c] for i in range(5))
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq, sigma2_sq, sigma12 = s11 - mu1_sq, s22 - mu2_sq, s12 - mu12
    ssim_map = ((2 * mu12 + C1) * (2 * sigma12 + C2)) / (
        (mu1_sq + mu2_sq + C1) * (sigma1_sq + sigma2_sq + C2)
    )
    return ssim_map.mean(axis=(-2, -1))


def calculate_ssim(img1, img2, crop_border: int = 0) -> float:
    """SSIM averaged over channels, 0..255 scale, float64."""
    a, b = _pair(img1, img2, crop_border)
    return float(ssim_per_channel(a, b).mean())


def calculate_ssim_y(img1, img2, crop_border: int = 0) -> float:
    """SSIM on the Y channel (gray images: on their own channel)."""
    return calculate_ssim(
        rgb_to_y(_as_chw64(img1, "img1")), rgb_to_y(_as_chw64(img2, "img2")), crop_border
    )
