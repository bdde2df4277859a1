"""SS2D's cross-scan, per-direction dt projection, selective scan and merge as one fused CPU op.

:func:`cross_selective_scan` computes, for a map of h x w tokens x (b, L, D) in row-major
order and the per-token projections xdbl (b, L, 4, R + 2N) of each direction (dt_low, B, C),

    out[s] = sum_k scan_k(x, delta_k, A_k, B_k, C_k, D_k)[t_k(s)],
    delta_k = softplus(dt_weight[k] @ dt_low_k + dt_bias[k])

where direction k visits the tokens in the order of :func:`contrast_sr.ops.cross_permutations`
(row-major, column-major and both reversed) and ``t_k(s)`` is the step at which it visits token s.
It is exactly ``cross_merge_channels_last(selective_scan_channels_last(cross_scan(x), ...))``
as SS2D composes it, but the numba kernels (:mod:`contrast_sr.ops.cross_selective_scan_kernels`)
walk each direction's order in place: no gathered copy of x (4x its size), of delta (b, L, 4D)
or of B and C, no merge gather; delta is computed inside from R numbers per token.

Gradients: a hand-written backward (states recomputed from checkpoints every 64 steps, as in the
"numba" scan backend) for x, xdbl, dt_weight, dt_bias, A and Ds.
:func:`available` says when it can run: numba installed, a float32/bf16/fp16 CPU tensor, not
inside a trace, export or ``torch.compile``.
"""

from __future__ import annotations

import torch

from contrast_sr.ops.linear import linear
from contrast_sr.ops.scan.numba_cpu import checkpoint_every, numba, numba_threads
from contrast_sr.ops.tracing import detached_unless_grad, is_capturing

if numba is not None:
    from contrast_sr.ops.cross_selective_scan_kernels import backward_kernel, forward_kernel

K = 4  # directions


def available(x: torch.Tensor) -> bool:
    """Whether :func:`cross_selective_scan` can run on ``x``."""
    return (
        numba is not None
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16, torch.float16)
        and not is_capturing()
    )


