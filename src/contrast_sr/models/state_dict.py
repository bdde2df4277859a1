"""Stored weights -> this project's state dicts: read a file, unwrap its container, rename keys.

Checkpoints wrap their tensors differently: project training checkpoints store ``ema`` and
``model``; BasicSR (the original research code) stores ``params_ema`` and ``params``; others a
``state_dict`` or the plain dict. :func:`unwrap_state_dict` is the one place that knows them.

The project's modules keep the original state-dict names except one: a block's token mixer is
``mixer`` (the original, and project checkpoints before the typed config, named it after its
kind: ``mamba`` for SS2D, ``attn`` for window attention). :func:`rename_original_keys` is the
one key filter between the two; ``ContrastSR.load_state_dict`` and the converter apply it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from contrast_sr.errors import ArgumentError, InputError
from contrast_sr.models.config import BLOCK_KINDS

T = TypeVar("T")

# container keys, in priority order: EMA weights first (ours, BasicSR), then raw weights
STATE_DICT_KEYS = ("ema", "params_ema", "model", "params", "state_dict")
# buffers (not parameters) of original / HAT checkpoints that the project recomputes instead of
# storing, keyed by the last name component
DERIVED_BUFFERS = (
    "relative_position_index_SA",
    "relative_position_index_OCA",
    "relative_coords_table",
    "attn_mask",
)


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The ``{name: tensor}`` state dict inside a loaded checkpoint object.

    A dict holding one of :data:`STATE_DICT_KEYS` as a dict is unwrapped by the first such key
    (``ema``, ``params_ema``, ``model``, ``params``, ``state_dict``); a plain dict of tensors is
    taken as is. A DDP ``module.`` prefix is stripped. InputError (naming ``source``) if no
    state dict of tensors is found.
    """
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(source, "holds no state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in obj.items()}


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """State dict of a ``.safetensors`` file or a ``.pth``/``.pt`` checkpoint (loaded with
    ``weights_only=True``), unwrapped by :func:`unwrap_state_dict`; InputError if unusable."""
    path = Path(path)
    source = f"checkpoint {path}"
    if not path.is_file():
        raise InputError(source, "no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch / safetensors raise many types for corrupt files
        detail = " ".join(str(exc).split())[:200]
        raise InputError(source, f"cannot be read ({detail})") from None
    return unwrap_state_dict(obj, source)


def rename_original_keys(state: Mapping[str, T]) -> dict[str, T]:
    """Original keys -> project keys; every other key passes unchanged.

    ``layers.0.residual_group.blocks.3.mamba.in_proj.weight`` ->
    ``layers.0.residual_group.blocks.3.mixer.in_proj.weight`` (the mixer names of all
    registered block kinds, ``BlockKind.original_key``). ArgumentError if two keys would clash.
    """
    names = sorted({k.original_key for k in BLOCK_KINDS.values() if k.original_key})
    pattern = re.compile(r"((?:^|\.)blocks\.\d+\.)(?:" + "|".join(map(re.escape, names)) + r")\.")
    out: dict[str, T] = {}
    for key, value in state.items():
        new = pattern.sub(r"\1mixer.", key, count=1)
        if new in out:
            raise ArgumentError("state", f"{key!r} gives {new!r}, which is already there")
        out[new] = value
    return out
