"""Convert PIL images, numpy arrays and torch tensors to a float batch and back.

``to_batch(image)`` returns ``(x, restore)``: x is (1 or B, C, H, W) float32 in [0, 1] with C in
1..4, and ``restore(y)`` turns an upscaled batch back into the caller's type and kind:
- PIL: "L"/"1" -> "L", "LA" -> "LA", "I;16*" -> "I;16", "I" -> "I" (16-bit range), "F" -> "F",
  "RGB", "RGBA"; palette becomes RGB (RGBA if it has transparency), CMYK/YCbCr/LAB/HSV become RGB.
  The result's ``info`` carries the ICC profile (not across a colour-space change), the EXIF
  block (pixel dimensions updated) and the DPI scaled with the image, as the command does.
- numpy: (H, W) or (H, W, C); uint8 / uint16 / float (assumed in [0, 1]); same shape and dtype.
- torch: (C, H, W) or (B, C, H, W); float (in [0, 1]) or uint8; same dtype and device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from contrast_sr.errors import InputError
from contrast_sr.io import standard_mode
from contrast_sr.io.metadata import dpi_of, exif_bytes, exif_for_size, scaled_dpi

Restore = Callable[[Tensor], Any]

_PIL_16BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _quantize(y: Tensor, maximum: int) -> Tensor:
    return (y.clamp(0, 1) * maximum).round_()


_COLOUR_SPACES = ("CMYK", "LAB", "YCbCr", "HSV")  # their ICC profile does not describe RGB


def _with_info(restore: Restore, src: Image.Image) -> Restore:
    """``restore`` whose PIL result carries ``src``'s ICC, EXIF and (scaled) DPI in ``info``."""
    icc = None if src.mode in _COLOUR_SPACES else src.info.get("icc_profile")
    exif, dpi = exif_bytes(src.info), dpi_of(src.info)

    def restore_with_info(y: Tensor) -> Image.Image:
        out = restore(y)
        fx, fy = out.width / src.width, out.height / src.height
        if icc:
            out.info["icc_profile"] = icc
        if exif:
            out.info["exif"] = exif_for_size(exif, out.width, out.height)
        if dpi:
            out.info["dpi"] = scaled_dpi(dpi, fx, fy)
        return out

    return restore_with_info


def _from_pil(img: Image.Image) -> tuple[Tensor, Restore]:
    x, restore = _pil_pixels(img)
    return x, _with_info(restore, img)


def _pil_pixels(img: Image.Image) -> tuple[Tensor, Restore]:
    mode = img.mode
    img = standard_mode(img)
    out_mode = img.mode
    if out_mode in _PIL_16BIT:
        arr = np.asarray(img).astype(np.float32) / 65535.0
        x = torch.from_numpy(arr)[None, None]

        def restore(y: Tensor) -> Image.Image:
            q = _quantize(y[0, 0], 65535).numpy()
            if out_mode == "I":
                return Image.fromarray(q.astype(np.int32))  # mode I
            return Image.fromarray(q.astype(np.uint16))  # mode I;16

        return x, restore
    if out_mode == "F":
        x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy())[None, None]
        return x, lambda y: Image.fromarray(y[0, 0].clamp(0, 1).numpy().astype(np.float32))
    if out_mode not in ("L", "LA", "RGB", "RGBA"):
        raise InputError("image", f"unsupported PIL mode {mode!r}")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    x = torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1)[None]

    def restore_8bit(y: Tensor) -> Image.Image:
        q = _quantize(y[0], 255).to(torch.uint8).permute(1, 2, 0).numpy()
        return Image.fromarray(q[:, :, 0] if q.shape[2] == 1 else q)  # L, LA, RGB, RGBA

    return x, restore_8bit


def _from_numpy(arr: np.ndarray) -> tuple[Tensor, Restore]:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise InputError("image", f"expected an (H, W) or (H, W, C<=4) array, got {arr.shape}")
    dtype, ndim = arr.dtype, arr.ndim
    if dtype == np.uint8:
        maximum = 255
    elif dtype == np.uint16:
        maximum = 65535
    elif np.issubdtype(dtype, np.floating):
        maximum = None
    else:
        raise InputError("image", f"unsupported array dtype {dtype} (use uint8, uint16 or float)")
    data = arr.astype(np.float32) / (maximum or 1.0)
    hwc = data if ndim == 3 else data[:, :, None]
    x = torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1)[None]

    def restore(y: Tensor) -> np.ndarray:
        out = y[0].permute(1, 2, 0)
        if maximum is None:
            res = out.clamp(0, 1).numpy().astype(dtype)
        else:
            res = _quantize(out, maximum).numpy().astype(dtype)
        return res[:, :, 0] if ndim == 2 else res

    return x, restore


def _from_tensor(t: Tensor) -> tuple[Tensor, Restore]:
    if t.dim() not in (3, 4) or t.shape[-3] not in (1, 2, 3, 4):
        raise InputError(
            "image", f"expected a (C, H, W) or (B, C, H, W) tensor, got {tuple(t.shape)}"
        )
    dtype, device, ndim = t.dtype, t.device, t.dim()
    if dtype == torch.uint8:
        x = t.detach().cpu().float() / 255.0
    elif dtype.is_floating_point:
        x = t.detach().cpu().float()
    else:
        raise InputError("image", f"unsupported tensor dtype {dtype} (use a float dtype or uint8)")
    x = x if ndim == 4 else x[None]

    def restore(y: Tensor) -> Tensor:
        y = _quantize(y, 255) if dtype == torch.uint8 else y
        y = y.to(device=device, dtype=dtype)
        return y if ndim == 4 else y[0]

    return x, restore


def to_batch(image: Any) -> tuple[Tensor, Restore]:
    """(B, C, H, W) float32 CPU batch in [0, 1] and the function that restores the input's type."""
    if isinstance(image, Image.Image):
        return _from_pil(image)
    if isinstance(image, np.ndarray):
        return _from_numpy(image)
    if isinstance(image, Tensor):
        return _from_tensor(image)
    raise InputError(
        "image", f"expected a PIL image, numpy array or torch tensor, got {type(image).__name__}"
    )
