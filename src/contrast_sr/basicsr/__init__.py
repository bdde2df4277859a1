"""Drop-ins for BasicSR's metrics and colour conversions (``basicsr.metrics.psnr_ssim``,
``basicsr.metrics.metric_util``, ``basicsr.utils.color_util``): same names, signatures, layouts
(numpy: HWC, **BGR**; torch: (n, c, h, w), RGB) and values.

* :mod:`~contrast_sr.basicsr.color`: ``rgb2ycbcr``, ``bgr2ycbcr``, ``ycbcr2rgb``,
  ``ycbcr2bgr``, ``rgb2ycbcr_pt``;
* :mod:`~contrast_sr.basicsr.psnr_ssim`: ``calculate_psnr``, ``calculate_ssim`` (numpy),
  ``reorder_image``, ``to_y_channel``;
* :mod:`~contrast_sr.basicsr.psnr_ssim_pt`: ``calculate_psnr_pt``, ``calculate_ssim_pt``
  (batched torch, any device, differentiable);
* :mod:`~contrast_sr.basicsr.errors`: errors that are both typed (ArgumentError) and the
  builtins BasicSR raises (AssertionError for shapes, TypeError for dtypes).

The project's own protocol (RGB (C, H, W), Y in float64) is :mod:`contrast_sr.metrics`.
"""

from contrast_sr.basicsr.color import bgr2ycbcr, rgb2ycbcr, rgb2ycbcr_pt, ycbcr2bgr, ycbcr2rgb
from contrast_sr.basicsr.errors import DTypeError, ShapeMismatchError
from contrast_sr.basicsr.psnr_ssim import (
    calculate_psnr,
    calculate_ssim,
    reorder_image,
    to_y_channel,
)
from contrast_sr.basicsr.psnr_ssim_pt import calculate_psnr_pt, calculate_ssim_pt

__all__ = [
    "DTypeError",
    "ShapeMismatchError",
    "bgr2ycbcr",
    "calculate_psnr",
    "calculate_psnr_pt",
    "calculate_ssim",
    "calculate_ssim_pt",
    "reorder_image",
    "rgb2ycbcr",
    "rgb2ycbcr_pt",
    "to_y_channel",
    "ycbcr2bgr",
    "ycbcr2rgb",
]
