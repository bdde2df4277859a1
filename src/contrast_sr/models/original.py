"""Import checkpoints of the original Contrast research code (BasicSR) and of official HAT.

The project's modules mirror the original state-dict names except a block's ``mixer`` (see
:func:`~contrast_sr.models.state_dict.rename_original_keys`), so conversion is that one key
filter plus strict checks: every original key must be used, every model key provided, every
shape equal. Derived buffers of the original (relative-position indices, the dynamic-bias
coordinate table) are not stored by the project; they are checked against the recomputed
values instead.

Without a variant the architecture comes from the tensors' shapes
(:func:`~contrast_sr.models.detect.detect_architecture`: a registered variant with exactly
those shapes, else the detected configuration); ``overrides`` (config fields) apply on top of
either. Checkpoints are read without running pickled code (``torch.load(weights_only=True)`` or
safetensors).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from contrast_sr.errors import ArgumentError, ContrastError
from contrast_sr.models.blocks.ocab import relative_coords_table
from contrast_sr.models.blocks.windows import (
    relative_position_index_oca,
    relative_position_index_sa,
)
from contrast_sr.models.checkpoint import save_model
from contrast_sr.models.contrast import ContrastSR
from contrast_sr.models.detect import Detected, detect_architecture
from contrast_sr.models.registry import canonical_name, variant_config
from contrast_sr.models.state_dict import DERIVED_BUFFERS, read_state_dict, rename_original_keys

__all__ = [
    "DERIVED_BUFFERS",
    "Conversion",
    "convert_checkpoint",
    "convert_state_dict",
    "infer_scale",
]


def infer_scale(state: dict[str, torch.Tensor], in_chans: int = 3) -> int | None:
    """Scale implied by the upsampler weights (None if not recognisable)."""
    if "conv_last.weight" in state:  # pixelshuffle: log2(s) convs of 4F, or one of 9F
        convs = [v for k, v in state.items() if k.startswith("upsample.") and k.endswith("weight")]
        if len(convs) == 1 and convs[0].shape[0] == 9 * convs[0].shape[1]:
            return 3
        return 2 ** len(convs)
    weight = state.get("upsample.0.weight")
    if weight is not None:  # pixelshuffledirect: C -> in_chans * s²
        s = math.isqrt(weight.shape[0] // in_chans)
        return s if in_chans * s * s == weight.shape[0] else None
    return None


def _expected_buffer(model: torch.nn.Module, key: str) -> torch.Tensor | None:
    """Recomputed value of an original derived buffer, or None when it does not apply."""
    ws, ows = model.config.window_size, model.config.overlap_window_size
    name = key.rsplit(".", 1)[-1]
    if name == "relative_position_index_SA":
        return relative_position_index_sa(ws)
    if name == "relative_position_index_OCA":
        return relative_position_index_oca(ws, ows)
    if name == "relative_coords_table":
        return relative_coords_table((ws + ows) // 2)
    return None


def convert_state_dict(
    state: dict[str, torch.Tensor], model: torch.nn.Module
) -> dict[str, torch.Tensor]:
    """Map an original state dict onto ``model``'s keys; ContrastError on any mismatch."""
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, value in rename_original_keys(state).items():
        name = key.rsplit(".", 1)[-1]
        if name in DERIVED_BUFFERS and key not in target:
            expected = _expected_buffer(model, key)
            if expected is not None and (
                expected.shape != value.shape
                or not torch.allclose(expected.to(value.dtype), value, atol=1e-6)
            ):
                raise ContrastError(
                    f"buffer {key}",
                    "differs from this architecture (wrong variant or window size?)",
                )
            continue
        if key not in target:
            unused.append(key)
            continue
        if tuple(value.shape) != tuple(target[key].shape):
            raise ContrastError(
                f"weight {key}",
                f"shape {tuple(value.shape)} does not match the model's {tuple(target[key].shape)} "
                "(wrong --variant or --scale? omit --variant to detect the architecture)",
            )
        out[key] = value.to(target[key].dtype)
    if unused:
        more = f" and {len(unused) - 3} more" if len(unused) > 3 else ""
        raise ContrastError(
            "checkpoint has weights the model lacks",
            f"{', '.join(unused[:3])}{more} (wrong --variant?)",
        )
    missing = [k for k in target if k not in out]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ContrastError(
            "checkpoint lacks weights the model needs",
            f"{', '.join(missing[:3])}{more} (wrong --variant?)",
        )
    return out


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert_checkpoint` built: the ``model`` (its ``variant`` is the registered
    name, or None for a detected or overridden configuration) and, without a given variant,
    the ``detected`` architecture (registered matches, assumed fields)."""

    model: ContrastSR
    detected: Detected | None


def _architecture(
    state: dict[str, torch.Tensor],
    variant: str | None,
    scale: int | None,
    overrides: Mapping[str, Any],
) -> tuple[ContrastSR, Detected | None]:
    found = infer_scale(state)
    if scale is not None and found is not None and found != int(scale):
        raise ContrastError("checkpoint", f"holds a x{found} upsampler, not x{scale}")
    if variant is not None:
        scale = int(scale or found or 4)
        base = variant_config(variant, scale)
        name, detected = canonical_name(variant), None
    else:
        detected = detect_architecture(state)
        if scale is not None and int(scale) != detected.scale:
            raise ContrastError("checkpoint", f"holds a x{detected.scale} model, not x{scale}")
        base, scale, name = detected.config, detected.scale, detected.variant
    config = base.replace(**overrides) if overrides else base
    if config != base:
        name = None  # no longer the registered variant
    return ContrastSR(config, scale=scale, variant=name), detected


def convert_checkpoint(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    variant: str | None = None,
    scale: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Conversion:
    """Convert checkpoint ``src`` (original Contrast or HAT) into project checkpoint ``dst``.

    ``variant`` None detects the architecture from the shapes; ``scale`` defaults to the one the
    upsampler implies; ``overrides`` are config fields set on top (``{"mean_norm": False}``).
    ArgumentError("dst") if ``dst`` is ``src``; ConfigError for a bad override; ContrastError
    for weights that do not fit.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and dst.resolve() == src.resolve():
        raise ArgumentError("dst", "is the input file; refusing to overwrite it")
    state = read_state_dict(src)
    model, detected = _architecture(state, variant, scale, dict(overrides or {}))
    model.load_state_dict(convert_state_dict(state, model), strict=True)
    save_model(model, dst, extra={"converted_from": src.name})
    return Conversion(model.eval(), detected)
