"""Project checkpoints: safetensors with the variant, scale and full configuration as metadata.

Metadata keys: ``format`` ("contrast-sr"), ``variant`` (registered name or ""), ``scale`` and
``config`` (JSON of ``model.config.to_dict()``). :func:`load_model` rebuilds the exact model from
them. Older checkpoints (``scale`` inside ``config``, mixers stored as ``mamba``/``attn``) load
as well.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from contrast_sr.errors import ContrastError, InputError, MissingWeightsError, UsageError
from contrast_sr.models.config import ContrastConfig
from contrast_sr.models.contrast import ContrastSR

FORMAT = "contrast-sr"


def checkpoint_metadata(model: nn.Module) -> dict[str, str]:
    """The metadata :func:`save_model` writes for ``model`` (a ContrastSR; a custom model with
    ``scale`` and a JSON-able ``config`` mapping is written the same way)."""
    config = model.config
    data = config.to_dict() if isinstance(config, ContrastConfig) else dict(config)
    return {
        "format": FORMAT,
        "variant": getattr(model, "variant", None) or "",
        "scale": str(int(model.scale)),
        "config": json.dumps(data, sort_keys=True),
    }


def save_model(
    model: nn.Module, path: str | os.PathLike, extra: dict[str, str] | None = None
) -> Path:
    """Write ``model`` (a ContrastSR) atomically as a project checkpoint; returns the path."""
    from safetensors.torch import save_file

    from contrast_sr.utils.fs import atomic_save

    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {**checkpoint_metadata(model), **(extra or {})}
    path = Path(path)
    atomic_save(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Metadata of a safetensors file ({} if it has none); InputError if unreadable."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path}", "no such file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise InputError(f"checkpoint {path}", f"not a readable safetensors file ({exc})") from None


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model stored in a project checkpoint (eval mode, on ``device``)."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    if meta.get("format") != FORMAT or "config" not in meta:
        raise InputError(
            f"checkpoint {path}",
            "not a Contrast-SR checkpoint (import original weights with 'contrast-sr convert')",
        )
    try:
        fields = json.loads(meta["config"])
        scale = int(fields.pop("scale", meta.get("scale", 4)))  # older files: inside config
        config = ContrastConfig.from_dict(fields)
        model = ContrastSR(config, scale=scale, variant=meta.get("variant") or None)
    except (ValueError, TypeError, AttributeError, UsageError) as exc:
        why = exc.message if isinstance(exc, UsageError) else str(exc)
        raise InputError(f"checkpoint {path}", f"bad configuration: {why}") from None
    state = load_file(str(path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise InputError(
            f"checkpoint {path}", f"weights do not match its configuration: {detail}"
        ) from None
    return model.to(device).eval()


def resolve_model(
    spec: str, scale: int | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """A checkpoint path, or a registered name with bundled weights -> model (eval mode).

    Raises MissingWeightsError when a name has no bundled weights for ``scale``, ContrastError
    when a checkpoint's scale differs from the requested one.
    """
    from contrast_sr.models.registry import VARIANTS, canonical_name
    from contrast_sr.weights import bundled_variants, bundled_weights

    path = Path(spec)
    name = canonical_name(spec)
    if name in VARIANTS and not path.is_file():
        scale = 4 if scale is None else int(scale)
        weights = bundled_weights(name, scale)
        if not weights.is_file():
            shipped = ", ".join(f"{n} x{s}" for n, s in bundled_variants()) or None
            raise MissingWeightsError(name, scale, bundled=shipped)
        path = weights
    elif not path.is_file():
        raise InputError(
            f"model {spec!r}", "neither a registered model name nor an existing checkpoint file"
        )
    model = load_model(path, device)
    if scale is not None and int(scale) != model.scale:
        raise ContrastError(f"model {spec!r}", f"is a x{model.scale} model, not x{scale}")
    return model
