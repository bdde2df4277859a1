"""The "reference" scan backend: a sequential loop, the slow, obviously correct reference.

:func:`selective_scan_ref` has the signature and semantics of mamba_ssm's ``selective_scan_ref``
(mamba layout, see :mod:`contrast_sr.ops.scan.layout`)::

    delta <- softplus(delta + delta_bias) if delta_softplus
    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t        (h_0 = 0; reset at cu_seqlens)
    y_t = sum_n C_t[n] * h_t[n] + D * u_t;   out = y * silu(z) if z is given

For complex A the state is complex and ``y_t = 2 Re(sum_n C_t[n] h_t[n])``; a variable B or C is
then given as real pairs along L, (..., N, 2L) (``view_as_complex``), or as a complex tensor.
It computes in float32 (float64 for float64 u; complex64 / complex128 for complex A) and casts
``out`` to u's dtype; ``last_state`` stays in the compute dtype.
:func:`scan_reference_channels_last` is the backend (channels-last, real inputs only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrast_sr.errors import ArgumentError
from contrast_sr.ops.scan.checks import check_scan_args, compute_dtype
from contrast_sr.ops.scan.layout import check_bc, check_mamba_layout


def _complex_dtype(real: torch.dtype) -> torch.dtype:
    return torch.complex128 if real == torch.float64 else torch.complex64


def _state_input(
    t: torch.Tensor, name: str, dims: tuple[int, int, int, int], work: torch.dtype
) -> torch.Tensor:
    """B or C as a tensor broadcastable to (batch, dim, N, L), in ``work`` dtype."""
    batch, dim, L, N = dims
    if t.dim() >= 3 and work.is_complex and not t.is_complex():  # real pairs along L
        check_bc(t, name, batch, dim, N, 2 * L)
        real = torch.float64 if work == torch.complex128 else torch.float32
        pairs = t.to(real).reshape(*t.shape[:-1], L, 2)
        t = torch.view_as_complex(pairs.contiguous())
    else:
        check_bc(t, name, batch, dim, N, L)
        if t.is_complex() and not work.is_complex:
            raise ArgumentError(
                name, "is complex while A is real (the imaginary part would be lost)"
            )
    t = t.to(work)
    if t.dim() == 2:  # constant (dim, N)
        return t[None, :, :, None]
    if t.dim() == 3:  # (batch, N, L): one group
        return t[:, None]
    return t.repeat_interleave(dim // t.shape[1], dim=1)  # (batch, groups, N, L) -> per channel


def selective_scan_ref(
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
    """Python loop over L (``unbind``, so autograd stays O(L)). u, delta, z (batch, dim, L);
    A (dim, N); B, C (dim, N), (batch, N, L) or (batch, groups, N, L); D, delta_bias (dim,);
    ``cu_seqlens`` (int, starts of packed sequences, as mamba_ssm). Returns out (batch, dim, L),
    or (out, last_state (batch, dim, N)) with ``return_last_state``."""
    dims = check_mamba_layout(u, delta, A, z)
    batch, dim, L, N = dims
    dtype_in = u.dtype
    real = compute_dtype(u)
    work = _complex_dtype(real) if A.is_complex() else real
    u, delta = u.to(real), delta.to(real)
    if delta_bias is not None:
        delta = delta + delta_bias.to(real)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    Bx, Cx = _state_input(B, "B", dims, work), _state_input(C, "C", dims, work)
    decay = torch.exp(delta.unsqueeze(2) * A.to(work)[None, :, :, None])  # (batch, dim, N, L)
    drive = (delta * u).unsqueeze(2) * Bx
    Cx = Cx.expand(batch, dim, N, L)
    restart = set(cu_seqlens[1:-1].tolist()) if cu_seqlens is not None else set()
    h = torch.zeros(batch, dim, N, dtype=work, device=u.device)
    ys = []
    steps = zip(decay.unbind(-1), drive.unbind(-1), Cx.unbind(-1), strict=True)
    for t, (a_t, x_t, c_t) in enumerate(steps):
        h = x_t if t in restart else a_t * h + x_t
        ys.append((h * c_t).sum(-1))
    y = torch.stack(ys, dim=-1) if ys else u.new_zeros(batch, dim, 0, dtype=work)
    if y.is_complex():
        y = 2 * y.real
    if D is not None:
        y = y + D.to(real)[None, :, None] * u
    if z is not None:
        y = y * F.silu(z.to(real))
    out = y.to(dtype_in)
    return (out, h) if return_last_state else out


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
            delta_bias=delta_bias,
            delta_softplus=delta_softplus,
        )
    return y.transpose(1, 2).contiguous()
