"""What the analysis commands share: loading images and models, the LR a figure starts from."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from contrast_sr.errors import ContrastError, InputError, UsageError


def load_image(path: str | Path) -> torch.Tensor:
    """Read an RGB image as (3, H, W) float32 in [0, 1]."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    try:
        from contrast_sr.io import read_image
    except ImportError:
        read_image = None
    if read_image is not None:
        image, _ = read_image(path)
        return image[:3] if image.shape[0] >= 3 else image.expand(3, -1, -1)
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(str(path), f"not a readable image ({exc})") from None
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Bicubic resize of (B, 3, H, W) by ``scale``: MATLAB imresize when available."""
    try:
        from contrast_sr.ops.imresize import imresize
    except ImportError:
        imresize = None
    if imresize is not None:
        return imresize(x, scale=scale)
    h, w = x.shape[-2:]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=scale < 1)


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
    try:
        from contrast_sr.models import create_model, resolve_model
    except ImportError:
        raise UsageError("--model", "the model library is not available") from None
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
