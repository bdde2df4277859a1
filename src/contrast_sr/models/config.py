"""ContrastConfig: the typed, validated description of a Contrast network, and its block kinds.

A config holds every architecture option of :class:`~contrast_sr.models.contrast.ContrastSR`
except the upscale factor (the model's ``scale``). It is frozen and validated once, when made:
an unknown field or a bad value raises :class:`~contrast_sr.errors.ConfigError` naming the
field. Untyped data (overrides, YAML, checkpoint metadata) goes through :meth:`from_dict`;
:meth:`to_dict` gives JSON-able data back, and ``from_dict(cfg.to_dict()) == cfg``.

Block kinds (the names in ``block_pattern``) live here too, because the config is validated
against them: :func:`register_block` adds one, with a factory that builds its token mixer from
the config.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from contrast_sr.errors import ArgumentError, ConfigError
from contrast_sr.models.blocks.ffn import FFN_KINDS
from contrast_sr.models.blocks.ss2d import SS2D
from contrast_sr.models.blocks.ss2d_m2 import SS2DMamba2
from contrast_sr.models.blocks.upsample import UPSAMPLERS
from contrast_sr.models.blocks.window_attention import WindowAttention


@dataclass(frozen=True)
class ContrastConfig:
    """Architecture options (C = ``dim``, ws = ``window_size``, N = ``ssm_d_state``).

    Read fields as attributes (``cfg.dim``); derive variants with :meth:`replace`.
    """

    in_chans: int = 3  # image channels; the RGB mean is used only for 3
    dim: int = 48  # C, embedding width ("embed_dim")
    depths: tuple[int, ...] = (6, 6, 6)  # blocks per residual group ("RHAG"), one per group
    num_heads: int = 6  # h, heads of OCAB and window attention
    window_size: int = 16  # ws; inputs are reflect-padded to a multiple when windows are used
    overlap_ratio: float = 0.5  # OCAB key/value window ows = ws + int(ws * overlap_ratio)
    mlp_ratio: float = 2.0  # FFN hidden width = int(mlp_ratio * C)
    block_pattern: tuple[str, ...] = ("ss2d",)  # block kinds cycled over each group's blocks
    cab: bool = False  # channel-attention block branch in every block (baseline, HAT)
    compress_ratio: int = 3  # CAB: conv C -> C // compress_ratio
    squeeze_factor: int = 30  # CAB: channel attention C -> C // squeeze_factor
    conv_scale: float = 0.01  # CAB branch weight
    ffn: str = "mlp"  # FFN kind: mlp | sgfn | gcffn | gcffn_grouped | convffn | convffn_plain
    dw_padding: Literal["zeros", "reflect"] = "zeros"  # padding of the FFN depthwise convs
    ocab: bool = True  # one overlapping cross-attention block at the end of every group
    ocab_bias: Literal["table", "none", "dynamic"] = "none"  # OCAB position bias ("PE")
    final_norm: bool = True  # LayerNorm ``norm`` before conv_after_body
    upsampler: str = "pixelshuffledirect"  # pixelshuffledirect | pixelshuffle | pixelshuffle_v2
    upsample_features: int = 64  # F, width of the pixelshuffle head
    leaky_relu: bool = True  # LeakyReLU after conv_before_upsample (pixelshuffle only)
    img_range: float = 1.0  # input scale after mean subtraction
    mean_norm: bool = True  # subtract / add back the RGB mean (HAT-light: False)
    resi_connection: Literal["1conv", "identity"] = "1conv"  # group output: 3x3 conv or none
    group_res_scale: float = 1.0  # group output x + s * conv(body(x)) (DRCT-style scaling: 0.2)
    ssm_d_state: int = 1  # N, SS2D state size
    ssm_ratio: float = 1.0  # SS2D inner width = int(ssm_ratio * C)
    ssm_dt_rank: int | Literal["auto"] = "auto"  # R, SS2D dt rank ("auto": ceil(C / 16))
    ssm_conv_bias: bool = True  # bias of the SS2D (and SS2D-Mamba-2) depthwise conv
    ssd_d_state: int = 4  # N of the Mamba-2 blocks (ss2d_m2): state is (head_dim x N)
    ssd_heads: int | Literal["auto"] = "auto"  # ss2d_m2 heads per direction ("auto": ceil(C/16))
    ssd_groups: int = 1  # ss2d_m2 B/C groups per direction (heads of a group share B and C)
    ssd_chunk: int = 16  # ss2d_m2 SSD chunk length (16: fastest on CPU; VMamba uses 64 on GPU)
    ssd_gated: bool = False  # ss2d_m2 z gate (VMamba "m0"; "m0_noz" without it)
    attention: Literal["sdpa", "explicit"] = "sdpa"  # attention kernel
    clipped_softmax: bool = False  # clipped softmax (arXiv 2306.12929) in all attention
    clip_zeta: float = -0.003  # clipped softmax: lower stretch
    clip_gamma: float = 1.003  # clipped softmax: upper stretch
    edge_conv: bool = False  # edge-correction on the body's 3x3 convs

    def __post_init__(self) -> None:
        hints = _field_types()
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, hints[f.name], getattr(self, f.name)))
        self._check_values()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContrastConfig:
        """Defaults updated by ``data`` (lists allowed for tuples); ConfigError names the first
        unknown or invalid field, with a suggestion for a misspelt name."""
        if not isinstance(data, Mapping):
            raise ArgumentError("data", f"expected a mapping of fields, got {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in known:
                # the suggestion is not quoted: only the field in error appears as 'name'
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(str(key), f"unknown{hint}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON data (tuples as lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    def replace(self, **changes: Any) -> ContrastConfig:
        """A copy with ``changes`` applied, validated like :meth:`from_dict`."""
        return self.from_dict({**self.to_dict(), **changes})

    # ---- derived facts
    @property
    def uses_windows(self) -> bool:
        """Whether H, W must be multiples of ``window_size`` (the model pads to them)."""
        return self.ocab or any(BLOCK_KINDS[k].windowed for k in self.block_pattern)

    @property
    def overlap_window_size(self) -> int:
        """ows, the side of OCAB's key/value window."""
        return self.window_size + int(self.overlap_ratio * self.window_size)

    @property
    def softmax_clip(self) -> tuple[float, float] | None:
        """``(zeta, gamma)`` when clipped softmax is on, else None."""
        return (self.clip_zeta, self.clip_gamma) if self.clipped_softmax else None

    def _check_values(self) -> None:
        """Ranges and cross-field rules (types are already checked)."""
        for name in _AT_LEAST_ONE:
            value = getattr(self, name)
            if isinstance(value, int) and value < 1:  # ssm_dt_rank may be "auto"
                raise ConfigError(name, f"must be >= 1, not {value}")
        for name in ("mlp_ratio", "ssm_ratio", "img_range", "group_res_scale"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, f"must be positive, not {getattr(self, name)}")
        if self.overlap_ratio < 0:
            raise ConfigError("overlap_ratio", f"must be >= 0, not {self.overlap_ratio}")
        if not self.depths or min(self.depths) < 1:
            raise ConfigError(
                "depths", f"needs one or more groups of >= 1 block, not {self.depths}"
            )
        if not self.block_pattern:
            raise ConfigError("block_pattern", "needs at least one block kind")
        for kind in self.block_pattern:
            if kind not in BLOCK_KINDS:
                raise _choice_error("block_pattern", kind, tuple(BLOCK_KINDS))
        if "ss2d_m2" in self.block_pattern:
            self._check_ssd()
        _one_of(self, "ffn", FFN_KINDS)
        _one_of(self, "upsampler", UPSAMPLERS)
        if self.dim % self.num_heads:
            raise ConfigError("num_heads", f"{self.num_heads} does not divide dim {self.dim}")
        if self.upsampler == "pixelshuffle_v2" and self.dim % 4:
            raise ConfigError("dim", f"{self.dim}: pixelshuffle_v2 needs a multiple of 4")
        if self.ocab and (self.overlap_window_size - self.window_size) % 2:
            raise ConfigError(
                "overlap_ratio",
                f"int(window_size * overlap_ratio) = "
                f"{self.overlap_window_size - self.window_size} must be even",
            )

    def _check_ssd(self) -> None:
        """The Mamba-2 heads must split the inner width, and the groups the heads."""
        d_inner = int(self.ssm_ratio * self.dim)
        heads = self.ssd_heads_per_direction
        if d_inner % heads:
            raise ConfigError("ssd_heads", f"{heads} heads do not divide the inner width {d_inner}")
        if heads % self.ssd_groups:
            raise ConfigError("ssd_groups", f"{self.ssd_groups} groups do not divide {heads} heads")

    @property
    def ssd_heads_per_direction(self) -> int:
        """The ss2d_m2 heads per scan direction (``ssd_heads``, "auto" resolved)."""
        return math.ceil(self.dim / 16) if self.ssd_heads == "auto" else int(self.ssd_heads)


