"""BasicSR's batched torch PSNR / SSIM (``calculate_psnr_pt``, ``calculate_ssim_pt``).

Images are tensors (n, c, h, w) in [0, 1], **RGB** (``test_y_channel`` uses
:func:`~contrast_sr.basicsr.color.rgb2ycbcr_pt`); both return one value per image, a float64
tensor (n,) on the images' device, differentiable. As BasicSR: PSNR is
``10 log10(1 / (MSE + 1e-8))`` (80 dB, not inf, for equal images), SSIM runs on the 0..255
scale with the 11x11 Gaussian window (sigma 1.5) as a valid grouped convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrast_sr.basicsr.color import rgb2ycbcr_pt
from contrast_sr.basicsr.errors import ShapeMismatchError
from contrast_sr.errors import ArgumentError
from contrast_sr.metrics import C1, C2, gaussian_window

__all__ = ["calculate_psnr_pt", "calculate_ssim_pt"]


def _prepare(img: torch.Tensor, img2: torch.Tensor, crop_border: int, test_y_channel: bool):
    if img.shape != img2.shape:
        raise ShapeMismatchError(
            "img2", f"shape {tuple(img2.shape)} differs from img's {tuple(img.shape)}"
        )
    if img.dim() != 4:
        raise ArgumentError("img", f"must be (n, c, h, w), got {tuple(img.shape)}")
    if crop_border < 0:
        raise ArgumentError("crop_border", f"must be >= 0, got {crop_border}")
    out = []
    for x in (img, img2):
        if crop_border:
            x = x[:, :, crop_border:-crop_border, crop_border:-crop_border]
        if test_y_channel:
            x = rgb2ycbcr_pt(x, y_only=True)
        out.append(x.to(torch.float64))
    return out


def calculate_psnr_pt(
    img: torch.Tensor, img2: torch.Tensor, crop_border: int, test_y_channel: bool = False, **kwargs
) -> torch.Tensor:
    """PSNR (n,) in dB of images (n, c, h, w) in [0, 1]."""
    a, b = _prepare(img, img2, crop_border, test_y_channel)
    mse = torch.mean((a - b) ** 2, dim=[1, 2, 3])
    return 10.0 * torch.log10(1.0 / (mse + 1e-8))


def calculate_ssim_pt(
    img: torch.Tensor, img2: torch.Tensor, crop_border: int, test_y_channel: bool = False, **kwargs
) -> torch.Tensor:
    """SSIM (n,) of images (n, c, h, w) in [0, 1], averaged over channels and valid windows."""
    a, b = _prepare(img, img2, crop_border, test_y_channel)
    if a.shape[-1] < 11 or a.shape[-2] < 11:
        raise ArgumentError("img", f"SSIM needs at least 11x11 pixels, got {tuple(a.shape[-2:])}")
    a, b = a * 255.0, b * 255.0
    c = a.shape[1]
    g = torch.from_numpy(gaussian_window(11, 1.5)).to(a)
    window = torch.outer(g, g).expand(c, 1, 11, 11)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=c)

    mu1, mu2 = blur(a), blur(b)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = blur(a * a) - mu1_sq
    sigma2_sq = blur(b * b) - mu2_sq
    sigma12 = blur(a * b) - mu1_mu2
    cs_map = (2 * sigma12 + C2) / (sigma1_sq + sigma2_sq + C2)
    ssim_map = ((2 * mu1_mu2 + C1) / (mu1_sq + mu2_sq + C1)) * cs_map
    return ssim_map.mean([1, 2, 3])
