"""Declarative dataclass schemas: fields declare their rules, one validator applies them.

A section is a dataclass whose fields are declared with :func:`option` (type from the
annotation, default, constraints); :func:`build` turns a plain dict (parsed YAML) into it,
coercing and checking every field, and raises :class:`ConfigKeyError` naming the dotted key.
Used by :mod:`contrast_sr.train.config`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from contrast_sr.errors import ConfigError, UsageError


class ConfigKeyError(ConfigError):
    """A training-config key is unknown or invalid: ``field`` is the dotted key (``train.lr``),
    ``section`` its top-level section; the message reads ``config key 'train.lr': why``."""

    def __init__(self, key: str, why: str) -> None:
        UsageError.__init__(self, f"config key {key!r}", why)
        self.field, self.section = key, key.split(".", 1)[0]


def option(
    default: Any = None,
    *,
    factory: Callable[[], Any] | None = None,
    required: bool = False,
    choices: tuple[str, ...] = (),
    ge: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    path: str | None = None,
    check: Callable[[Any], str | None] | None = None,
    extra: bool = False,
    shorthand: str | None = None,
) -> Any:
    """A schema field: ``default`` (or ``factory``) and the rules its value must meet.

    ``required``: must be given and not empty. ``choices``: one of these strings. ``ge`` /
    ``gt`` / ``lt``: ``>=``, ``>``, ``<`` that bound. ``path``: ``"file"`` or ``"dir"``
    (resolved against the config file's folder, must exist; a list holds several). ``check``:
    ``value -> why`` (``None`` when fine). ``extra``: this dict collects the section's unknown
    keys. ``shorthand``: a section that may be given as a plain value of this one key.
    """
    rules = dict(required=required, choices=choices, ge=ge, gt=gt, lt=lt)
    rules.update(path=path, check=check, extra=extra, shorthand=shorthand)
    if factory is not None:
        return field(default_factory=factory, metadata=rules)
    return field(default=default, metadata=rules)


def section_type(tp: Any) -> type | None:
    """The dataclass in ``tp`` (``X`` or ``X | None``), else ``None``."""
    for candidate in (tp, *typing.get_args(tp)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def path_keys(cls: type, prefix: str = "") -> list[str]:
    """Dotted keys of every path field of the schema."""
    hints, keys = typing.get_type_hints(cls), []
    for f in dataclasses.fields(cls):
        section = section_type(hints[f.name])
        if section is not None:
            keys += path_keys(section, f"{prefix}{f.name}.")
        elif f.metadata.get("path"):
            keys.append(f"{prefix}{f.name}")
    return keys


def resolve(value: Any, base: Path) -> Any:
    """A path (or list of paths) made absolute against ``base``."""
    if isinstance(value, list):
        return [resolve(v, base) for v in value]
    if isinstance(value, str):
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base / p))
    return value


def resolve_paths(raw: dict, cls: type, base: Path) -> None:
    """Resolve the path fields of ``raw`` (a section of ``cls``) against ``base``, in place."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        section = section_type(hints[f.name])
        shorthand = f.metadata.get("shorthand")
        if section is not None and shorthand and isinstance(raw[f.name], str | list):
            raw[f.name] = {shorthand: raw[f.name]}
        if section is not None and isinstance(raw[f.name], dict):
            resolve_paths(raw[f.name], section, base)
        elif f.metadata.get("path"):
            raw[f.name] = resolve(raw[f.name], base)


def build(cls: type, raw: Any) -> Any:
    """``raw`` (a plain dict) -> a checked ``cls``: first the structure and types of every
    field (unknown keys, sections, coercion), then the declared rules, in field order."""
    pending: list[tuple[Any, Mapping[str, Any], str]] = []
    out = _section(cls, raw, "", pending)
    for value, rules, key in pending:
        _check(value, rules, key)
    return out


def _section(cls: type, raw: Any, prefix: str, pending: list, given: bool = True) -> Any:
    """Coerce section ``cls`` from ``raw``; rules go to ``pending``. A section that was not
    ``given`` takes its defaults (its required keys then fail their rule, not here)."""
    if not isinstance(raw, dict):
        raise ConfigKeyError(prefix.rstrip(".") or "<top>", "expected a section")
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    extra = next((f.name for f in fields if f.metadata.get("extra")), None)
    known = [f.name for f in fields if f.name != extra]
    unknown = {k: v for k, v in raw.items() if k not in known}
    if unknown and extra is None:
        key = next(iter(unknown))
        raise ConfigKeyError(f"{prefix}{key}", f"unknown key (known here: {', '.join(known)})")
    values: dict[str, Any] = {extra: unknown} if extra else {}
    for f in fields:
        if f.name == extra:
            continue
        key, section = f"{prefix}{f.name}", section_type(hints[f.name])
        shorthand = f.metadata.get("shorthand")
        if f.name in raw:
            value = raw[f.name]
            if section is not None and shorthand and isinstance(value, str | list):
                value = {shorthand: value}
            value = _coerce(value, hints[f.name], key, pending)
        elif f.metadata.get("required") and given:
            raise ConfigKeyError(key, "required")
        elif section is not None and f.default is dataclasses.MISSING:
            value = _section(section, {}, f"{key}.", pending, given=False)
        else:
            value = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        if f.metadata:
            pending.append((value, f.metadata, key))  # defaults too: [] may not be allowed
        values[f.name] = value
    return cls(**values)


def _coerce(value: Any, tp: Any, key: str, pending: list) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, pending)
    if dataclasses.is_dataclass(tp):
        return _section(tp, value, f"{key}.", pending)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigKeyError(key, f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # 5e5 in YAML
            return int(value)
        raise ConfigKeyError(key, f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigKeyError(key, f"expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigKeyError(key, f"expected a string, got {value!r}")
    if tp is list or origin is list:
        values = value if isinstance(value, list) else [value]
        (kind,) = typing.get_args(tp) or (None,)
        if kind is None:
            return values
        try:
            return [_coerce(v, kind, key, pending) for v in values]
        except ConfigKeyError:
            raise ConfigKeyError(
                key, f"expected a list of {kind.__name__}s, got {values!r}"
            ) from None
    if tp is dict:
        return value
    raise AssertionError(f"unsupported schema type {tp}")  # pragma: no cover


def _check(value: Any, rules: Mapping[str, Any], key: str) -> None:
    """Apply a field's declared rules to its coerced value (``None`` passes: it is allowed)."""
    if value is None or not rules:
        return
    if rules["required"] and value == "":
        raise ConfigKeyError(key, "required")
    if rules["choices"] and value not in rules["choices"]:
        raise ConfigKeyError(key, f"unknown {value!r} (choose from {', '.join(rules['choices'])})")
    ge, gt, lt = rules["ge"], rules["gt"], rules["lt"]
    if ge is not None and lt is not None and not ge <= value < lt:
        raise ConfigKeyError(key, f"must be in [{ge}, {lt}), got {value}")
    if ge is not None and lt is None and value < ge:
        raise ConfigKeyError(key, f"must be >= {ge}, got {value}")
    if gt is not None and value <= gt:
        raise ConfigKeyError(key, f"must be > {gt}, got {value}")
    if rules["path"]:
        _check_paths(value, rules["path"], key)
    why = rules["check"](value) if rules["check"] else None
    if why:
        raise ConfigKeyError(key, why)


def _check_paths(value: str | list, kind: str, key: str) -> None:
    paths = value if isinstance(value, list) else [value]
    for i, p in enumerate(paths):
        name = f"{key}[{i}]" if len(paths) > 1 else key
        if not isinstance(p, str):
            raise ConfigKeyError(f"{key}[{i}]", f"expected a folder path, got {p!r}")
        if not p:
            raise ConfigKeyError(name, "required")
        if kind == "dir" and not Path(p).is_dir():
            raise ConfigKeyError(name, f"folder not found: {p}")
        if kind == "file" and not Path(p).is_file():
            raise ConfigKeyError(name, f"file not found: {p}")