# ---------------------------------------------------------------- field checks

_AT_LEAST_ONE = (
    "in_chans",
    "dim",
    "num_heads",
    "window_size",
    "compress_ratio",
    "squeeze_factor",
    "upsample_features",
    "ssm_d_state",
    "ssm_dt_rank",
    "ssd_d_state",
    "ssd_heads",
    "ssd_groups",
    "ssd_chunk",
)


@functools.cache
def _field_types() -> dict[str, Any]:
    """Field name -> evaluated type annotation."""
    return typing.get_type_hints(ContrastConfig)


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the field type ``hint`` (ints widen to floats, sequences
    become tuples); ConfigError naming ``name`` otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(name, option, value)
            except ConfigError:
                pass
        raise ConfigError(name, f"expected {_describe(hint)}, got {value!r}")
    if origin is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(_coerce(name, args[0], v) for v in value)
    elif origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise _choice_error(name, value, args)
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
    elif hint is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
    elif hint is str and isinstance(value, str):
        return value
    raise ConfigError(name, f"expected {_describe(hint)}, got {value!r}")


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return words[hint]


def _one_of(cfg: ContrastConfig, name: str, choices: tuple[str, ...]) -> None:
    if getattr(cfg, name) not in choices:
        raise _choice_error(name, getattr(cfg, name), choices)


