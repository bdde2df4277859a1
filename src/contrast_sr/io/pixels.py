"""Float images to integer pixel arrays, and alpha onto a background, in bands of rows.

An x4 upscale of a 4000x3000 photo is a 16000x12000 float32 tensor of 2.3 GB; a plain
``round(clamp(x) * 255)`` makes three more of it. These helpers work on bands of rows, so the
temporaries stay at a few tens of MB whatever the image size (and Ctrl-C is acted on between
bands).
"""

from __future__ import annotations

import numpy as np
import torch

_BAND_ELEMENTS = 1 << 23  # elements per band (32 MB of float32)
RGB = tuple[float, float, float]


def _band_rows(x: torch.Tensor) -> int:
    per_row = max(1, x[..., :1, :].numel())
    return max(1, _BAND_ELEMENTS // per_row)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float in [0, 1] -> uint8 of the same shape, clamped and rounded half to even."""
    x = x.detach()
    if x.dim() < 2 or x.numel() == 0:
        return torch.round(x.float().clamp(0, 1) * 255.0).to(torch.uint8)
    out = torch.empty(x.shape, dtype=torch.uint8, device=x.device)
    rows = _band_rows(x)
    for r in range(0, x.shape[-2], rows):
        band = x[..., r : r + rows, :].float().clamp(0, 1).mul_(255.0).round_()
        out[..., r : r + rows, :] = band.to(torch.uint8)
    return out


def to_hwc(x: torch.Tensor, maximum: int, dtype: type) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) numpy ``dtype`` array of ``round(x * maximum)``."""
    c, h, w = x.shape
    out = np.empty((h, w, c), dtype=dtype)
    rows = _band_rows(x)
    for r in range(0, h, rows):
        band = x[:, r : r + rows].float().clamp(0, 1).mul_(float(maximum)).round_()
        out[r : r + rows] = band.permute(1, 2, 0).numpy().astype(dtype)
    return out


def composite(x: torch.Tensor, background: RGB = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """(C, H, W) with a last alpha channel (C = 2 or 4) -> (C - 1, H, W) over ``background``.

    ``colour * alpha + background * (1 - alpha)``; a gray image (C = 2) takes the background's
    luma (ITU-R 601, as Pillow's "L" conversion). A new tensor; ``x`` is not changed.
    """
    colour, alpha = x[:-1], x[-1:]
    if colour.shape[0] == 1:
        r, g, b = background
        bg = torch.tensor([0.299 * r + 0.587 * g + 0.114 * b])
    else:
        bg = torch.tensor(background, dtype=torch.float32)
    bg = bg.view(-1, 1, 1)
    out = torch.empty(colour.shape, dtype=torch.float32)
    rows = _band_rows(x)
    for r in range(0, x.shape[-2], rows):
        a = alpha[:, r : r + rows].float().clamp(0, 1)
        band = colour[:, r : r + rows].float() * a
        out[:, r : r + rows] = band.add_(bg * (1.0 - a))
    return out
