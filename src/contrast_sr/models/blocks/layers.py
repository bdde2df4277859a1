"""Pre-norm residual blocks and the block-kind registry used by residual groups.

Every block maps channels-last (B, H, W, C) -> (B, H, W, C):

    n = norm1(x);  y = x + mixer(n) [+ conv_scale * CAB(n)];  out = y + FFN(norm2(y))

The mixer is the only thing that differs between kinds; its attribute name mirrors the original
state-dict keys (``mamba`` for SS2D, ``attn`` for window attention). A new kind (e.g. a Mamba-2
mixer) is one :func:`register_block` call; residual groups pick kinds by name from
``config["block_pattern"]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from contrast_sr.models.blocks.cab import CAB
from contrast_sr.models.blocks.ffn import build_ffn
from contrast_sr.models.blocks.ss2d import SS2D
from contrast_sr.models.blocks.window_attention import WindowAttention

# kind -> (mixer attribute name, factory(cfg, dim, kind_index) -> mixer module)
BLOCK_KINDS: dict[str, tuple[str, Callable[[dict, int, int], nn.Module]]] = {}


def register_block(kind: str, attr: str):
    """Decorator registering a mixer factory ``f(cfg, dim, kind_index) -> nn.Module``."""

    def wrap(factory):
        BLOCK_KINDS[kind] = (attr, factory)
        return factory

    return wrap


def attention_clip(cfg: dict) -> tuple[float, float] | None:
    return (cfg["clip_zeta"], cfg["clip_gamma"]) if cfg["clipped_softmax"] else None


@register_block("ss2d", "mamba")
def _ss2d(cfg: dict, dim: int, kind_index: int) -> nn.Module:
    return SS2D(
        dim,
        d_state=cfg["ssm_d_state"],
        ssm_ratio=cfg["ssm_ratio"],
        dt_rank=cfg["ssm_dt_rank"],
        conv_bias=cfg["ssm_conv_bias"],
    )


@register_block("attn", "attn")
def _window_attention(cfg: dict, dim: int, kind_index: int) -> nn.Module:
    ws = cfg["window_size"]
    shift = 0 if kind_index % 2 == 0 else ws // 2  # every second attention block is shifted
    return WindowAttention(
        dim, cfg["num_heads"], ws, shift, impl=cfg["attention"], clip=attention_clip(cfg)
    )


class Block(nn.Module):
    """One pre-norm residual block with a named mixer, optional CAB branch and an FFN."""

    def __init__(self, kind: str, cfg: dict, dim: int, kind_index: int = 0) -> None:
        super().__init__()
        if kind not in BLOCK_KINDS:
            raise ValueError(f"unknown block kind {kind!r}; registered: {sorted(BLOCK_KINDS)}")
        attr, factory = BLOCK_KINDS[kind]
        self.kind, self.mixer_name = kind, attr
        self.norm1 = nn.LayerNorm(dim)
        setattr(self, attr, factory(cfg, dim, kind_index))
        self.conv_scale = cfg["conv_scale"]
        self.conv_block = (
            CAB(dim, cfg["compress_ratio"], cfg["squeeze_factor"]) if cfg["cab"] else None
        )
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = build_ffn(cfg["ffn"], dim, cfg["mlp_ratio"], cfg["dw_padding"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm1(x)
        y = x + getattr(self, self.mixer_name)(n)
        if self.conv_block is not None:
            y = y + self.conv_scale * self.conv_block(n.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return y + self.mlp(self.norm2(y))
