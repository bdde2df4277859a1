"""Validation with the evaluation protocol: PSNR/SSIM on Y, ``scale`` border pixels cropped,
SR output rounded to 8 bits (``contrast_sr.metrics``, the same functions ``contrast-sr eval``
uses)."""

from __future__ import annotations

import torch
from torch import nn

from contrast_sr.data.val import ValSet
from contrast_sr.utils.device import autocast


@torch.no_grad()
def validate(
    model: nn.Module, val_sets: list[ValSet], scale: int, device: torch.device, precision: str
) -> dict[str, dict[str, float]]:
    """``{set name: {"psnr": dB, "ssim": ...}}``, means over each set's images."""
    from contrast_sr.metrics import calculate_psnr_y, calculate_ssim_y

    was_training = model.training
    model.eval()
    scores = {}
    for vs in val_sets:
        psnr, ssim = [], []
        for _, lr, hr in vs.images:
            with autocast(device, precision):
                sr = model(lr[None].to(device))
            sr = sr.float().clamp(0, 1).mul(255).round().div(255)[0].cpu()
            psnr.append(float(calculate_psnr_y(sr, hr, crop_border=scale)))
            ssim.append(float(calculate_ssim_y(sr, hr, crop_border=scale)))
        scores[vs.name] = {"psnr": sum(psnr) / len(psnr), "ssim": sum(ssim) / len(ssim)}
    model.train(was_training)
    return scores
