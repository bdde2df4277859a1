"""Masked segment sums: the overflow-free building block of every chunked (SSD-style) scan.

``segsum(x, dim)[..., t, s, ...] = sum_{s < i <= t} x_i`` for s <= t and ``-inf`` above the
diagonal, so ``exp(segsum(log_decay))`` is the lower-triangular matrix of decay products between
two steps. It is computed as a cumulative sum of masked copies, never as a difference of two
cumulative sums: with log-decays <= 0 every entry is <= 0 and ``exp`` can neither overflow nor
lose the small products to cancellation. Loop-free, so it traces and exports (ONNX CumSum).
"""

from __future__ import annotations

import math

import torch


def segsum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Segment sums along ``dim`` (size T); the source axis is inserted right after ``dim``.

    x (..., T, ...) -> (..., T, T, ...) with out[..., t, s, ...] = sum_{s<i<=t} x_i (0 on the
    diagonal, -inf for s > t).
    """
    dim = dim % x.dim()
    T = x.shape[dim]
    idx = torch.arange(T, device=x.device)
    # rep[..., i, s, ...] = x_i where i > s, else 0; a cumsum over i gives sum_{s<i<=t}.
    rep = x.unsqueeze(dim + 1).expand(*x.shape[: dim + 1], T, *x.shape[dim + 1 :])
    shape = [1] * rep.dim()
    shape[dim], shape[dim + 1] = T, T
    strict = (idx[:, None] > idx[None, :]).view(shape)
    seg = torch.cumsum(rep.masked_fill(~strict, 0.0), dim=dim)
    causal = (idx[:, None] >= idx[None, :]).view(shape)
    return seg.masked_fill(~causal, -math.inf)


__all__ = ["segsum"]
