"""The inference engine behind ``contrast-sr upscale`` and ``contrast_sr.upscale``.

``Upscaler(model, ...)`` maps a float image batch (B, C, H, W) in [0, 1] with C = 1 (gray),
2 (gray + alpha), 3 (RGB) or 4 (RGBA) to (B, C, s*H, s*W): gray is replicated to RGB for the
model and averaged back, alpha is upscaled separately (bicubic, or the model on a 3-channel
replicate). Options: x8 self-ensemble, bf16/fp16 autocast, and tiling with blended overlaps:

- ``tile="auto"`` (default): the whole image in one forward when its predicted peak fits the
  memory budget (``max_memory``, default :func:`~contrast_sr.infer.memory.memory_budget`),
  else the cheapest grid of tiles that fits (:func:`~contrast_sr.infer.tile_plan.plan_tiles`);
  the model's cost per pixel is measured once per model, device and precision;
- ``tile=N``: N x N tiles; ``tile=0`` / ``None``: never tiled.

On out-of-memory (CUDA, MPS or CPU) an ``auto`` or ``N`` run is retried with tiles of a quarter
of the pixels, down to the smallest tile; only then is it an error.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrast_sr.errors import ArgumentError, ContrastError, InputError
from contrast_sr.infer.channels import gray_as_rgb
from contrast_sr.infer.ensemble import self_ensemble
from contrast_sr.infer.memory import (
    PROBE_SIZES,
    MemoryCost,
    is_out_of_memory,
    measure_cost,
    memory_budget,
    parse_memory,
)
from contrast_sr.infer.precision import check_precision
from contrast_sr.infer.tile_plan import check_overlap, plan_tiles
from contrast_sr.infer.tiling import count_tiles, tiled_forward
from contrast_sr.utils.device import autocast, resolve_device

ALPHA_MODES = ("bicubic", "model")
# Images this small run whole without measuring the model: the probes are as large.
UNMEASURED_PIXELS = PROBE_SIZES[1] ** 2
# Measured costs, per model and (device, precision, self-ensemble): measured once per process.
_COSTS: weakref.WeakKeyDictionary[nn.Module, dict[tuple, MemoryCost]] = weakref.WeakKeyDictionary()


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
            "tile", f"expected a number of pixels, 0 (no tiling) or 'auto', got {value!r}"
        ) from None
    if tile == 0:
        return None
    if tile < 8:
        raise ArgumentError("tile", f"tiles must be at least 8 pixels (0: no tiling), got {tile}")
    return tile


class Upscaler:
    """Run ``model`` on images of any size and channel layout (see module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        tile: int | str | None = "auto",
        tile_overlap: int = 32,
        max_memory: int | str | None = None,
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
        self.tile = parse_tile(tile)
        self.tile_overlap = check_overlap(
            int(tile_overlap), self.tile if isinstance(self.tile, int) else None
        )
        self.max_memory = parse_memory(max_memory)
        self.model = model.eval().to(self.device)
        self.model_scale = int(model.scale)
        self.scale = self.model_scale if scale is None else int(scale)
        if self.scale < 1:
            raise ArgumentError("scale", f"must be a positive integer, got {scale}")
        self.precision = precision
        self.self_ensemble = self_ensemble
        self.alpha = alpha
        self.progress = progress  # progress(n_tiles) -> per-tile callback (or None)
        self.last_tile: tuple[int, int] | None = None  # (h, w) tiles of the last call, or None
        self.last_tiles = 0  # how many tiles the last call ran (0: untiled)

    # -- one RGB batch through the model -------------------------------------------------
    def _model_forward(self, x: Tensor) -> Tensor:
        """(B,3,h,w) CPU float -> (B,3,s*h,s*w) CPU float32, on the model's device."""
        with torch.no_grad(), autocast(self.device, self.precision):
            x = x.to(self.device, non_blocking=True)
            y = self_ensemble(self.model, x) if self.self_ensemble else self.model(x)
        return y.float().cpu()

    # -- how an image is cut -------------------------------------------------------------
    def memory_cost(self) -> MemoryCost:
        """The model's measured memory per input pixel here (probed once, then cached)."""
        key = (str(self.device), self.precision, self.self_ensemble)
        costs = _COSTS.setdefault(self.model, {})
        if key not in costs:
            costs[key] = measure_cost(self._model_forward, 3, self.device)
        return costs[key]

    def budget(self) -> int:
        """Bytes one forward may use now (``max_memory`` or the default share)."""
        return memory_budget(self.device, self.max_memory)

    def plan(self, height: int, width: int, batch: int = 1) -> tuple[int, int] | None:
        """The (tile_h, tile_w) for ``batch`` images of ``height`` x ``width`` (they go through
        the model together), or None: one forward."""
        if self.tile is None:
            return None
        if isinstance(self.tile, int):
            return None if max(height, width) <= self.tile else (self.tile, self.tile)
        if batch * height * width <= UNMEASURED_PIXELS:
            return None
        cost, budget = self.memory_cost(), self.budget()
        if cost.peak(batch * height * width) <= budget:
            return None
        tile = plan_tiles(height, width, cost.max_pixels(budget) // batch, self.tile_overlap)
        need = cost.peak(batch * tile[0] * tile[1]) if tile is not None else 0.0
        if need > budget:
            raise ContrastError(
                "out of memory",
                f"a memory budget of {budget / 2**20:.0f} MB is too small for this model on "
                f"{self.device}: even {tile[0]}x{tile[1]} tiles need about "
                f"{need / 2**20:.0f} MB (raise max_memory or lower the tile overlap)",
            )
        return tile

    def _smaller(self, tile: tuple[int, int] | None, height: int, width: int) -> tuple[int, int]:
        """Tiles of about a quarter of the pixels of ``tile`` after an out-of-memory error."""
        where = f"on {self.device}"
        if self.tile is None:
            raise ContrastError(
                "out of memory",
                f"the whole {width}x{height} image does not fit {where} untiled; allow tiling "
                "(tile 'auto', the default, or a size)",
            )
        th, tw = tile or (height, width)
        smaller = plan_tiles(height, width, th * tw // 4, self.tile_overlap)
        if smaller is None or smaller[0] * smaller[1] >= th * tw:
            out_mb = 12 * height * width * self.model_scale**2 / 2**20  # float32 RGB result
            raise ContrastError(
                "out of memory",
                f"even {th}x{tw}-pixel tiles do not fit {where} (the result alone needs "
                f"{out_mb:.0f} MB of RAM); free memory or lower the tile overlap",
            )
        return smaller

    # -- one RGB batch, whole or tiled --------------------------------------------------------
    def _rgb(self, x: Tensor, tile: tuple[int, int] | None) -> Tensor:
        h, w = x.shape[-2:]
        if tile is None or (h <= tile[0] and w <= tile[1]):
            self.last_tiles = 0
            return self._model_forward(x)
        total = count_tiles(h, w, tile, self.tile_overlap)
        self.last_tiles = total
        on_tile = self.progress(total) if self.progress else None
        return tiled_forward(
            self._model_forward, x, self.model_scale, tile, self.tile_overlap, on_tile
        )

    def _rgb_with_retry(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        tile = self.plan(h, w, x.shape[0])
        while True:
            try:
                out = self._rgb(x, tile)
                self.last_tile = tile
                return out
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                del exc
                _empty_cache(self.device)
                tile = self._smaller(tile, h, w)

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
            raise InputError(
                "image", f"expected (B,C,H,W) with C in 1..4 channels, got {tuple(x.shape)}"
            )
        if x.numel() == 0:
            raise InputError("image", f"is empty: {tuple(x.shape)} has no pixels")
        x = x.detach().float().cpu()
        c = x.shape[1]
        color, alpha = (x[:, :3], x[:, 3:]) if c >= 3 else (x[:, :1], x[:, 1:])
        out = gray_as_rgb(self._rgb_with_retry, color)
        if alpha.shape[1]:
            out = torch.cat([out, self._alpha(alpha)], dim=1)
        if self.scale != self.model_scale:  # e.g. x2 with an x4 model: resize its output
            size = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
            out = F.interpolate(out, size=size, mode="bicubic", align_corners=False, antialias=True)
        for r in range(0, out.shape[-2], 256):  # in bands: Ctrl-C acts between them
            out[..., r : r + 256, :].clamp_(0.0, 1.0)
        return out.squeeze(0) if squeeze else out
