"""The inference engine behind ``contrast-sr upscale`` and ``contrast_sr.upscale``.

``Upscaler(model, ...)`` maps a float image batch (B, C, H, W) in [0, 1] with C = 1 (gray),
2 (gray + alpha), 3 (RGB) or 4 (RGBA) to (B, C, s*H, s*W): gray is replicated to RGB for the
model and averaged back, alpha is upscaled separately (bicubic, or the model on a 3-channel
replicate). Options: tiling (fixed or ``auto``) with blended overlaps, x8 self-ensemble, bf16/fp16
autocast, and on CUDA out-of-memory a retry with half the tile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrast_sr.errors import ArgumentError, ContrastError
from contrast_sr.infer.channels import gray_as_rgb
from contrast_sr.infer.ensemble import self_ensemble
from contrast_sr.infer.memory import MIN_TILE, TILE_MULTIPLE, auto_tile
from contrast_sr.infer.precision import check_precision
from contrast_sr.infer.tiling import count_tiles, tiled_forward
from contrast_sr.utils.device import autocast, resolve_device

ALPHA_MODES = ("bicubic", "model")
# torch's own type (CUDA, and every backend from torch 2.5 on) where it has one.
_OOM_TYPES = (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError),)


def _is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory failure of the device.

    Decided by type (``torch.OutOfMemoryError``). Fallback: backends without that type (MPS)
    raise a plain ``RuntimeError`` whose text says "out of memory"; that text is the only sign.
    """
    if isinstance(exc, _OOM_TYPES):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        with contextlib.suppress(Exception):
            torch.mps.empty_cache()


def parse_tile(value: int | str | None) -> int | str | None:
    """``None``/0 = whole image, ``"auto"``, or a tile size in input pixels (>= 8)."""
    if value is None or value == "auto":
        return value
    try:
        tile = int(value)
    except (TypeError, ValueError):
        raise ArgumentError(
            "tile", f"expected a number of pixels or 'auto', got {value!r}"
        ) from None
    if tile == 0:
        return None
    if tile < 8:
        raise ArgumentError("tile", f"tiles must be at least 8 pixels, got {tile}")
    return tile


class Upscaler:
    """Run ``model`` on images of any size and channel layout (see module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        tile: int | str | None = None,
        tile_overlap: int = 32,
        self_ensemble: bool = False,
        alpha: str = "bicubic",
        scale: int | None = None,
        progress: Callable[[int], Callable[[], None] | None] | None = None,
    ) -> None:
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        check_precision(model, self.device, precision)
        if alpha not in ALPHA_MODES:
            raise ArgumentError(
                "alpha", f"unknown mode {alpha!r} (choose from {', '.join(ALPHA_MODES)})"
            )
        if tile_overlap < 0:
            raise ArgumentError("tile_overlap", f"must be >= 0, got {tile_overlap}")
        self.model = model.eval().to(self.device)
        self.model_scale = int(model.scale)
        self.scale = self.model_scale if scale is None else int(scale)
        if self.scale < 1:
            raise ArgumentError("scale", f"must be a positive integer, got {scale}")
        self.precision = precision
        self.tile = parse_tile(tile)
        self.tile_overlap = int(tile_overlap)
        self.self_ensemble = self_ensemble
        self.alpha = alpha
        self.progress = progress  # progress(n_tiles) -> per-tile callback (or None)
        self._auto_tile: int | None = None
        self.last_tile: int | None = None  # tile size actually used by the last call

    # -- one RGB batch through the model -------------------------------------------------
    def _model_forward(self, x: Tensor) -> Tensor:
        """(B,3,h,w) CPU float -> (B,3,s*h,s*w) CPU float32, on the model's device."""
        with torch.no_grad(), autocast(self.device, self.precision):
            x = x.to(self.device, non_blocking=True)
            y = self_ensemble(self.model, x) if self.self_ensemble else self.model(x)
        return y.float().cpu()

    def resolve_tile(self) -> int | None:
        if self.tile != "auto":
            return self.tile
        if self._auto_tile is None:
            self._auto_tile = auto_tile(self._model_forward, 3, self.device)
        return self._auto_tile

    def _rgb(self, x: Tensor, tile: int | None) -> Tensor:
        h, w = x.shape[-2:]
        if tile is None or (h <= tile and w <= tile):
            return self._model_forward(x)
        on_tile = (
            self.progress(count_tiles(h, w, tile, self.tile_overlap)) if self.progress else None
        )
        return tiled_forward(
            self._model_forward, x, self.model_scale, tile, self.tile_overlap, on_tile
        )

    def _rgb_with_retry(self, x: Tensor) -> Tensor:
        tile = self.resolve_tile()
        while True:
            try:
                out = self._rgb(x, tile)
                self.last_tile = tile
                return out
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                _empty_cache(self.device)
                current = tile or max(x.shape[-2:])
                smaller = current // 2 // TILE_MULTIPLE * TILE_MULTIPLE
                if smaller < MIN_TILE:
                    raise ContrastError(
                        "out of memory", f"even {current}-pixel tiles do not fit on {self.device}"
                    ) from exc
                tile = smaller
                if self.tile == "auto":
                    self._auto_tile = tile

    # -- any channel layout --------------------------------------------------------------
    def _alpha(self, a: Tensor) -> Tensor:
        """(B,1,h,w) alpha -> (B,1,s*h,s*w)."""
        if self.alpha == "model":
            return gray_as_rgb(self._rgb_with_retry, a)
        return F.interpolate(a, scale_factor=self.model_scale, mode="bicubic", align_corners=False)

    def __call__(self, x: Tensor) -> Tensor:
        """(B,C,H,W) or (C,H,W) float in [0,1], C in 1..4 -> same layout, s times larger."""
        squeeze = x.dim() == 3
        if squeeze:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] not in (1, 2, 3, 4):
            raise ContrastError(
                "image", f"expected (B,C,H,W) with C in 1..4 channels, got {tuple(x.shape)}"
            )
        x = x.detach().float().cpu()
        c = x.shape[1]
        color, alpha = (x[:, :3], x[:, 3:]) if c >= 3 else (x[:, :1], x[:, 1:])
        out = gray_as_rgb(self._rgb_with_retry, color)
        if alpha.shape[1]:
            out = torch.cat([out, self._alpha(alpha)], dim=1)
        if self.scale != self.model_scale:  # e.g. x2 with an x4 model: resize its output
            size = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
            out = F.interpolate(out, size=size, mode="bicubic", align_corners=False, antialias=True)
        out = out.clamp_(0.0, 1.0)
        return out.squeeze(0) if squeeze else out
