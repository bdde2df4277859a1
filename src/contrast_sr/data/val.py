"""Validation images: HR folders, LR made with the evaluation code's MATLAB bicubic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from contrast_sr.data.paired import list_images, make_lr, read_rgb, to_tensor


@dataclass
class ValSet:
    name: str
    images: list[tuple[str, torch.Tensor, torch.Tensor]]  # (stem, lr (3,h,w), hr (3,h*s,w*s))


def set_name(folder: str | Path) -> str:
    """``.../Set5/HR`` -> ``Set5``; otherwise the folder's own name."""
    folder = Path(folder)
    return folder.parent.name if folder.name.lower() in ("hr", "gt") else folder.name


def load_val_set(folder: str | Path, scale: int, max_images: int | None = None) -> ValSet:
    """HR images cropped to a multiple of ``scale`` and their 8-bit bicubic LR."""
    images = []
    for path in list_images(folder)[:max_images]:
        hr = to_tensor(read_rgb(path))
        h, w = hr.shape[-2:]
        hr = hr[:, : h - h % scale, : w - w % scale]
        if hr.shape[-1] == 0 or hr.shape[-2] == 0:
            continue
        images.append((path.stem, make_lr(hr, scale), hr))
    return ValSet(set_name(folder), images)
