"""OCAB: HAT's overlapping cross-attention block, with learned / no / dynamic position bias."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from contrast_sr.models.blocks.attention import window_attention
from contrast_sr.models.blocks.attention_backend import AttentionGeometry
from contrast_sr.models.blocks.ffn import build_ffn
from contrast_sr.models.blocks.linear import Linear
from contrast_sr.models.blocks.norm import LayerNorm
from contrast_sr.models.blocks.windows import (
    relative_position_index_oca,
    window_partition,
    window_reverse,
)
from contrast_sr.ops.fused_attention import available as fused_attention_available
from contrast_sr.ops.fused_attention import fused_window_attention
from contrast_sr.ops.overlap_attention import available as overlap_attention_available
from contrast_sr.ops.overlap_attention import overlap_attention
from contrast_sr.ops.tracing import is_capturing


def relative_coords_table(m: int) -> torch.Tensor:
    """(1, 2m-1, 2m-1, 2) log-spaced offset grid fed to the dynamic position-bias MLP."""
    r = torch.arange(-(m - 1), m, dtype=torch.float32)
    table = torch.stack(torch.meshgrid(r, r, indexing="ij")).permute(1, 2, 0).unsqueeze(0)
    table = table / (m - 1) * 8
    return torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0


class DynamicPosBias(nn.Module):
    """CrossFormer-style bias MLP (non-residual): Linear(2,p), 3x [LN, ReLU, Linear]."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        p = dim // 4
        self.pos_proj = nn.Linear(2, p)
        self.pos1 = nn.Sequential(nn.LayerNorm(p), nn.ReLU(inplace=True), nn.Linear(p, p))
        self.pos2 = nn.Sequential(nn.LayerNorm(p), nn.ReLU(inplace=True), nn.Linear(p, p))
        self.pos3 = nn.Sequential(nn.LayerNorm(p), nn.ReLU(inplace=True), nn.Linear(p, num_heads))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.pos3(self.pos2(self.pos1(self.pos_proj(coords))))


