"""SS2D: VMamba-v2 2-D selective scan, configured as in Contrast ("v05_noz", GELU, "v2" init).

Channels-last throughout: the cross-scan builds (B, L, 4, C) sequences directly, the per-direction
projections are one matmul each on those rows with a block-diagonal weight, and the scan runs on
(B, L, 4C) with the four directions folded into the channel axis (row k*C + c, matching
``A_logs`` / ``Ds``). Traced or exported, the ops take their traceable path by themselves.
On the CPU, where the scan would run on the "numba" backend, all of that (cross-scan,
projections, scan, merge) is one fused op instead
(:func:`contrast_sr.ops.cross_selective_scan.cross_selective_scan`, same values).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from contrast_sr.models.blocks.conv_gelu import conv_gelu
from contrast_sr.models.blocks.linear import Linear
from contrast_sr.models.blocks.norm import LayerNorm
from contrast_sr.ops import (
    cross_merge_channels_last,
    cross_scan_channels_last,
    selective_scan_channels_last,
)
from contrast_sr.ops.cross_selective_scan import available as fused_available
from contrast_sr.ops.cross_selective_scan import cross_selective_scan
from contrast_sr.ops.scan import resolve_scan_backend
from contrast_sr.ops.scan.dispatch import notify_scan_observers

K = 4  # scan directions: row-major, column-major, and both reversed


def block_diagonal(weight: torch.Tensor) -> torch.Tensor:
    """(K, out, in) per-direction weights -> (K*in, K*out) block-diagonal matrix of the
    transposed blocks, so ``rows @ block_diagonal(weight)`` applies ``weight[k]`` to the k-th
    ``in``-slice of each (.., K*in) row: one GEMM on the channels-last rows, no per-direction
    copy of them. An einsum with the identity, so exactly the blocks and zeros (traceable)."""
    k, n_out, n_in = weight.shape
    eye = torch.eye(k, dtype=weight.dtype, device=weight.device)
    return torch.einsum("koi,kj->kijo", weight, eye).reshape(k * n_in, k * n_out)


class SS2D(nn.Module):
    """2-D selective scan. (B, H, W, C) -> (B, H, W, C).

    in_proj (no bias) -> depthwise 3x3 conv -> GELU -> cross-scan (4 directions) -> per
    direction x_proj (dt rank R, B, C) and dt_proj -> selective scan (N = ``d_state``) ->
    cross-merge (sum) -> LayerNorm -> out_proj (no bias). Parameters: 2C² + 8CR + 32C for N=1.
    """

    def __init__(
        self,
        dim: int,
        d_state: int = 1,
        ssm_ratio: float = 1.0,
        dt_rank: int | str = "auto",
        d_conv: int = 3,
        conv_bias: bool = True,
    ) -> None:
        super().__init__()
        d_inner = int(ssm_ratio * dim)
        rank = math.ceil(dim / 16) if dt_rank == "auto" else int(dt_rank)
        self.d_inner, self.d_state, self.dt_rank = d_inner, int(d_state), rank
        n = self.d_state
        self.in_proj = Linear(dim, d_inner, bias=False)
        self.conv2d = nn.Conv2d(
            d_inner, d_inner, d_conv, padding=(d_conv - 1) // 2, groups=d_inner, bias=conv_bias
        )
        self.act = nn.GELU()
        bound = d_inner**-0.5  # nn.Linear default init of each stacked projection
        self.x_proj_weight = nn.Parameter(
            torch.empty(K, rank + 2 * n, d_inner).uniform_(-bound, bound)
        )
        self.dt_projs_weight = nn.Parameter(torch.empty(K, d_inner, rank).uniform_(0.0, 0.1))
        self.dt_projs_bias = nn.Parameter(torch.empty(K, d_inner).uniform_(0.0, 0.1))
        self.A_logs = nn.Parameter(torch.zeros(K * d_inner, n))  # "v2" init: A = -1
        self.Ds = nn.Parameter(torch.ones(K * d_inner))
        self.out_norm = LayerNorm(d_inner)
        self.out_proj = Linear(d_inner, dim, bias=False)
        self.fused = True  # False: always the composed path (cross-scan, scan, merge)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C), plus ``residual`` if given (added by ``out_proj``)."""
        b, h, w, _ = x.shape
        x = self.in_proj(x)
        x = conv_gelu(self.conv2d, x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        if self.fused and resolve_scan_backend(x) == "numba" and fused_available(x):
            y = self._scan_fused(x.reshape(b, h * w, self.d_inner), h, w)
        else:
            y = self._scan(x)
        return self.out_proj(self.out_norm(y.view(b, h, w, self.d_inner)), residual)

    def _scan_fused(self, seq: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, L, D) row-major tokens -> merged scan output (B, L, D), one fused CPU op (the
        x projections, cross-scan, dt projection, scan and merge)."""
        A = -torch.exp(self.A_logs)
        b, L, d = seq.shape
        notify_scan_observers(seq.new_empty((b, L, K * d), device="meta"), A, self.Ds)
        return cross_selective_scan(
            seq, self.x_proj_weight, self.dt_projs_weight, self.dt_projs_bias, A, self.Ds, h, w
        )

    def _scan(self, x: torch.Tensor) -> torch.Tensor:
        """Cross-scan, projections, selective scan, merge: (B, H, W, D) -> (B, H, W, D)."""
        b, h, w, _ = x.shape
        xs = cross_scan_channels_last(x)  # (B, L, 4, D)
        seq = xs.reshape(b, h * w, K * self.d_inner)
        # per-direction projections: x_proj_weight (K, R+2N, D), dt_projs_weight (K, D, R)
        x_dbl = seq @ block_diagonal(self.x_proj_weight)  # (B, L, 4(R+2N))
        x_dbl = x_dbl.view(b, h * w, K, self.dt_rank + 2 * self.d_state)
        dt_low, bs, cs = x_dbl.split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt_rows = dt_low.reshape(b, h * w, K * self.dt_rank)
        dts = dt_rows @ block_diagonal(self.dt_projs_weight)  # (B, L, 4D)
        y = selective_scan_channels_last(
            seq,
            dts,
            -torch.exp(self.A_logs),
            bs.contiguous(),
            cs.contiguous(),
            self.Ds,
            delta_bias=self.dt_projs_bias.reshape(-1),
            delta_softplus=True,
        )
        return cross_merge_channels_last(y.view(b, h * w, K, self.d_inner), h, w)
