"""safetensors export through the model library's own format, checked by reloading it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
from torch import nn

from contrast_sr.errors import ContrastError


def export_safetensors(model: nn.Module, path: str | Path, size: int = 16) -> dict:
    """Save with ``contrast_sr.models.save_model``, reload with ``load_model`` and compare the
    outputs (must be identical); the file appears under ``path`` only when they are."""
    from contrast_sr.models import load_model, save_model

    path = Path(path)
    tmp = path.with_name(f".{path.name}.check.safetensors")
    try:
        save_model(model, tmp)
        model = model.float().cpu().eval()
        reloaded = load_model(tmp).float().cpu().eval()
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            err = float((model(x) - reloaded(x)).abs().max())
        if err != 0.0:
            raise ContrastError("safetensors export", f"reloaded model differs by {err:.3g}")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return {"path": str(path), "format": "safetensors", "max_abs_err": err}
