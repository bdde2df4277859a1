"""The model side of training: build from the config, init from pretrained, save the result."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from torch import nn

from contrast_sr.errors import ConfigError, UnknownModelError, UsageError
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
    if isinstance(exc, UnknownModelError):
        return "model.name"
    if isinstance(exc, ConfigError):
        return f"model.{exc.field}" if exc.field in cfg.overrides else "model"
    return "model"


def load_pretrained(model: nn.Module, path: str | Path, strict: bool = False) -> None:
    """Init from a checkpoint; ``strict=False`` skips tensors whose shape differs (the upsampler
    when fine-tuning x3/x4 from x2) and names them on stderr."""
    from contrast_sr.models import ContrastSR
    from contrast_sr.models.state_dict import read_state_dict, rename_original_keys

    try:
        state = read_state_dict(Path(path))
    except Exception as exc:
        raise UsageError("config key 'model.pretrained'", f"cannot read {path}: {exc}") from None
    if isinstance(model, ContrastSR):  # original research checkpoints name the mixers by kind
        state = rename_original_keys(state)
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
