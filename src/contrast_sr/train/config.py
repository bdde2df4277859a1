"""Training configuration: a YAML file, ``--set key=value`` overrides, validated up front.

The schema is the dataclasses below. Every problem (unknown key, wrong type, missing folder) is a
one-line :class:`UsageError` naming the dotted key, raised before any model is built::

    error: config key 'train.lr': expected a number, got 'fast'

Relative paths in the file are resolved against the file's folder; relative paths given with
``--set`` against the current directory. ``model`` accepts extra keys: they are the model's
constructor overrides (``dims``, ``depths``...), checked when the model is built.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from contrast_sr.errors import UsageError

OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("multistep", "cosine", "constant")
LOSSES = ("l1", "mse", "charbonnier")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class ModelConfig:
    name: str = ""
    scale: int = 4
    pretrained: str | None = None  # init-from weights (e.g. the x2 model when fine-tuning x4)
    strict_load: bool = False  # False: skip pretrained tensors whose shape differs (upsampler)
    overrides: dict = field(default_factory=dict)  # every other key under `model:`


@dataclass
class TrainDataConfig:
    hr_dir: str = ""
    lr_dir: str | None = None  # None: make LR on the fly with MATLAB bicubic
    filename_tmpl: str = "{}"  # LR file stem from the HR stem, e.g. "{}x4" (BasicSR/EDSR layout)
    patch_size: int = 64  # LR patch side; the HR patch is patch_size * scale
    batch_size: int = 16  # per process
    workers: int = 2
    hflip: bool = True
    rot90: bool = True
    cache: bool = False  # keep decoded images in memory (small sets such as T91)


@dataclass
class ValDataConfig:
    hr_dir: list = field(default_factory=list)  # one or more HR folders


@dataclass
class DataConfig:
    train: TrainDataConfig = field(default_factory=TrainDataConfig)
    val: ValDataConfig | None = None


@dataclass
class TrainConfig:
    iters: int = 1000
    batch_size: int | None = None  # effective batch over all processes (overrides data batch)
    optimizer: str = "adam"
    lr: float = 2e-4
    betas: list = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.0
    scheduler: str = "multistep"
    milestones: list = field(default_factory=list)
    gamma: float = 0.5
    min_lr: float = 0.0  # cosine floor
    warmup_iters: int = 0
    loss: str = "l1"
    charbonnier_eps: float = 1e-3
    ema_decay: float = 0.999  # 0 turns EMA off
    grad_clip: float | None = None  # max gradient norm; None/0 = off
    precision: str = "fp32"
    compile: bool = False
    channels_last: bool = False
    deterministic: bool = False
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3  # newest N kept; 0 keeps all
    val_every: int = 5000
    log_every: int = 100


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


REQUIRED = {"model.name", "data.train.hr_dir"}
PATH_KEYS = {"data.train.hr_dir", "data.train.lr_dir", "data.val.hr_dir", "model.pretrained"}


# --------------------------------------------------------------------------- loading


def load_config(path: str | Path | None, sets: list[str] | None = None, raw: dict | None = None):
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
    raw = _resolve_paths(_copy(raw), base)
    for item in sets or []:
        key, value = parse_set(item)
        _set_dotted(raw, key, _resolve_one(key, value, Path.cwd()))
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


def _resolve_one(key: str, value: Any, base: Path) -> Any:
    if key not in PATH_KEYS or value is None:
        return value
    if isinstance(value, list):
        return [_resolve_one(key, v, base) for v in value]
    if isinstance(value, str):
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base / p))
    return value


def _resolve_paths(raw: dict, base: Path) -> dict:
    for key in PATH_KEYS:
        parts = key.split(".")
        node = raw
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node:
            node[parts[-1]] = _resolve_one(key, node[parts[-1]], base)
    # `data.val` may be a folder or a list of folders directly
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("val"), str | list):
        data["val"] = {"hr_dir": _resolve_one("data.val.hr_dir", data["val"], base)}
    return raw


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
    """Turn a plain dict into a checked :class:`Config` (raises a one-line UsageError)."""
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("val"), str | list):
        data = dict(data)
        data["val"] = {"hr_dir": data["val"]}
        raw = {**raw, "data": data}
    model_raw = raw.get("model")
    if isinstance(model_raw, dict):
        known = {f.name for f in dataclasses.fields(ModelConfig)} - {"overrides"}
        extra = {k: v for k, v in model_raw.items() if k not in known}
        raw = {**raw, "model": {**{k: model_raw[k] for k in model_raw if k in known}}}
        raw["model"]["overrides"] = extra
    cfg = _build(Config, raw, "")
    _check_semantics(cfg)
    return cfg


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise UsageError(f"config key '{prefix.rstrip('.') or '<top>'}'", "expected a section")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            known = ", ".join(n for n in names if n != "overrides")
            raise UsageError(f"config key '{prefix}{key}'", f"unknown key (known here: {known})")
    values = {}
    for name in names:
        key = f"{prefix}{name}"
        if name not in raw:
            if key in REQUIRED:
                raise UsageError(f"config key '{key}'", "required")
            continue
        values[name] = _coerce(raw[name], hints[name], key)
    return cls(**values)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UsageError(f"config key '{key}'", f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # 5e5 in YAML
            return int(value)
        raise UsageError(f"config key '{key}'", f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise UsageError(f"config key '{key}'", f"expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise UsageError(f"config key '{key}'", f"expected a string, got {value!r}")
    if tp is list or origin is list:
        return value if isinstance(value, list) else [value]
    if tp is dict:
        return value
    raise AssertionError(f"unsupported schema type {tp}")  # pragma: no cover


def _err(key: str, why: str) -> UsageError:
    return UsageError(f"config key '{key}'", why)


def _numbers(values: list, key: str, kind: type) -> list:
    out = []
    for v in values:
        try:
            out.append(_coerce(v, kind, key))
        except UsageError:
            raise _err(key, f"expected a list of {kind.__name__}s, got {values!r}") from None
    return out


def _check_semantics(cfg: Config) -> None:
    m, d, t = cfg.model, cfg.data.train, cfg.train
    if not m.name:
        raise _err("model.name", "required")
    if m.scale < 1:
        raise _err("model.scale", f"must be >= 1, got {m.scale}")
    if m.pretrained is not None and not Path(m.pretrained).is_file():
        raise _err("model.pretrained", f"file not found: {m.pretrained}")
    _check_dir("data.train.hr_dir", d.hr_dir)
    if d.lr_dir is not None:
        _check_dir("data.train.lr_dir", d.lr_dir)
    if "{}" not in d.filename_tmpl:
        raise _err("data.train.filename_tmpl", f"must contain '{{}}', got {d.filename_tmpl!r}")
    for key, v in [
        ("data.train.patch_size", d.patch_size),
        ("data.train.batch_size", d.batch_size),
    ]:
        if v < 1:
            raise _err(key, f"must be >= 1, got {v}")
    if d.workers < 0:
        raise _err("data.train.workers", f"must be >= 0, got {d.workers}")
    if cfg.data.val is not None:
        dirs = cfg.data.val.hr_dir
        if not dirs:
            raise _err(
                "data.val.hr_dir", "give one folder or a list of folders (or data.val: null)"
            )
        for i, p in enumerate(dirs):
            if not isinstance(p, str):
                raise _err(f"data.val.hr_dir[{i}]", f"expected a folder path, got {p!r}")
            _check_dir(f"data.val.hr_dir[{i}]" if len(dirs) > 1 else "data.val.hr_dir", p)
    for key, choice, allowed in [
        ("train.optimizer", t.optimizer, OPTIMIZERS),
        ("train.scheduler", t.scheduler, SCHEDULERS),
        ("train.loss", t.loss, LOSSES),
        ("train.precision", t.precision, PRECISIONS),
    ]:
        if choice not in allowed:
            raise _err(key, f"unknown {choice!r} (choose from {', '.join(allowed)})")
    t.betas = _numbers(t.betas, "train.betas", float)
    if len(t.betas) != 2:
        raise _err("train.betas", f"expected two numbers, got {t.betas!r}")
    t.milestones = _numbers(t.milestones, "train.milestones", int)
    if t.milestones != sorted(t.milestones):
        raise _err("train.milestones", f"must be increasing, got {t.milestones!r}")
    for key in ("iters", "checkpoint_every", "val_every", "log_every"):
        if getattr(t, key) < 1:
            raise _err(f"train.{key}", f"must be >= 1, got {getattr(t, key)}")
    for key in ("warmup_iters", "keep_checkpoints"):
        if getattr(t, key) < 0:
            raise _err(f"train.{key}", f"must be >= 0, got {getattr(t, key)}")
    if t.lr <= 0:
        raise _err("train.lr", f"must be > 0, got {t.lr}")
    if not 0.0 <= t.ema_decay < 1.0:
        raise _err("train.ema_decay", f"must be in [0, 1), got {t.ema_decay}")
    if t.batch_size is not None and t.batch_size < 1:
        raise _err("train.batch_size", f"must be >= 1, got {t.batch_size}")


def _check_dir(key: str, path: str) -> None:
    if not path:
        raise _err(key, "required")
    if not Path(path).is_dir():
        raise _err(key, f"folder not found: {path}")
