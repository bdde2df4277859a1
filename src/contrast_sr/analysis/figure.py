"""Tiny PIL figure kit: a colormap, tensor -> image, boxes, labelled panels in a row/grid.

No matplotlib: heat maps use a 256-entry colormap interpolated from a few anchor colours
(close to matplotlib's "inferno"), so figures look the same on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

# Anchors of an inferno-like map: black -> purple -> red -> orange -> pale yellow.
_ANCHORS = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float64,
)


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (any shape) to uint8 RGB (..., 3)."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, 1.0)
    pos = v * (len(_ANCHORS) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (pos - lo)[..., None]
    rgb = _ANCHORS[lo] * (1 - frac) + _ANCHORS[lo + 1] * frac
    return rgb.round().astype(np.uint8)


def to_pil(image: torch.Tensor) -> Image.Image:
    """(3, H, W) or (H, W) float tensor in [0, 1] -> PIL RGB/L image."""
    arr = image.detach().float().clamp(0, 1).mul(255).round().byte().cpu().numpy()
    if arr.ndim == 3:
        return Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0)), "RGB")
    return Image.fromarray(arr, "L")


def heatmap(values: torch.Tensor | np.ndarray, vmax: float | None = None) -> Image.Image:
    """(H, W) non-negative map -> colour image; scaled by ``vmax`` (default: its maximum)."""
    arr = values.detach().float().cpu().numpy() if isinstance(values, torch.Tensor) else values
    top = float(arr.max()) if vmax is None else float(vmax)
    return Image.fromarray(colormap(arr / top if top > 0 else arr * 0), "RGB")


def overlay(base: Image.Image, heat: Image.Image, alpha: float = 0.6) -> Image.Image:
    """Blend a heat map over a grey version of ``base`` (same size)."""
    grey = base.convert("L").convert("RGB")
    return Image.blend(grey, heat.resize(base.size, Image.BILINEAR), alpha)


def draw_box(
    image: Image.Image, x: int, y: int, size: int, color=(255, 40, 40), width: int = 2
) -> Image.Image:
    out = image.copy()
    ImageDraw.Draw(out).rectangle([x, y, x + size - 1, y + size - 1], outline=color, width=width)
    return out


def upscale_nearest(image: Image.Image, min_side: int) -> Image.Image:
    """Enlarge small panels (nearest neighbour, integer factor) so they stay readable."""
    factor = max(1, -(-min_side // max(1, min(image.size))))
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.NEAREST)


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def panels(
    images: Sequence[Image.Image],
    captions: Sequence[str],
    columns: int | None = None,
    height: int | None = None,
    pad: int = 6,
) -> Image.Image:
    """Lay out panels in a grid with a caption under each; all resized to one height."""
    if not images:
        raise ValueError("no panels")
    height = height or max(im.height for im in images)
    resized = [
        im.resize((max(1, round(im.width * height / im.height)), height), Image.NEAREST)
        for im in images
    ]
    columns = columns or len(resized)
    rows = -(-len(resized) // columns)
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max(probe.multiline_textbbox((0, 0), c, font=font, spacing=1)[2] for c in captions)
    cell_w = max(max(im.width for im in resized), text_w + 4)
    text_h = 2 * (font.getbbox("Ag")[3] + 2) if hasattr(font, "getbbox") else 30
    canvas = Image.new(
        "RGB",
        (columns * (cell_w + pad) + pad, rows * (height + text_h + pad) + pad),
        (255, 255, 255),
    )
    draw = ImageDraw.Draw(canvas)
    for i, (im, caption) in enumerate(zip(resized, captions, strict=True)):
        r, c = divmod(i, columns)
        x0 = pad + c * (cell_w + pad)
        y0 = pad + r * (height + text_h + pad)
        canvas.paste(im, (x0, y0))
        draw.multiline_text((x0, y0 + height + 2), caption, fill=(0, 0, 0), font=font, spacing=1)
    return canvas


def save_png(image: Image.Image, path) -> None:
    """Write a PNG atomically."""
    from contrast_sr.utils.fs import atomic_write

    with atomic_write(path, "wb") as handle:
        image.save(handle, format="PNG")
