"""PSNR / SSIM (Y) against hand-computed values and a direct windowed implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contrast_sr.metrics import (
    C1,
    C2,
    calculate_psnr,
    calculate_psnr_y,
    calculate_ssim,
    calculate_ssim_y,
    gaussian_window,
    rgb_to_y,
)


def test_rgb_to_y_bt601_constants():
    img = np.zeros((3, 1, 4))
    img[:, 0, 1] = 255  # white
    img[0, 0, 2] = 255  # red
    img[2, 0, 3] = 255  # blue
    y = rgb_to_y(img)[0, 0]
    assert y.tolist() == pytest.approx([16.0, 235.0, 16 + 65.481, 16 + 24.966], abs=1e-12)


def test_gray_is_measured_on_its_own_channel():
    gray = np.full((1, 8, 8), 77.0)
    assert np.array_equal(rgb_to_y(gray), gray)
    a, b = np.zeros((16, 16)), np.full((16, 16), 10.0)
    assert calculate_psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / 100))


def test_psnr_hand_computed():
    a = torch.zeros(3, 10, 10, dtype=torch.uint8)
    b = a + 1
    assert calculate_psnr(a, b) == pytest.approx(10 * math.log10(255**2))  # 48.1308 dB
    assert calculate_psnr(a, a) == math.inf
    # black vs white RGB: Y is 16 vs 235, so MSE = 219^2
    white = torch.full((3, 10, 10), 255, dtype=torch.uint8)
    assert calculate_psnr_y(a, white) == pytest.approx(20 * math.log10(255 / 219))


def test_crop_border_removes_the_border():
    a = np.zeros((1, 12, 12))
    b = a.copy()
    b[0, :2, :] = 50
    b[0, :, -2:] = 50
    assert calculate_psnr(a, b, crop_border=2) == math.inf
    assert calculate_psnr(a, b, crop_border=1) < 30
    # one differing pixel of 10 in an 8x8 centre: MSE = 100 / 64
    b = a.copy()
    b[0, 5, 5] = 10
    assert calculate_psnr(a, b, crop_border=2) == pytest.approx(10 * math.log10(255**2 * 64 / 100))


def test_gaussian_window_matches_formula():
    g = gaussian_window(11, 1.5)
    raw = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    assert g == pytest.approx(raw / raw.sum())
    assert g.sum() == pytest.approx(1.0)


def test_ssim_of_constant_images_hand_computed():
    a, b = np.full((15, 15), 100.0), np.full((15, 15), 120.0)
    expected = (2 * 100 * 120 + C1) / (100**2 + 120**2 + C1)  # variances are zero
    assert calculate_ssim(a, b) == pytest.approx(expected, abs=1e-12)
    assert calculate_ssim(a, a) == pytest.approx(1.0)


def _ssim_direct(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM with an explicit 11x11 window at every valid position (float64)."""
    w = np.outer(gaussian_window(), gaussian_window())
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * pa * pa).sum() - ma**2
            vb = (w * pb * pb).sum() - mb**2
            cov = (w * pa * pb).sum() - ma * mb
            vals.append(
                ((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma**2 + mb**2 + C1) * (va + vb + C2))
            )
    return float(np.mean(vals))


def test_ssim_matches_direct_window_computation():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (17, 19)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).round()
    assert calculate_ssim(a, b) == pytest.approx(_ssim_direct(a, b), abs=1e-12)
    assert calculate_ssim(a, b, crop_border=2) == pytest.approx(
        _ssim_direct(a[2:-2, 2:-2], b[2:-2, 2:-2]), abs=1e-12
    )


def test_ssim_y_uses_luma_and_rgb_ssim_averages_channels():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (3, 16, 16)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 10, a.shape), 0, 255).round()
    ya, yb = rgb_to_y(a)[0], rgb_to_y(b)[0]
    assert calculate_ssim_y(a, b) == pytest.approx(_ssim_direct(ya, yb), abs=1e-12)
    per_channel = [_ssim_direct(a[c], b[c]) for c in range(3)]
    assert calculate_ssim(a, b) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_shape_errors():
    with pytest.raises(ValueError):
        calculate_psnr(np.zeros((3, 8, 8)), np.zeros((3, 8, 9)))
    with pytest.raises(ValueError):
        calculate_ssim(np.zeros((8, 8)), np.zeros((8, 8)))  # smaller than the 11x11 window
    with pytest.raises(ValueError):
        calculate_psnr(np.zeros((4, 4)), np.zeros((4, 4)), crop_border=2)