class OCAB(nn.Module):
    """Overlapping cross-attention + FFN on a channels-last map (B, H, W, C) -> (B, H, W, C).

    Queries come from non-overlapping ws x ws windows, keys/values from the zero-padded
    ows x ows window centred on each (ows = ws + floor(ws * overlap_ratio)); the padded
    positions are not masked (as in HAT). ``bias``: ``"table"`` (learned (T, heads) table),
    ``"none"``, or ``"dynamic"`` (MLP over a coordinate table), all indexed with HAT's
    wrapping index so original weights load bit-exactly. Parameters: 4C² + 8C + FFN + bias.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        overlap_ratio: float = 0.5,
        bias: str = "none",
        ffn: str = "mlp",
        mlp_ratio: float = 2.0,
        dw_padding: str = "zeros",
        impl: str = "sdpa",
        clip: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        if bias not in ("table", "none", "dynamic"):
            raise ValueError(f"unknown OCAB bias {bias!r}")
        self.dim, self.num_heads, self.ws = dim, num_heads, window_size
        self.ows = window_size + int(overlap_ratio * window_size)
        self.bias_kind, self.impl, self.clip = bias, impl, clip
        span = window_size + self.ows - 1  # table side; T = span²
        self.norm1 = LayerNorm(dim)
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)
        self.norm2 = LayerNorm(dim)
        self.mlp = build_ffn(ffn, dim, mlp_ratio, dw_padding)
        if bias == "table":
            self.relative_position_bias_table = nn.Parameter(torch.zeros(span * span, num_heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        elif bias == "dynamic":
            self.cpb_mlp = DynamicPosBias(dim, num_heads)
            table = relative_coords_table((window_size + self.ows) // 2)
            self.register_buffer("relative_coords_table", table, persistent=False)
        if bias != "none":
            index = relative_position_index_oca(window_size, self.ows)
            self.register_buffer("relative_position_index", index, persistent=False)

    def position_bias(self) -> torch.Tensor | None:
        """(heads, ws², ows²) additive bias, or None."""
        if self.bias_kind == "none":
            return None
        if self.bias_kind == "table":
            table = self.relative_position_bias_table
        else:
            table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        bias = table[self.relative_position_index.view(-1)]
        return bias.view(self.ws * self.ws, self.ows * self.ows, -1).permute(2, 0, 1)

    def attention_geometry(self) -> AttentionGeometry:
        """Sizes that decide the SDPA kernel: no mask at all when ``bias == "none"``."""
        bias = "none" if self.bias_kind == "none" else "head"
        return AttentionGeometry(
            self.num_heads,
            self.dim // self.num_heads,
            self.ws * self.ws,
            self.ows * self.ows,
            bias,
            bias != "none",
            self.impl,
            bool(self.clip),
            "numba" if fused_attention_available(torch.zeros(1)) else None,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        qkv = self.qkv(self.norm1(x))
        if is_capturing():
            out = self._attention_traceable(qkv)
        elif self.impl == "sdpa" and self.clip is None and overlap_attention_available(qkv):
            out = overlap_attention(qkv, self.num_heads, self.ws, self.ows, self.position_bias())
        else:
            out = self._attention(qkv)
        x = self.proj(out, residual=shortcut)
        return self.mlp(self.norm2(x), residual=x)

    def _attention(self, qkv: torch.Tensor) -> torch.Tensor:
        """Attention output map (B, H, W, C) from qkv (B, H, W, 3C): one copy each for the
        query windows, the zero-padded map and its key/value windows (strided views of it)
        and the output, no im2col; on the CPU the fused attention with its own backward
        (:mod:`contrast_sr.ops.fused_attention`), elsewhere SDPA."""
        b, h, w, c3 = qkv.shape
        c, ws, ows, nh = c3 // 3, self.ws, self.ows, self.num_heads
        d, nwh, nww, pad = c // nh, h // ws, w // ws, (ows - ws) // 2
        q = qkv[..., :c].reshape(b, nwh, ws, nww, ws, nh, d).permute(0, 1, 3, 5, 2, 4, 6)
        q = q.reshape(b, nwh * nww, nh, ws * ws, d)
        kv = F.pad(qkv[..., c:], (0, 0, pad, pad, pad, pad)).unfold(1, ows, ws).unfold(2, ows, ws)
        kv = kv.reshape(b, nwh, nww, 2, nh, d, ows, ows).permute(3, 0, 1, 2, 4, 6, 7, 5)
        kv = kv.reshape(2, b, nwh * nww, nh, ows * ows, d)  # (2, B, nW, h, m, d)
        if self.impl == "sdpa" and self.clip is None and fused_attention_available(q):
            out = fused_window_attention(q, kv[0], kv[1], self.position_bias())  # CPU training
        else:
            out = window_attention(q, kv[0], kv[1], self.position_bias(), self.impl, self.clip)
        out = out.view(b, nwh, nww, nh, ws, ws, d).permute(0, 1, 4, 2, 5, 3, 6)
        return out.reshape(b, h, w, c)

    def _attention_traceable(self, qkv: torch.Tensor) -> torch.Tensor:
        """:meth:`_attention` as window partition, ``F.unfold`` and window reverse (the form
        traced and exported graphs take)."""
        b, h, w, c3 = qkv.shape
        c, ws, ows, nh = c3 // 3, self.ws, self.ows, self.num_heads
        d = c // nh
        q = window_partition(qkv[..., :c], ws)  # (B, nW, ws², C)
        nw = q.shape[1]
        q = q.view(b, nw, ws * ws, nh, d).transpose(2, 3)
        kv = F.unfold(qkv[..., c:].permute(0, 3, 1, 2), ows, stride=ws, padding=(ows - ws) // 2)
        kv = kv.view(b, 2, nh, d, ows * ows, nw).permute(1, 0, 5, 2, 4, 3)  # (2, B, nW, h, m, d)
        out = window_attention(q, kv[0], kv[1], self.position_bias(), self.impl, self.clip)
        out = out.transpose(2, 3).reshape(b, nw, ws * ws, c)
        return window_reverse(out, ws, h, w)
