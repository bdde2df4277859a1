"""contrast_sr.basicsr against BasicSR's test_psnr_ssim.py and an independent restatement.

The restatement below follows BasicSR's steps literally (HWC, BGR, crop, Y through float32 as
its ``to_y_channel``, float64 PSNR; SSIM with an explicit 11x11 window at every position), so
values must agree within 1e-6 dB / 1e-10.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contrast_sr.basicsr import (
    bgr2ycbcr,
    calculate_psnr,
    calculate_psnr_pt,
    calculate_ssim,
    calculate_ssim_pt,
    rgb2ycbcr,
    rgb2ycbcr_pt,
    ycbcr2bgr,
    ycbcr2rgb,
)
from contrast_sr.errors import ArgumentError
from contrast_sr.metrics import calculate_psnr_y, calculate_ssim_y

# ---------------------------------------------------------------- BasicSR's own test, restated


def test_calculate_psnr_behaves_as_basicsr_tests_it():
    with pytest.raises(AssertionError):
        calculate_psnr(np.ones((16, 16)), np.ones((10, 10)), crop_border=0)
    with pytest.raises(ValueError):
        calculate_psnr(np.ones((16, 16)), np.ones((16, 16)), crop_border=1, input_order="WRONG")
    ones = np.ones((10, 10, 3))
    out = calculate_psnr(ones, ones * 2, crop_border=1, test_y_channel=True)
    assert isinstance(out, float)
    # gray pixels v: Y = 16 + 219 v / 255, so 1 vs 2 differ by 219/255 (float32 Y: ~3e-6 dB off)
    assert out == pytest.approx(20 * math.log10(255 / (219 / 255)), abs=1e-5)
    out = calculate_psnr(np.ones((10, 10, 3)), np.ones((10, 10, 3)), crop_border=0)
    assert out == float("inf")


def test_calculate_ssim_behaves_as_basicsr_tests_it():
    with pytest.raises(AssertionError):
        calculate_ssim(np.ones((16, 16)), np.ones((10, 10)), crop_border=0)
    with pytest.raises(ValueError):
        calculate_ssim(np.ones((16, 16)), np.ones((16, 16)), crop_border=1, input_order="WRONG")
    with pytest.warns(RuntimeWarning, match="11x11"):  # 8x8 after cropping: BasicSR's NaN
        ones = np.ones((10, 10, 3))
        out = calculate_ssim(ones, ones * 2, crop_border=1, test_y_channel=True)
    assert isinstance(out, float) and math.isnan(out)


def test_errors_are_typed_too():
    with pytest.raises(ArgumentError) as info:
        calculate_psnr(np.ones((16, 16)), np.ones((10, 10)), crop_border=0)
    assert info.value.argument == "img2"
    with pytest.raises(ArgumentError) as info:
        calculate_ssim(np.ones((16, 16)), np.ones((16, 16)), 0, input_order="WHC")
    assert info.value.argument == "input_order"
    with pytest.raises(TypeError):
        rgb2ycbcr(np.ones((2, 2, 3)))  # float64: BasicSR takes uint8 or float32 only


# ---------------------------------------------------------------- independent restatement


def y_basicsr(hwc_bgr: np.ndarray) -> np.ndarray:
    """BGR (H, W, 3) on 0..255 -> Y (H, W), the float32 steps of BasicSR's to_y_channel."""
    x = hwc_bgr.astype(np.float32) / np.float32(255)
    b, g, r = (x[..., i].astype(np.float64) for i in range(3))
    y = ((24.966 * b + 128.553 * g + 65.481 * r + 16.0) / 255.0).astype(np.float32)
    return (y * np.float32(255)).astype(np.float64)


def psnr_direct(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255.0**2 / np.mean((a - b) ** 2))


