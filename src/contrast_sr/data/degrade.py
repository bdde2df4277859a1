"""The LR image of the SR papers' bicubic degradation: one definition for evaluation, training
patches and the analysis figures."""

from __future__ import annotations

import torch

from contrast_sr.errors import ArgumentError
from contrast_sr.ops.imresize import imresize


def bicubic_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The LR of uint8 ``hr`` ``(..., C, H, W)`` (H, W multiples of ``scale``), as uint8.

    MATLAB bicubic downscale by ``1/scale`` in float64, rounded half to even to 8 bits, exactly
    as BasicSR makes and stores LR PNGs. Callers crop and convert around it.
    """
    if hr.dtype != torch.uint8:
        raise ArgumentError("hr", f"expected a uint8 tensor, got {hr.dtype}")
    if hr.shape[-2] % scale or hr.shape[-1] % scale:
        raise ArgumentError(
            "hr", f"size {hr.shape[-1]}x{hr.shape[-2]} is not a multiple of the scale {scale}"
        )
    lr = imresize(hr.to(torch.float64) / 255.0, scale=1.0 / scale)
    return torch.round(lr.clamp(0, 1) * 255.0).to(torch.uint8)
