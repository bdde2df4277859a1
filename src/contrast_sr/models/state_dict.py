"""Stored weights -> this project's state dicts: read a file, unwrap its container.

Checkpoints wrap their tensors differently: project training checkpoints store ``ema`` and
``model``; BasicSR (the original research code) stores ``params_ema`` and ``params``; others a
``state_dict`` or the plain dict. :func:`unwrap_state_dict` is the one place that knows them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from contrast_sr.errors import InputError

# container keys, in priority order: EMA weights first (ours, BasicSR), then raw weights
STATE_DICT_KEYS = ("ema", "params_ema", "model", "params", "state_dict")


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