def _choice_error(name: str, value: Any, choices: tuple[str, ...]) -> ConfigError:
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(name, f"unknown {value!r} ({hint}choose from {', '.join(choices)})")


# ---------------------------------------------------------------- block kinds

MixerFactory = Callable[[ContrastConfig, int], nn.Module]


@dataclass(frozen=True)
class BlockKind:
    """How to build one block kind's token mixer, and what the network must know about it."""

    build: MixerFactory  # (config, index among this kind's blocks in the group) -> mixer
    original_key: str | None = None  # the mixer's name in the original research checkpoints
    windowed: bool = False  # works on ws x ws windows (H, W padded to multiples of ws)


BLOCK_KINDS: dict[str, BlockKind] = {}


def register_block(
    kind: str,
    *,
    original_key: str | None = None,
    windowed: bool = False,
) -> Callable[[MixerFactory], MixerFactory]:
    """Decorator registering ``factory(cfg, index) -> nn.Module`` as block kind ``kind``.

    The factory reads its options from the typed config and passes them to the mixer as
    explicit arguments; ``index`` counts the blocks of this kind within a group. The mixer maps
    (B, H, W, C) -> (B, H, W, C); if its ``forward`` also takes ``residual``, it must return
    ``residual + output`` (the block then passes its skip input there).
    """

    def wrap(factory: MixerFactory) -> MixerFactory:
        BLOCK_KINDS[kind] = BlockKind(factory, original_key, windowed)
        return factory

    return wrap


@register_block("ss2d", original_key="mamba")
def ss2d_mixer(cfg: ContrastConfig, index: int) -> nn.Module:
    """SS2D, the VMamba-v2 2-D selective scan."""
    return SS2D(
        cfg.dim,
        d_state=cfg.ssm_d_state,
        ssm_ratio=cfg.ssm_ratio,
        dt_rank=cfg.ssm_dt_rank,
        conv_bias=cfg.ssm_conv_bias,
    )


@register_block("attn", original_key="attn", windowed=True)
def window_attention_mixer(cfg: ContrastConfig, index: int) -> nn.Module:
    """Swin/HAT window self-attention; every second one in a group is shifted by ws/2."""
    shift = 0 if index % 2 == 0 else cfg.window_size // 2
    return WindowAttention(
        cfg.dim,
        cfg.num_heads,
        cfg.window_size,
        shift=shift,
        impl=cfg.attention,
        clip=cfg.softmax_clip,
    )


@register_block("ss2d_m2")
def ss2d_mamba2_mixer(cfg: ContrastConfig, index: int) -> nn.Module:
    """SS2D with a Mamba-2 (SSD) core: scalar decay per head, (head_dim x N) state."""
    return SS2DMamba2(
        cfg.dim,
        d_state=cfg.ssd_d_state,
        heads=cfg.ssd_heads_per_direction,
        groups=cfg.ssd_groups,
        chunk=cfg.ssd_chunk,
        ssm_ratio=cfg.ssm_ratio,
        conv_bias=cfg.ssm_conv_bias,
        gated=cfg.ssd_gated,
    )
