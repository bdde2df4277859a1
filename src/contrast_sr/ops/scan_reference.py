"""Sequential selective scan: the slow, obviously correct reference for every fast path.

Semantics and layout of mamba_ssm's ``selective_scan_fn``:
    u, delta: (batch, dim, L); A: (dim, N); B, C: (batch, groups, N, L); D, delta_bias: (dim,)
    delta <- softplus(delta + delta_bias) if delta_softplus
    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = sum_n C_t[n] * h_t[n] + D * u_t
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """Python loop over L (with ``unbind``, so autograd stays O(L)). Returns y (batch, dim, L)."""
    dtype_in = u.dtype
    compute = torch.float64 if u.dtype == torch.float64 else torch.float32
    u, delta, A, B, C = (t.to(compute) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute)[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, _ = u.shape
    groups = B.shape[1]
    B = B.repeat_interleave(dim // groups, dim=1)  # (batch, dim, N, L)
    C = C.repeat_interleave(dim // groups, dim=1)
    decay = torch.exp(delta.unsqueeze(2) * A[None, :, :, None])  # (batch, dim, N, L)
    drive = (delta * u).unsqueeze(2) * B
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    for a_t, x_t, c_t in zip(decay.unbind(-1), drive.unbind(-1), C.unbind(-1), strict=True):
        h = a_t * h + x_t
        ys.append((h * c_t).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + D.to(compute)[None, :, None] * u
    return y.to(dtype_in)
