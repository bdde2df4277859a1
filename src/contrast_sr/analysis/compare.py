"""The figure SR papers use: the HR image with a box, then the boxed crop of HR, bicubic and each
model's output, each captioned with its PSNR (Y channel, 8-bit rounded, ``scale`` border shaved
for the whole image; the crop's own PSNR on the crop)."""

from __future__ import annotations

import math

import torch
from PIL import Image
from torch import nn

from contrast_sr.analysis import figure
from contrast_sr.analysis.common import Bicubic


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """(…, 3, H, W) in [0, 1] -> ITU-R BT.601 luma in [16/255, 235/255], (…, H, W)."""
    r, g, b = x.unbind(-3)
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, border: int = 0) -> float:
    """PSNR in dB on Y after rounding both to 8 bits; ``border`` pixels shaved on each side."""
    sr, hr = (t.clamp(0, 1).mul(255).round().div(255).double() for t in (sr, hr))
    ys, yh = rgb_to_y(sr), rgb_to_y(hr)
    if border:
        ys = ys[..., border:-border, border:-border]
        yh = yh[..., border:-border, border:-border]
    mse = float((ys - yh).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


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
        params = next(iter(model.parameters()), None)
        device = params.device if params is not None else torch.device("cpu")
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
