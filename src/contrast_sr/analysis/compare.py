"""The figure SR papers use: the HR image with a box, then the boxed crop of HR, bicubic and each
model's output, each captioned with its PSNR (Y channel, 8-bit rounded, ``scale`` border shaved
for the whole image; the crop's own PSNR on the crop)."""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from contrast_sr.analysis import figure
from contrast_sr.analysis.common import Bicubic
from contrast_sr.metrics import calculate_psnr_y
from contrast_sr.utils.device import module_device


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, border: int = 0) -> float:
    """PSNR (dB) on Y of (…, 3, H, W) images in [0, 1], both rounded to 8 bits first."""
    sr, hr = (t.reshape(-1, *t.shape[-3:])[0].clamp(0, 1).mul(255).round() for t in (sr, hr))
    return calculate_psnr_y(sr, hr, crop_border=border)


def compare_models(
    models: list[tuple[str, nn.Module]],
    hr: torch.Tensor,
    lr: torch.Tensor,
    box: tuple[int, int, int],
    scale: int,
) -> tuple[Image.Image, dict]:
    """HR (1, 3, H, W), LR (1, 3, H/s, W/s), box (x, y, size) in HR pixels -> (figure, numbers)."""
    x, y, size = box
    entries = [("bicubic", Bicubic(scale))] + [(n, m) for n, m in models if n != "bicubic"]
    crop = (..., slice(y, y + size), slice(x, x + size))
    rows = []
    images = [
        figure.draw_box(figure.to_pil(hr[0]), x, y, size, width=max(2, hr.shape[-1] // 200)),
        figure.to_pil(hr[0][crop]),
    ]
    captions = ["HR", "HR crop"]
    for name, model in entries:
        device = module_device(model, torch.device("cpu"))
        with torch.no_grad():
            sr = model(lr.to(device)).float().cpu().clamp(0, 1)
        if sr.shape[-2:] != hr.shape[-2:]:
            raise ValueError(
                f"{name} returned {tuple(sr.shape[-2:])}, expected {tuple(hr.shape[-2:])}"
            )
        full = psnr_y(sr, hr, border=scale)
        local = psnr_y(sr[crop], hr[crop])
        rows.append({"model": name, "psnr_y": full, "psnr_y_crop": local})
        images.append(figure.to_pil(sr[0][crop]))
        captions.append(f"{name}\n{full:.2f} dB ({local:.2f} crop)")
    height = max(160, min(320, size * 4))
    fig = figure.panels(images, captions, height=height)
    return fig, {"box": list(box), "scale": scale, "results": rows}
