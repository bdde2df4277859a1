"""Feed-forward variants. Every FFN maps channels-last (B, H, W, C) -> (B, H, W, C).

Hidden width is ``mlp_ratio * C`` (2C in every original config). ``dw_padding`` selects the
padding of the depthwise 3x3 convs: ``"zeros"`` (original) or ``"reflect"`` (v1 option).
``forward(x, residual)`` returns ``residual + FFN(x)`` when ``residual`` is given (the block's
skip connection, added by the last linear layer or inside the fused FFN).

| name            | structure                                                  | parameters   |
|-----------------|------------------------------------------------------------|--------------|
| mlp             | Linear C->2C, GELU, Linear 2C->C                           | 4C² + 3C     |
| sgfn            | Linear C->2C, GELU, a ⊙ DW(LN(b)), Linear C->C  (DAT)      | 3C² + 15C    |
| gcffn           | 1x1 C->4C, x1 ⊙ GELU(DW(x2)), 1x1 2C->C  (GEGLU)           | 6C² + 25C    |
| gcffn_grouped   | gcffn with a groups=2 first 1x1 conv                       | 4C² + 25C    |
| convffn         | 1x1 C->2C, x + DW(x), GELU, 1x1 2C->C  ("no_gated")        | 4C² + 23C    |
| convffn_plain   | 1x1 C->2C, GELU, 1x1 2C->C                                 | 4C² + 3C     |
"""

from __future__ import annotations

import torch
from torch import nn

from contrast_sr.models.blocks.conv_gelu import conv_gelu
from contrast_sr.models.blocks.linear import Linear
from contrast_sr.models.blocks.norm import LayerNorm
from contrast_sr.ops.gated_dwconv import PADDINGS as GATE_PADDINGS
from contrast_sr.ops.gated_dwconv import available as gated_available
from contrast_sr.ops.gated_dwconv import gated_dwconv3x3_gelu
from contrast_sr.ops.gated_ffn import available as ffn_available
from contrast_sr.ops.gated_ffn import gated_conv_ffn
from contrast_sr.ops.linear import linear


def _to_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _to_nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _pointwise(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A 1x1 conv's (weight (out, in), bias) for ``F.linear`` on channels-last tokens."""
    return conv.weight.view(conv.out_channels, -1), conv.bias


def _dwconv(channels: int, padding_mode: str) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, padding_mode=padding_mode)


class Mlp(nn.Module):
    """Linear -> GELU -> Linear (per token)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)), residual)


class SpatialGate(nn.Module):
    """DAT spatial gate: (a, b) -> a * DWConv(LN(b)); input (B, H, W, 2C') -> (B, H, W, C')."""

    def __init__(self, dim: int, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.norm = LayerNorm(dim)
        self.conv = _dwconv(dim, padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=-1)
        return a * _to_nhwc(self.conv(_to_nchw(self.norm(b))))


class SGFN(nn.Module):
    """Spatial-gate FFN of the final Contrast model (fc1, GELU, spatial gate, fc2)."""

    def __init__(self, dim: int, hidden: int, dw_padding: str = "zeros") -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.act = nn.GELU()
        self.sg = SpatialGate(hidden // 2, dw_padding)
        self.fc2 = Linear(hidden // 2, dim)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc2(self.sg(self.act(self.fc1(x))), residual)


class GatedConvFFN(nn.Module):
    """GEGLU conv FFN: 1x1 C->2H, split (x1, x2), x1 * GELU(DWConv(x2)), 1x1 H->C."""

    def __init__(
        self, dim: int, hidden: int, dw_padding: str = "zeros", fc1_groups: int = 1
    ) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, 2 * hidden, 1, groups=fc1_groups)
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.dwconv = _dwconv(hidden, dw_padding)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if self.fc1.groups != 1:
            x1, x2 = self.fc1(_to_nchw(x)).chunk(2, dim=1)
            y = _to_nhwc(self.fc2(x1 * conv_gelu(self.dwconv, x2)))
            return y if residual is None else residual + y
        # the 1x1 convs as per-token Linears on the channels-last map (the same products; no
        # NCHW slow-path convolution), x1 and x2 as two GEMMs so each is a contiguous map and
        # the depthwise conv runs on a channels-last tensor
        hidden = self.fc2.in_channels
        w1, b1 = _pointwise(self.fc1)
        dw = self.dwconv
        w2, b2 = _pointwise(self.fc2)
        if ffn_available(x, x.shape[-1], hidden, dw.padding_mode, residual):  # one pass
            return gated_conv_ffn(x, w1, b1, dw.weight, dw.bias, w2, b2, dw.padding_mode, residual)
        if gated_available(x) and dw.padding_mode in GATE_PADDINGS:  # CPU inference
            h1, h2 = linear(x, w1[:hidden]), linear(x, w1[hidden:])
            gate = gated_dwconv3x3_gelu(h1, h2, b1, dw.weight, dw.bias, dw.padding_mode)
            return linear(gate, w2, b2, residual)
        x1 = linear(x, w1[:hidden], None if b1 is None else b1[:hidden])
        x2 = linear(x, w1[hidden:], None if b1 is None else b1[hidden:])
        gate = _to_nhwc(conv_gelu(self.dwconv, _to_nchw(x2)))
        return linear(x1 * gate, w2, b2, residual)


class ConvFFN(nn.Module):
    """Conv FFN: 1x1 C->H, x + DWConv(x) (if ``dw``), GELU, 1x1 H->C."""

    def __init__(self, dim: int, hidden: int, dw_padding: str = "zeros", dw: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.dwconv = _dwconv(hidden, dw_padding) if dw else None
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        x = linear(x, *_pointwise(self.fc1))  # channels-last (B, H, W, hidden)
        if self.dwconv is not None:
            x = x + _to_nhwc(self.dwconv(_to_nchw(x)))
        return linear(self.act(x), *_pointwise(self.fc2), residual)


FFN_KINDS = ("mlp", "sgfn", "gcffn", "gcffn_grouped", "convffn", "convffn_plain")


def build_ffn(kind: str, dim: int, mlp_ratio: float = 2.0, dw_padding: str = "zeros") -> nn.Module:
    """FFN of type ``kind`` (see the table above) with hidden width ``int(dim * mlp_ratio)``."""
    hidden = int(dim * mlp_ratio)
    if kind == "mlp":
        return Mlp(dim, hidden)
    if kind == "sgfn":
        return SGFN(dim, hidden, dw_padding=dw_padding)
    if kind == "gcffn":
        return GatedConvFFN(dim, hidden, dw_padding=dw_padding)
    if kind == "gcffn_grouped":
        return GatedConvFFN(dim, hidden, dw_padding=dw_padding, fc1_groups=2)
    if kind == "convffn":
        return ConvFFN(dim, hidden, dw_padding=dw_padding)
    if kind == "convffn_plain":
        return ConvFFN(dim, hidden, dw=False)
    raise ValueError(f"unknown ffn {kind!r}; choose from {', '.join(FFN_KINDS)}")