def ssim_direct(a: np.ndarray, b: np.ndarray) -> float:
    """One channel (H, W) float64: the SSIM formula with the 11x11 window at every position."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            p, q = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            mp, mq = (w * p).sum(), (w * q).sum()
            vp, vq = (w * p * p).sum() - mp**2, (w * q * q).sum() - mq**2
            cov = (w * p * q).sum() - mp * mq
            vals.append(
                ((2 * mp * mq + c1) * (2 * cov + c2)) / ((mp**2 + mq**2 + c1) * (vp + vq + c2))
            )
    return float(np.mean(vals))


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(16)
    a = rng.integers(0, 256, (30, 26, 3)).astype(np.uint8)
    noise = rng.integers(-12, 13, a.shape)
    return a, np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("crop", [0, 3])
def test_psnr_and_ssim_equal_the_restatement(pair, crop):
    a, b = pair
    c = slice(crop, a.shape[0] - crop), slice(crop, a.shape[1] - crop)
    ya, yb = y_basicsr(a[c]), y_basicsr(b[c])
    assert calculate_psnr(a, b, crop, test_y_channel=True) == pytest.approx(
        psnr_direct(ya, yb), abs=1e-6
    )
    fa, fb = a[c].astype(np.float64), b[c].astype(np.float64)
    assert calculate_psnr(a, b, crop) == pytest.approx(psnr_direct(fa, fb), abs=1e-6)
    chw = (a.transpose(2, 0, 1), b.transpose(2, 0, 1))
    assert calculate_psnr(*chw, crop, input_order="CHW") == calculate_psnr(a, b, crop)
    ssim_y = calculate_ssim(a, b, crop, test_y_channel=True)
    assert ssim_y == pytest.approx(ssim_direct(ya, yb), abs=1e-10)
    ssim_rgb = np.mean([ssim_direct(fa[..., i], fb[..., i]) for i in range(3)])
    assert calculate_ssim(a, b, crop) == pytest.approx(ssim_rgb, abs=1e-10)
    assert calculate_ssim(*chw, crop, input_order="CHW") == pytest.approx(ssim_rgb, abs=1e-10)


def test_basicsr_and_project_protocols_agree_on_the_same_image(pair):
    """BasicSR is BGR HWC with a float32 Y, the project RGB CHW with a float64 Y."""
    a, b = pair
    rgb = a[..., ::-1].transpose(2, 0, 1), b[..., ::-1].transpose(2, 0, 1)
    assert calculate_psnr(a, b, 2, test_y_channel=True) == pytest.approx(
        calculate_psnr_y(*rgb, crop_border=2), abs=1e-4
    )
    assert calculate_ssim(a, b, 2, test_y_channel=True) == pytest.approx(
        calculate_ssim_y(*rgb, crop_border=2), abs=1e-7
    )


# ---------------------------------------------------------------- colour conversions


def test_colour_conversions_known_values_and_round_trips():
    px = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0]]], dtype=np.uint8)  # RGB
    assert rgb2ycbcr(px).tolist() == [[[235, 128, 128], [16, 128, 128], [81, 90, 240]]]
    assert rgb2ycbcr(px, y_only=True).tolist() == [[235, 16, 81]]
    assert np.array_equal(bgr2ycbcr(px[..., ::-1]), rgb2ycbcr(px))
    f = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    ycc = rgb2ycbcr(f)
    assert ycc.dtype == np.float32 and ycc.shape == (4, 5, 3)
    assert np.allclose(ycc[..., 0], (16 + f @ np.array([65.481, 128.553, 24.966])) / 255, atol=1e-6)
    assert np.allclose(ycbcr2rgb(ycc), f, atol=1e-4)  # BasicSR's inverse uses rounded constants
    assert np.allclose(ycbcr2bgr(ycc), f[..., ::-1], atol=1e-4)
    back = ycbcr2rgb(rgb2ycbcr(px))  # red's blue comes back as -0.97: clipped to 0, not wrapped
    assert back.dtype == np.uint8 and np.abs(back.astype(int) - px).max() <= 1
    t = torch.from_numpy(f).permute(2, 0, 1)[None]
    assert torch.allclose(rgb2ycbcr_pt(t).permute(0, 2, 3, 1)[0], torch.from_numpy(ycc), atol=1e-6)
    assert rgb2ycbcr_pt(t, y_only=True).shape == (1, 1, 4, 5)


# ---------------------------------------------------------------- batched torch metrics


def test_torch_metrics_per_image_as_basicsr(pair):
    a, b = pair
    rgb = [torch.from_numpy(x[..., ::-1].copy()).permute(2, 0, 1).double() / 255 for x in (a, b)]
    x = torch.stack([rgb[0], rgb[1]])  # a batch of two
    y = torch.stack([rgb[1], rgb[1]])
    psnr = calculate_psnr_pt(x, y, crop_border=2, test_y_channel=True)
    assert psnr.shape == (2,) and psnr.dtype == torch.float64
    # RGB in [0, 1]; BasicSR's coefficient tensor is float32 (torch.tensor of Python floats)
    wr, wg, wb = torch.tensor([65.481, 128.553, 24.966]).double()
    ya = (16 + wr * x[:, 0] + wg * x[:, 1] + wb * x[:, 2]) / 255
    yb = (16 + wr * y[:, 0] + wg * y[:, 1] + wb * y[:, 2]) / 255
    mse = ((ya - yb)[:, 2:-2, 2:-2] ** 2).mean((1, 2))
    assert torch.allclose(psnr, 10 * torch.log10(1 / (mse + 1e-8)), rtol=0, atol=1e-9)
    assert psnr[1] == pytest.approx(80.0)  # BasicSR's 1e-8: equal images give 80 dB, not inf
    ssim = calculate_ssim_pt(x, y, crop_border=2)
    direct = np.mean(
        [ssim_direct(*(t[0, i, 2:-2, 2:-2].numpy() * 255 for t in (x, y))) for i in range(3)]
    )
    assert ssim[0].item() == pytest.approx(direct, abs=1e-10) and ssim[1].item() == pytest.approx(1)
    x.requires_grad_()
    calculate_ssim_pt(x, y, 0, test_y_channel=True).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(AssertionError):
        calculate_psnr_pt(x, y[:1], 0)


# ---------------------------------------------------------------- the project's own metrics


def test_project_metrics_refuse_layouts_they_would_have_to_guess():
    from contrast_sr.metrics import calculate_psnr as project_psnr
    from contrast_sr.metrics import calculate_ssim as project_ssim

    hwc = np.random.default_rng(1).integers(0, 256, (32, 24, 3)).astype(np.float64)
    for fn in (project_psnr, project_ssim, calculate_psnr_y):
        with pytest.raises(ArgumentError, match=r"\(H, W, C\)") as info:
            fn(hwc, hwc + 1)
        assert info.value.argument == "img1"
    with pytest.raises(ArgumentError, match="reads as"):
        project_psnr(np.zeros((3, 24, 3)), np.zeros((3, 24, 3)))
    assert project_psnr(np.zeros((24, 3)), np.ones((24, 3))) == pytest.approx(20 * math.log10(255))
    # the same array measured where its layout is explicit
    assert calculate_psnr(hwc, hwc + 1, 0) == pytest.approx(20 * math.log10(255))
    chw = hwc.transpose(2, 0, 1)
    assert project_psnr(chw, chw + 1) == pytest.approx(20 * math.log10(255))
