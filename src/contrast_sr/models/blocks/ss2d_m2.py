"""SS2D with a Mamba-2 (SSD) core: VMamba's "m0" design, configured like Contrast's SS2D.

Same frame as :class:`~contrast_sr.models.blocks.ss2d.SS2D` (in_proj, depthwise 3x3 conv, GELU,
4-direction cross-scan, cross-merge, LayerNorm, out_proj); the scan differs. Per direction the
d_inner channels form ``heads`` heads of ``d_inner / heads`` channels, each with ONE scalar decay
A and step size dt (projected directly by ``x_proj``, no low-rank dt_proj), and a (head_dim x N)
matrix state; B and C (N values each) are shared by the heads of a group (``groups`` per
direction, 1 by default as in VMamba). ``gated`` adds VMamba's z branch (in_proj twice as wide,
output multiplied by GELU(z)).

Parameters (ssm_ratio 1, d_inner = C, R heads and G groups per direction, conv bias):
2C² + 4CR + 8GNC + 16C + 8R (+ C² when gated).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from contrast_sr.models.blocks.conv_gelu import conv_gelu
from contrast_sr.models.blocks.linear import Linear
from contrast_sr.models.blocks.norm import LayerNorm
from contrast_sr.ops import cross_merge_channels_last, cross_scan_channels_last
from contrast_sr.ops.ssd import DEFAULT_CHUNK, ssd_scan

K = 4  # scan directions: row-major, column-major, and both reversed


class SS2DMamba2(nn.Module):
    """2-D SSD scan block. (B, H, W, C) -> (B, H, W, C)."""

    def __init__(
        self,
        dim: int,
        d_state: int = 4,
        heads: int | str = "auto",
        groups: int = 1,
        chunk: int = DEFAULT_CHUNK,
        ssm_ratio: float = 1.0,
        d_conv: int = 3,
        conv_bias: bool = True,
        gated: bool = False,
    ) -> None:
        super().__init__()
        d_inner = int(ssm_ratio * dim)
        n_heads = math.ceil(dim / 16) if heads == "auto" else int(heads)
        if d_inner % n_heads or n_heads % groups:
            raise ValueError(
                f"d_inner ({d_inner}) must be divisible by heads ({n_heads}) and heads by "
                f"groups ({groups})"
            )
        self.d_inner, self.d_state, self.heads, self.groups = d_inner, d_state, n_heads, groups
        self.chunk, self.gated = int(chunk), bool(gated)
        self.in_proj = Linear(dim, d_inner * (2 if gated else 1), bias=False)
        self.conv2d = nn.Conv2d(
            d_inner, d_inner, d_conv, padding=(d_conv - 1) // 2, groups=d_inner, bias=conv_bias
        )
        self.act = nn.GELU()
        rows = n_heads + 2 * groups * d_state  # dt per head, then B and C per group
        bound = d_inner**-0.5  # nn.Linear's default init of each stacked projection
        self.x_proj_weight = nn.Parameter(torch.empty(K, rows, d_inner).uniform_(-bound, bound))
        self.dt_projs_bias = nn.Parameter(0.1 * torch.rand(K, n_heads))
        self.A_logs = nn.Parameter(torch.zeros(K, n_heads))  # "v2" init: A = -1
        self.Ds = nn.Parameter(torch.ones(K, n_heads, d_inner // n_heads))
        self.out_norm = LayerNorm(d_inner)
        self.out_proj = Linear(d_inner, dim, bias=False)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C), plus ``residual`` if given (added by ``out_proj``)."""
        b, h, w, _ = x.shape
        L, R, G, N = h * w, self.heads, self.groups, self.d_state
        x = self.in_proj(x)
        z = None
        if self.gated:
            x, z = x.chunk(2, dim=-1)
        x = conv_gelu(self.conv2d, x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        xs = cross_scan_channels_last(x)  # (B, L, 4, D)
        x_dbl = torch.einsum("blkd,krd->blkr", xs, self.x_proj_weight)
        dts, bs, cs = x_dbl.split([R, G * N, G * N], dim=-1)
        y = ssd_scan(
            xs.reshape(b, L, K * R, self.d_inner // R),
            dts.reshape(b, L, K * R),
            -torch.exp(self.A_logs.reshape(-1)),
            bs.reshape(b, L, K * G, N),
            cs.reshape(b, L, K * G, N),
            self.Ds.reshape(K * R, -1),
            dt_bias=self.dt_projs_bias.reshape(-1),
            dt_softplus=True,
            chunk=self.chunk,
        )
        y = cross_merge_channels_last(y.reshape(b, L, K, self.d_inner), h, w)
        y = self.out_norm(y)
        if z is not None:
            y = y * self.act(z)
        return self.out_proj(y, residual)
