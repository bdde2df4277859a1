"""Import checkpoints of the original Contrast research code (BasicSR) into project checkpoints.

The project's modules mirror the original state-dict names except a block's ``mixer`` (see
:func:`~contrast_sr.models.state_dict.rename_original_keys`), so conversion is that one key
filter plus strict checks: every original key must be used, every model key provided, every
shape equal. Derived buffers of the original (relative-position indices, the dynamic-bias
coordinate table) are not stored by the project; they are checked against the recomputed
values instead.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from contrast_sr.errors import ArgumentError, ContrastError
from contrast_sr.models.blocks.ocab import relative_coords_table
from contrast_sr.models.blocks.windows import (
    relative_position_index_oca,
    relative_position_index_sa,
)
from contrast_sr.models.checkpoint import save_model
from contrast_sr.models.registry import create_model
from contrast_sr.models.state_dict import read_state_dict, rename_original_keys

# original buffers (not parameters), keyed by the last name component
DERIVED_BUFFERS = (
    "relative_position_index_SA",
    "relative_position_index_OCA",
    "relative_coords_table",
    "attn_mask",
)


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
                "(wrong --variant or --scale?)",
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


def convert_checkpoint(
    src: str | os.PathLike, dst: str | os.PathLike, variant: str, scale: int | None = None
) -> torch.nn.Module:
    """Convert original checkpoint ``src`` into project checkpoint ``dst``; returns the model.

    ``scale`` defaults to the one the upsampler weights imply. ArgumentError("dst") if ``dst``
    is ``src``; ContrastError for weights that do not fit ``variant``.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and dst.resolve() == src.resolve():
        raise ArgumentError("dst", "is the input file; refusing to overwrite it")
    state = read_state_dict(src)
    found = infer_scale(state)
    if scale is None:
        scale = found or 4
    elif found is not None and found != int(scale):
        raise ContrastError(f"checkpoint {src}", f"holds a x{found} upsampler, not x{scale}")
    model = create_model(variant, int(scale))
    model.load_state_dict(convert_state_dict(state, model), strict=True)
    save_model(model, dst, extra={"converted_from": src.name})
    return model.eval()
