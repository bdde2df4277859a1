"""The model side of training: build from the config, init from pretrained, save the result."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch
from torch import nn

from contrast_sr.errors import ConfigError, UsageError
from contrast_sr.train.config import ModelConfig
from contrast_sr.utils.fs import atomic_save


def build_model(cfg: ModelConfig) -> nn.Module:
    """A registered variant (``contrast_sr.create_model``) or ``package.module:factory``
    (your own architecture; called as ``factory(scale=..., **overrides)``)."""
    if ":" in cfg.name:
        module_name, _, attr = cfg.name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UsageError(
                "config key 'model.name'", f"cannot import {cfg.name}: {exc}"
            ) from None
    else:
        import contrast_sr

        factory = lambda scale, **kw: contrast_sr.create_model(cfg.name, scale=scale, **kw)  # noqa: E731
    try:
        model = factory(scale=cfg.scale, **cfg.overrides)
    except UsageError as exc:  # the registry's own message, prefixed with the config key
        raise UsageError(f"config key '{_model_key(exc, cfg)}'", exc.message) from None
    except (TypeError, ValueError) as exc:
        keys = ", ".join(f"model.{k}" for k in cfg.overrides) or "model.name"
        raise UsageError(f"config key(s) {keys}", f"rejected by the model: {exc}") from None
    if cfg.pretrained:
        load_pretrained(model, cfg.pretrained, strict=cfg.strict_load)
    return model


def _model_key(exc: UsageError, cfg: ModelConfig) -> str:
    """The config key a model-building error is about, from its type and ``field``: a bad
    override -> ``model.<field>``, an unknown model -> ``model.name``, else ``model``."""
    if isinstance(exc, ConfigError):
        if exc.field == "name":
            return "model.name"
        return f"model.{exc.field}" if exc.field in cfg.overrides else "model"
    return "model" if _is_registered(cfg.name) else "model.name"


def _is_registered(name: str) -> bool:
    from contrast_sr.models.registry import canonical_name, list_models

    return canonical_name(name) in list_models()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("ema", "model", "params_ema", "params", "state_dict"):  # ours, then BasicSR
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            return state[key]
    return state


def load_pretrained(model: nn.Module, path: str | Path, strict: bool = False) -> None:
    """Init from a checkpoint; ``strict=False`` skips tensors whose shape differs (the upsampler
    when fine-tuning x3/x4 from x2) and names them on stderr."""
    try:
        state = _read_state_dict(Path(path))
    except Exception as exc:
        raise UsageError("config key 'model.pretrained'", f"cannot read {path}: {exc}") from None
    own = model.state_dict()
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if skipped and strict:
        raise UsageError(
            "config key 'model.pretrained'",
            f"shape mismatch for {', '.join(skipped[:4])} (set model.strict_load: false to skip)",
        )
    state = {k: v for k, v in state.items() if k not in skipped}
    result = model.load_state_dict(state, strict=False)
    if strict and (result.missing_keys or result.unexpected_keys):
        raise UsageError(
            "config key 'model.pretrained'",
            f"missing {result.missing_keys[:4]}, unexpected {result.unexpected_keys[:4]}",
        )
    loaded = len(state) - len(result.unexpected_keys)
    if loaded == 0:
        raise UsageError(
            "config key 'model.pretrained'", f"no tensor of {path} fits {type(model).__name__}"
        )
    print(
        f"init from {path}: {loaded} tensors loaded, {len(skipped)} skipped (shape), "
        f"{len(result.missing_keys)} left at init",
        file=sys.stderr,
    )


def save_final(model: nn.Module, path: Path) -> None:
    """The project's checkpoint format (``contrast_sr.load_model`` reads it) for registered
    models; a plain safetensors state dict for custom ``module:factory`` models."""
    if hasattr(model, "config") and hasattr(model, "scale"):
        from contrast_sr.models import save_model

        save_model(model, path)
        return
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_save(path, lambda tmp: save_file(state, tmp))
