"""The "reference" scan backend: a sequential loop, the slow, obviously correct reference.

:func:`selective_scan_ref` has the semantics and layout of mamba_ssm's ``selective_scan_fn``:
    u, delta: (batch, dim, L); A: (dim, N); B, C: (batch, groups, N, L); D, delta_bias: (dim,)
    delta <- softplus(delta + delta_bias) if delta_softplus
    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = sum_n C_t[n] * h_t[n] + D * u_t
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrast_sr.ops.scan.checks import check_scan_args, compute_dtype


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
    compute = compute_dtype(u)
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


def scan_reference_channels_last(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """The "reference" backend in the channels-last layout (u, delta (b, L, dim);
    B, C (b, L, groups, N)): :func:`selective_scan_ref` between layout transposes."""
    check_scan_args(u, delta, A, B, C, D, delta_bias)
    with torch.autocast(u.device.type, enabled=False):
        y = selective_scan_ref(
            u.transpose(1, 2),
            delta.transpose(1, 2),
            A,
            B.permute(0, 2, 3, 1),
            C.permute(0, 2, 3, 1),
            D,
            delta_bias,
            delta_softplus,
        )
    return y.transpose(1, 2).contiguous()
