"""Validation = ``contrast-sr eval``: the same function (:func:`contrast_sr.evaluate.evaluate`),
so the PSNR/SSIM (Y, ``scale`` border cropped, 8-bit LR and SR) match the evaluation exactly."""

from __future__ import annotations

import torch
from torch import nn


def validate(
    model: nn.Module,
    hr_dirs: list[str],
    scale: int,
    device: torch.device,
    precision: str,
    lr_degradation: str | None = None,
) -> dict[str, dict[str, float]]:
    """``{set name: {"psnr": dB, "ssim": ...}}``, means over each folder's images; with
    ``lr_degradation`` (e.g. ``"photo"``) on the degraded benchmark's LR instead of bicubic."""
    from contrast_sr.evaluate import evaluate, model_sr

    was_training = model.training
    sr_fn = model_sr(model, device, precision)
    scores = {}
    for folder in hr_dirs:
        result = evaluate(
            sr_fn, folder, scale, device=device, progress=False, lr_degradation=lr_degradation
        )
        scores[result.dataset] = {"psnr": result.psnr_y, "ssim": result.ssim_y}
    model.train(was_training)
    return scores
