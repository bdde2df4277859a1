"""mamba_ssm's ``selective_scan_fn``, same signature and semantics, on this package's backends.

``selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
return_last_state=False, cu_seqlens=None)``: shapes as :mod:`contrast_sr.ops.scan.layout`
(u, delta, z (batch, dim, L); A (dim, N); B, C (dim, N), (batch, N, L) or (batch, groups, N, L)).

* Real A (every Mamba / VMamba layer): the dispatched backend (numba, triton, torch, chunked
  while exporting) scans in float32; numba runs this layout directly (its backward transposes
  the gradients for N > 1), the others scan channels-last copies (the layout copy and the cast
  are one pass). Then
  ``out = y * silu(z)`` in float32, cast once to u's dtype, as mamba_ssm's reference does.
  ``last_state`` (batch, dim, N), float32, comes from the closed form
  ``h_L = sum_t exp(A * sum_{s>t} delta_s) * delta_t * B_t * u_t`` (vectorised, chunked
  over L); its gradient is kept (mamba_ssm's CUDA kernel drops it).
* Complex A, or ``cu_seqlens`` (packed sequences): the sequential loop
  :func:`~contrast_sr.ops.scan.reference.selective_scan_ref`, exactly mamba_ssm's reference.

float64 inputs compute in float64 (mamba_ssm's reference would use float32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrast_sr.ops.scan.checks import check_real, compute_dtype
from contrast_sr.ops.scan.dispatch import selective_scan_mamba_layout
from contrast_sr.ops.scan.layout import (
    bc_pair_channels_last,
    channels_last,
    check_bc,
    check_mamba_layout,
)
from contrast_sr.ops.scan.reference import selective_scan_ref

_CHUNK_ELEMENTS = 1 << 22  # bound of the (batch, steps, dim, N) temporary of the last state


def last_state_channels_last(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
) -> torch.Tensor:
    """Final state h_L (batch, dim, N) of ``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t``.

    u, delta (batch, L, dim), delta already biased and softplus-ed, all in the compute dtype;
    A (dim, N); B (batch, L, groups, N). The decay from step t to the end is ``exp(A * S_t)``
    with ``S_t`` the sum of delta after t, accumulated from the end (no difference of sums).
    """
    batch, L, dim = u.shape
    groups, N = B.shape[2], B.shape[3]
    after = torch.cumsum(delta.flip(1), dim=1).flip(1)  # sum_{s >= t} delta_s
    after = F.pad(after[:, 1:], (0, 0, 0, 1))  # sum_{s > t}: shift by one, 0 at the end
    drive = delta * u
    h = u.new_zeros(batch, groups, dim // groups, N)
    step = max(1, _CHUNK_ELEMENTS // max(1, batch * dim * N))
    for start in range(0, L, step):
        part = slice(start, start + step)
        weight = torch.exp(after[:, part, :, None] * A) * drive[:, part, :, None]
        weight = weight.view(batch, -1, groups, dim // groups, N)
        h = h + (weight * B[:, part, :, None, :]).sum(1)
    return h.reshape(batch, dim, N)


def selective_scan_fn(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """mamba_ssm's ``selective_scan_fn``: returns out (batch, dim, L) in u's dtype, or
    ``(out, last_state)`` with ``return_last_state`` (last_state (batch, dim, N), float32, or
    complex for complex A). Errors are ArgumentError naming the argument."""
    if A.is_complex() or cu_seqlens is not None:
        return selective_scan_ref(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, cu_seqlens
        )
    check_real(u=u, delta=delta, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
    batch, dim, L, N = check_mamba_layout(u, delta, A, z)
    check_bc(B, "B", batch, dim, N, L)
    check_bc(C, "C", batch, dim, N, L)
    compute = compute_dtype(u)
    with torch.autocast(u.device.type, enabled=False):
        B_cl, C_cl = bc_pair_channels_last(B, C, batch, L, compute)
        y = selective_scan_mamba_layout(
            u, delta, A, B_cl, C_cl, D, delta_bias, delta_softplus, compute
        )  # (batch, dim, L), float32
        if z is not None:
            y = y * F.silu(z.to(compute))
        out = y.to(u.dtype)
        if not return_last_state:
            return out
        u_cl, delta_cl = channels_last(u, compute), channels_last(delta, compute)
        dt = delta_cl if delta_bias is None else delta_cl + delta_bias.to(compute)
        if delta_softplus:
            dt = F.softplus(dt)
        return out, last_state_channels_last(u_cl, dt, A.to(compute), B_cl)
