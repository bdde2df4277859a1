"""What the analysis commands share: loading images and models, the LR a figure starts from."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from contrast_sr.errors import ContrastError, InputError, UsageError
from contrast_sr.io import read_image
from contrast_sr.ops.imresize import imresize


def load_image(path: str | Path) -> torch.Tensor:
    """Read an image as RGB (3, H, W) float32 in [0, 1] (gray is repeated, alpha dropped)."""
    image, _ = read_image(path)
    return image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)


def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """MATLAB-bicubic resize of (B, 3, H, W) by ``scale`` (differentiable)."""
    return imresize(x, scale=scale)


def make_lr(hr: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop HR (3, H, W) to a multiple of ``scale`` and bicubic-downscale it.

    Returns (hr_cropped (1, 3, H', W'), lr (1, 3, H'/s, W'/s)).
    """
    h, w = hr.shape[-2:]
    h, w = h - h % scale, w - w % scale
    if h < scale or w < scale:
        raise InputError("image", f"smaller than the scale factor {scale}")
    hr = hr[None, :, :h, :w]
    return hr, resize(hr, 1.0 / scale).clamp(0, 1)


class Bicubic(nn.Module):
    """The ``bicubic`` baseline as a model: (B, 3, H, W) -> (B, 3, sH, sW), differentiable."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.config = {"name": "bicubic", "scale": scale}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize(x, float(self.scale))


def load_model(spec: str, scale: int | None = 4, random_init: bool = False) -> nn.Module:
    """``bicubic``, a checkpoint path, or a registered name: with its bundled weights, or with
    random initialisation (seed 0) when ``random_init`` (to study an untrained architecture)."""
    if spec == "bicubic":
        return Bicubic(scale or 4)
    from contrast_sr.models import create_model, resolve_model

    if random_init and not Path(spec).is_file():
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same "untrained" weights on every run
            return create_model(spec, scale=scale or 4)
    try:
        return resolve_model(spec, scale)
    except ContrastError as exc:
        if "bundled weights" in exc.message:
            raise ContrastError(
                exc.message, "or pass --random-init for untrained weights"
            ) from None
        raise


def load_models(specs: str, scale: int | None, random_init: bool = False) -> list:
    """Comma-separated ``--model`` list -> [(name, model in eval mode)]."""
    names = [s.strip() for s in specs.split(",") if s.strip()]
    if not names:
        raise UsageError("--model", "give at least one model")
    out = []
    for name in names:
        model = load_model(name, scale, random_init).eval()
        out.append((Path(name).stem if Path(name).suffix else name, model))
    return out


def parse_box(text: str, default_size: int = 16) -> tuple[int, int, int]:
    """``X,Y[,SIZE]`` -> (x, y, size) of a square in output (HR) pixels."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise UsageError("--box", f"expected X,Y[,SIZE] integers, got {text!r}") from None
    if len(parts) not in (2, 3) or min(parts) < 0 or (len(parts) == 3 and parts[2] < 1):
        raise UsageError("--box", f"expected X,Y[,SIZE] with X,Y >= 0, SIZE >= 1, got {text!r}")
    x, y = parts[:2]
    return x, y, parts[2] if len(parts) == 3 else default_size


def check_box(box: tuple[int, int, int], height: int, width: int) -> None:
    x, y, size = box
    if x + size > width or y + size > height:
        raise UsageError(
            "--box", f"{x},{y},{size} does not fit in the {width}x{height} (WxH) output image"
        )
