"""Training configuration: a YAML file, ``--set key=value`` overrides, validated up front.

The schema is the dataclasses below: each field declares its type, default and constraints
(:func:`~contrast_sr.train.schema.option`), and one generic validator
(:mod:`contrast_sr.train.schema`) coerces and checks them all. Every problem (unknown
key, wrong type, missing folder) is a one-line :class:`ConfigKeyError` naming the dotted key,
raised before any model is built::

    error: config key 'train.lr': expected a number, got 'fast'

Relative paths in the file are resolved against the file's folder; relative paths given with
``--set`` against the current directory. ``model`` accepts extra keys: they are the model's
constructor overrides (``dims``, ``depths``...), checked when the model is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from contrast_sr.errors import ArgumentError, ConfigError, UsageError
from contrast_sr.train.schema import (
    ConfigKeyError,
    build,
    option,
    path_keys,
    resolve,
    resolve_paths,
)

__all__ = ["Config", "ConfigKeyError", "ModelConfig", "TrainConfig", "load_config", "parse_set"]

OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("multistep", "cosine", "constant")
LOSSES = ("l1", "mse", "charbonnier")
PRECISIONS = ("fp32", "bf16", "fp16")


def _has_slot(template: str) -> str | None:
    return None if "{}" in template else f"must contain '{{}}', got {template!r}"


def _pair(values: list) -> str | None:
    return None if len(values) == 2 else f"expected two numbers, got {values!r}"


def _increasing(values: list) -> str | None:
    return None if values == sorted(values) else f"must be increasing, got {values!r}"


def _degradation(raw: dict) -> str | None:
    from contrast_sr.data.degradations import parse_degradation

    try:
        parse_degradation(raw)
    except ConfigError as exc:
        return f"{exc.field}: {exc.why}"
    return None


def _lr_degradation(spec: str | None) -> str | None:
    from contrast_sr.data.degrade import parse_lr_degradation

    if spec is None:
        return None
    try:
        parse_lr_degradation(str(spec))
    except ArgumentError as exc:
        return exc.why
    return None


def _some_folder(values: list) -> str | None:
    return None if values else "give one folder or a list of folders (or data.val: null)"


@dataclass
class ModelConfig:
    name: str = option("", required=True)
    scale: int = option(4, ge=1)
    # init-from weights (e.g. the x2 model when fine-tuning x4)
    pretrained: str | None = option(None, path="file")
    strict_load: bool = False  # False: skip pretrained tensors whose shape differs (upsampler)
    overrides: dict = option(factory=dict, extra=True)  # every other key under `model:`


@dataclass
class TrainDataConfig:
    hr_dir: str = option("", required=True, path="dir")
    lr_dir: str | None = option(None, path="dir")  # None: make LR on the fly (MATLAB bicubic)
    # LR file stem from the HR stem, e.g. "{}x4" (BasicSR/EDSR layout)
    filename_tmpl: str = option("{}", check=_has_slot)
    patch_size: int = option(64, ge=1)  # LR patch side; the HR patch is patch_size * scale
    batch_size: int = option(16, ge=1)  # per process
    workers: int = option(2, ge=0)
    hflip: bool = True
    rot90: bool = True
    cache: bool = False  # keep decoded images in memory (small sets such as T91)
    # on-the-fly photo degradations instead of bicubic (data/degradations.py; HR-only data)
    degradation: dict | None = option(None, check=_degradation)


@dataclass
class ValDataConfig:
    hr_dir: list = option(factory=list, path="dir", check=_some_folder)  # one or more folders
    # validate on the degraded benchmark (as `eval --lr-degradation`), e.g. "photo"
    lr_degradation: str | None = option(None, check=_lr_degradation)


@dataclass
class DataConfig:
    train: TrainDataConfig = field(default_factory=TrainDataConfig)
    val: ValDataConfig | None = option(None, shorthand="hr_dir")  # or just the folder(s)


@dataclass
class TrainConfig:
    iters: int = option(1000, ge=1)
    # effective batch over all processes (overrides data batch)
    batch_size: int | None = option(None, ge=1)
    optimizer: str = option("adam", choices=OPTIMIZERS)
    lr: float = option(2e-4, gt=0)
    betas: list[float] = option(factory=lambda: [0.9, 0.99], check=_pair)
    weight_decay: float = 0.0
    scheduler: str = option("multistep", choices=SCHEDULERS)
    milestones: list[int] = option(factory=list, check=_increasing)
    gamma: float = 0.5
    min_lr: float = 0.0  # cosine floor
    warmup_iters: int = option(0, ge=0)
    loss: str = option("l1", choices=LOSSES)
    charbonnier_eps: float = 1e-3
    ema_decay: float = option(0.999, ge=0, lt=1)  # 0 turns EMA off
    grad_clip: float | None = None  # max gradient norm; None/0 = off
    precision: str = option("fp32", choices=PRECISIONS)
    compile: bool = False
    channels_last: bool = False
    deterministic: bool = False
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = option(5000, ge=1)
    keep_checkpoints: int = option(3, ge=0)  # newest N kept; 0 keeps all
    val_every: int = option(5000, ge=1)
    log_every: int = option(100, ge=1)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: str | None = None

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        overrides = out["model"].pop("overrides")
        out["model"].update(overrides)
        return out


# --------------------------------------------------------------------------- loading


def load_config(
    path: str | Path | None, sets: list[str] | None = None, raw: dict | None = None
) -> Config:
    """Read ``path`` (or use ``raw``), apply ``--set`` overrides, validate; returns a Config."""
    base = Path.cwd()
    if raw is None:
        if path is None:
            raise UsageError("config", "no configuration file given")
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"config {path}", "file not found")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"config {path}", f"not valid YAML ({_first_line(exc)})") from None
        base = path.resolve().parent
    if not isinstance(raw, dict):
        raise UsageError("config", "the top level must be a mapping of sections")
    raw = _copy(raw)
    resolve_paths(raw, Config, base)
    paths = set(path_keys(Config))
    for item in sets or []:
        key, value = parse_set(item)
        if key in paths:
            value = resolve(value, Path.cwd())
        _set_dotted(raw, key, value)
    return validate(raw)


def parse_set(item: str) -> tuple[str, Any]:
    """``'train.iters=24'`` -> ``('train.iters', 24)``; the value is parsed as YAML."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(
            f"--set {item}", "expected KEY=VALUE with a dotted key, e.g. train.iters=24"
        )
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise UsageError(f"--set {key}", f"value is not valid YAML ({_first_line(exc)})") from None
    return key, value


def _set_dotted(raw: dict, key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            prefix = ".".join(parts[: i + 1])
            raise UsageError(f"--set {key}", f"'{prefix}' is not a section")
        node = child
    node[parts[-1]] = value


def _copy(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: _copy(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_copy(v) for v in raw]
    return raw


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160]


# --------------------------------------------------------------------------- validation


def validate(raw: dict) -> Config:
    """Turn a plain dict into a checked :class:`Config` (raises a one-line ConfigKeyError)."""
    return build(Config, raw)