def plan(b: int, dim: int, threads: int) -> tuple[int, int]:
    """(channel tile, parts) of the work split: 2 parts (one orientation each) or 4 (one
    direction each) when that feeds more threads, then channel tiles of 16-lane multiples until
    every thread has a job. Wider jobs amortise the per-step cost, so no more jobs than needed."""
    parts = 4 if b * 2 < threads else 2
    tile = dim
    if b * parts < threads and dim > 16:
        tiles = -(-threads // (b * parts))
        tile = min(dim, 16 * -(-dim // (16 * tiles)))
    return tile, parts


def _flat(t: torch.Tensor):
    return t.detach().contiguous().view(-1).numpy()


def _orientation_sums(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(b, parts, L, D) per-part maps -> the row-major and the column-major orientation's sum."""
    if t.shape[1] == 2:
        return t[:, 0], t[:, 1]
    return t[:, 0] + t[:, 2], t[:, 1] + t[:, 3]


class _CrossSelectiveScanFn(torch.autograd.Function):
    """(x, xT, z0, z1, dt_weight, dt_bias, A, Ds) -> (b, parts, L, D) per-part outputs, each in
    its orientation's token order (layouts in :mod:`.cross_selective_scan_kernels`)."""

    @staticmethod
    def forward(ctx, x, xT, z0, z1, dt_weight, dt_bias, A, Ds):
        b, L, D = x.shape
        R, N = dt_weight.shape[2], A.shape[1]
        f32 = torch.float32
        x32, xT32 = x.to(f32).contiguous(), xT.to(f32).contiguous()
        z0, z1 = z0.to(f32).contiguous(), z1.to(f32).contiguous()
        WT = dt_weight.to(f32).transpose(1, 2).contiguous()  # (K, R, D)
        bias = dt_bias.to(f32).reshape(-1).contiguous()
        At = A.to(f32).t().contiguous()  # (N, K*D)
        D32 = Ds.to(f32).contiguous()
        save = any(ctx.needs_input_grad)
        Kc = checkpoint_every(N)
        S = torch.empty(b, K, -(-L // Kc), N, D) if save else torch.empty(0)
        dt = torch.empty(b, 2, L, 2, D) if save else torch.empty(0)
        tile, parts = plan(b, D, torch.get_num_threads())
        out = torch.empty(b, parts, L, D)
        with numba_threads():
            forward_kernel(
                _flat(x32), _flat(xT32), _flat(z0), _flat(z1), _flat(WT), _flat(bias),
                _flat(At), _flat(D32), _flat(out), _flat(dt), _flat(S), b, L, D, R, N, Kc,
                tile, parts,
            )  # fmt: skip
        if save:
            ctx.save_for_backward(x32, xT32, z0, z1, WT, dt, At, D32, S)
        ctx.tile = tile
        ctx.dtypes = (x.dtype, z0.dtype)
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, gout):
        x, xT, z0, z1, WT, dt, At, D32, S = ctx.saved_tensors
        b, L, D = x.shape
        R, N, P = WT.shape[1], At.shape[0], z0.shape[3]
        tile, parts = ctx.tile, gout.shape[1]
        nt = -(-D // tile)
        gout = gout.to(torch.float32).contiguous()
        gx = torch.empty(b, parts, L, D)
        gz0, gz1 = torch.empty(b, nt, L, 2, P), torch.empty(b, nt, L, 2, P)
        gW, gA = torch.empty(b, K, R, D), torch.empty(b, N, K * D)
        gb, gD = torch.empty(b, K * D), torch.empty(b, K * D)
        with numba_threads():
            backward_kernel(
                _flat(x), _flat(xT), _flat(z0), _flat(z1), _flat(WT), _flat(dt), _flat(At),
                _flat(D32), _flat(gout), _flat(S), b, L, D, R, N, checkpoint_every(N), tile,
                parts, _flat(gx), _flat(gz0), _flat(gz1), _flat(gW), _flat(gb), _flat(gA),
                _flat(gD),
            )  # fmt: skip
        x_dtype, z_dtype = ctx.dtypes
        g_rows, g_cols = _orientation_sums(gx)
        gz0 = gz0.squeeze(1) if nt == 1 else gz0.sum(1)
        gz1 = gz1.squeeze(1) if nt == 1 else gz1.sum(1)
        return (
            g_rows.to(x_dtype),
            g_cols.to(x_dtype),
            gz0.to(z_dtype),
            gz1.to(z_dtype),
            gW.sum(0).transpose(1, 2),
            gb.sum(0).view(K, D),
            gA.sum(0).t(),
            gD.sum(0),
        )


def cross_selective_scan(
    x: torch.Tensor,
    x_proj_weight: torch.Tensor,
    dt_weight: torch.Tensor,
    dt_bias: torch.Tensor,
    A: torch.Tensor,
    Ds: torch.Tensor,
    h: int,
    w: int,
) -> torch.Tensor:
    """Fused SS2D scan (see the module docstring): x (b, h*w, D) row-major tokens;
    x_proj_weight (4, R + 2N, D) (direction k's rows dt_low, B, C); dt_weight (4, D, R);
    dt_bias (4, D); A (4D, N); Ds (4D,). Returns (b, h*w, D) in x's dtype; softplus on delta
    always. Needs :func:`available` (x)."""
    b, L, D = x.shape
    R, N = dt_weight.shape[2], A.shape[1]
    P = R + 2 * N
    if (
        h * w != L
        or x_proj_weight.shape != (K, P, D)
        or dt_weight.shape != (K, D, R)
        or dt_bias.shape != (K, D)
        or A.shape != (K * D, N)
        or Ds.shape != (K * D,)
    ):
        raise ValueError(
            f"cross_selective_scan: inconsistent shapes x {tuple(x.shape)}, x_proj_weight "
            f"{tuple(x_proj_weight.shape)}, dt_weight {tuple(dt_weight.shape)}, dt_bias "
            f"{tuple(dt_bias.shape)}, A {tuple(A.shape)}, Ds {tuple(Ds.shape)} for {h}x{w}"
        )
    if not available(x):
        raise RuntimeError("cross_selective_scan needs numba and a float32/bf16/fp16 CPU tensor")
    if L == 0:
        return x.new_zeros(x.shape)
    # the column-major orientation as its own contiguous copy: every walk is sequential
    xT = x.view(b, h, w, D).transpose(1, 2).reshape(b, L, D)
    # the x projections of both orientations (directions k and k + 2 each) as one GEMM over the
    # row-major tokens; the column-major orientation's 2P columns are then put in its order
    w_rows, w_cols = x_proj_weight[0::2].reshape(2 * P, D), x_proj_weight[1::2].reshape(2 * P, D)
    z = linear(x, torch.cat([w_rows, w_cols]))  # (b, L, 4P)
    z0 = z[..., : 2 * P].contiguous().view(b, L, 2, P)
    z1 = z[..., 2 * P :].view(b, h, w, 2 * P).transpose(1, 2).reshape(b, L, 2, P)
    with torch.autocast("cpu", enabled=False):
        args = detached_unless_grad(x, xT, z0, z1, dt_weight, dt_bias, A, Ds)
        out = _CrossSelectiveScanFn.apply(*args)
    rows, cols = _orientation_sums(out)
    y = rows.view(b, h, w, D) + cols.view(b, w, h, D).transpose(1, 2)
    return y.reshape(b, L, D)


__all__ = ["available", "cross_selective_scan", "plan"]
