"""What the server is started with (:class:`ServeOptions`) and what the page may ask for per
image (:class:`JobSettings`), checked once, with errors that name the setting."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from contrast_sr.errors import ArgumentError
from contrast_sr.infer.upscaler import Upscaler, parse_tile
from contrast_sr.io import MAX_PIXELS
from contrast_sr.web.catalog import ModelCatalog

MAX_SCALE = 8
MAX_NAME = 120
_CLIENT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TRUE, _FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no", "")


def upscaler_has_memory_budget() -> bool:
    """Whether this version's :class:`Upscaler` takes ``max_memory`` (the memory-bounded one)."""
    return "max_memory" in inspect.signature(Upscaler).parameters


@dataclass(frozen=True)
class ServeOptions:
    """Server-wide options (the ``serve`` command's flags)."""

    device: str = "auto"
    precision: str = "fp32"
    max_upload_bytes: int = 100 * 1024**2  # refused before anything is decoded
    max_pixels: int | None = MAX_PIXELS  # the decompression-bomb guard of contrast_sr.io
    max_jobs: int = 200  # jobs kept (finished ones are dropped oldest first)
    max_memory: str | None = None  # the page's default memory budget, e.g. "2G"
    allowed_hosts: tuple[str, ...] | None = None  # Host headers accepted (None: any)


@dataclass(frozen=True)
class JobSettings:
    """How one image is upscaled; ``tile`` is ``"auto"``, ``None`` (whole image) or pixels."""

    model: str
    scale: int
    self_ensemble: bool = False
    tile: int | str | None = "auto"
    tile_overlap: int = 32
    max_memory: str | None = None

    def upscaler_options(self) -> dict:
        """Keyword arguments of :class:`Upscaler` besides the model."""
        options = {
            "scale": self.scale,
            "self_ensemble": self.self_ensemble,
            "tile": self.tile,
            "tile_overlap": self.tile_overlap,
        }
        if self.max_memory is not None:
            options["max_memory"] = self.max_memory
        return options


def _flag(params: Mapping[str, str], key: str) -> bool:
    value = params.get(key, "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ArgumentError(key, f"expected true or false, got {value!r}")
    return value in _TRUE


def _int(params: Mapping[str, str], key: str, default: int) -> int:
    value = params.get(key, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ArgumentError(key, f"expected a whole number, got {value!r}") from None


def parse_settings(
    params: Mapping[str, str], catalog: ModelCatalog, options: ServeOptions
) -> JobSettings:
    """Settings from the page's query parameters (strings); ArgumentError names the bad one."""
    key = params.get("model") or catalog.default_key
    choice = catalog.choice(key)
    scale = _int(params, "scale", choice.scale)
    if not 1 <= scale <= MAX_SCALE:
        raise ArgumentError("scale", f"must be between 1 and {MAX_SCALE}, got {scale}")
    tile_text = params.get("tile", "auto").strip().lower() or "auto"
    tile = parse_tile(None if tile_text in ("0", "none", "off") else tile_text)
    overlap = _int(params, "tile_overlap", 32)
    memory = params.get("max_memory", "").strip() or options.max_memory
    check_memory_support(memory)
    # The values themselves (overlap, memory) are checked by Upscaler, where they are used.
    return JobSettings(key, scale, _flag(params, "self_ensemble"), tile, overlap, memory)


def check_memory_support(max_memory: str | None) -> None:
    """A memory budget needs the memory-bounded Upscaler; ArgumentError if this one has none."""
    if max_memory is not None and not upscaler_has_memory_budget():
        raise ArgumentError(
            "max_memory", "this version's upscaler has no memory budget; set a tile size instead"
        )


def clean_name(name: str | None) -> str:
    """A display/download name from the page: the last path part, printable, not too long."""
    text = PurePosixPath((name or "").replace("\\", "/")).name
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    if len(text) > MAX_NAME:  # keep the extension
        stem, ext = os.path.splitext(text)
        text = stem[: MAX_NAME - len(ext)] + ext if len(ext) <= 10 else text[:MAX_NAME]
    return text or "image"


def clean_client(client: str | None) -> str:
    """The browser tab's id (letters, digits, '-' and '_'); ``"default"`` when missing."""
    if not client:
        return "default"
    if not _CLIENT.fullmatch(client):
        raise ArgumentError("client", "expected 1 to 64 letters, digits, '-' or '_'")
    return client
