"""Swin/HAT window self-attention (shifted windows, relative-position bias, region mask)."""

from __future__ import annotations

import torch
from torch import nn

from contrast_sr.models.blocks.attention import window_attention
from contrast_sr.models.blocks.attention_backend import AttentionGeometry
from contrast_sr.models.blocks.linear import Linear
from contrast_sr.models.blocks.windows import (
    relative_position_index_sa,
    shift_mask,
    window_partition,
    window_reverse,
)
from contrast_sr.ops.tracing import is_exporting


class WindowAttention(nn.Module):
    """(S)W-MSA on a channels-last map (B, H, W, C) with H, W multiples of ``window_size``.

    qkv Linear (bias) -> per-window multi-head attention with a learned ((2ws-1)², heads)
    relative-position table (+ the -100 region mask when shifted) -> proj Linear (bias).
    ``shift`` > 0 rolls the map by -shift before and +shift after (HAT/Swin).
    Parameters: 4C² + 4C + (2ws-1)²·heads.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift: int = 0,
        impl: str = "sdpa",
        clip: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.dim, self.num_heads, self.ws, self.shift = dim, num_heads, window_size, shift
        self.impl, self.clip = impl, clip
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer(
            "relative_position_index", relative_position_index_sa(window_size), persistent=False
        )
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)
        self._mask_cache: dict[tuple, torch.Tensor] = {}

    def position_bias(self) -> torch.Tensor:
        """(heads, ws², ws²) bias from the table."""
        n = self.ws * self.ws
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1)

    def attention_geometry(self) -> AttentionGeometry:
        """Sizes that decide the SDPA kernel (the shift mask makes the bias per window)."""
        n = self.ws * self.ws
        bias = "window" if self.shift else "head"
        return AttentionGeometry(
            self.num_heads, self.dim // self.num_heads, n, n, bias, True, self.impl, bool(self.clip)
        )

    def _mask(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        if is_exporting():  # sizes are graph values here: build it in the graph, never cache
            return shift_mask(h, w, self.ws, self.shift, device)
        key = (h, w, str(device))
        if key not in self._mask_cache:
            self._mask_cache = {key: shift_mask(h, w, self.ws, self.shift, device)}
        return self._mask_cache[key]

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C), plus ``residual`` if given."""
        b, h, w, c = x.shape
        ws, nh = self.ws, self.num_heads
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = window_partition(x, ws)  # (B, nW, n, C)
        nw, n = windows.shape[1], ws * ws
        qkv = self.qkv(windows).view(b, nw, n, 3, nh, c // nh).permute(3, 0, 1, 4, 2, 5)
        bias = self.position_bias()
        if self.shift:
            bias = bias.unsqueeze(0) + self._mask(h, w, x.device).unsqueeze(1)  # (nW, h, n, n)
        out = window_attention(qkv[0], qkv[1], qkv[2], bias, impl=self.impl, clip=self.clip)
        out = self.proj(out.transpose(2, 3).reshape(b, nw, n, c))
        x = window_reverse(out, ws, h, w)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        return x if residual is None else residual + x
