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

from contrast_sr.ops.scan.numba_cpu import checkpoint_every, numba, numba_threads
from contrast_sr.ops.tracing import is_capturing

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
    """(channel tile, direction parts) of the work split: directions first (1, 2 or 4 parts, a
    partial output each), then channel tiles of 16-lane multiples, until every thread has a job.
    Wider jobs amortise the per-step cost, so no more jobs than threads are made."""
    parts = 1
    while b * parts < threads and parts < K:
        parts *= 2
    tile = dim
    if b * parts < threads and dim > 16:
        tiles = -(-threads // (b * parts))
        tile = min(dim, 16 * -(-dim // (16 * tiles)))
    return tile, parts


def _flat(t: torch.Tensor):
    return t.detach().contiguous().view(-1).numpy()


class _CrossSelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, xdbl, dt_weight, dt_bias, A, Ds, h, w):
        b, L, D = x.shape
        R, N = dt_weight.shape[2], A.shape[1]
        f32 = torch.float32
        x32, z32 = x.to(f32).contiguous(), xdbl.to(f32).contiguous()
        WT = dt_weight.to(f32).transpose(1, 2).contiguous()  # (K, R, D)
        bias = dt_bias.to(f32).reshape(-1).contiguous()
        At = A.to(f32).t().contiguous()  # (N, K*D)
        D32 = Ds.to(f32).contiguous()
        save = any(ctx.needs_input_grad[:6])
        Kc = checkpoint_every(N)
        S = torch.empty(b, K, -(-L // Kc), N, D) if save else torch.empty(0)
        dt = torch.empty(b, L, K, D) if save else torch.empty(0)
        tile, parts = plan(b, D, torch.get_num_threads())
        out = torch.empty(b, parts, L, D)
        with numba_threads():
            forward_kernel(
                _flat(x32), _flat(z32), _flat(WT), _flat(bias), _flat(At), _flat(D32),
                _flat(out), _flat(dt), _flat(S), b, h, w, D, R, N, Kc, tile, parts,
            )  # fmt: skip
        if save:
            ctx.save_for_backward(x32, z32, WT, dt, At, D32, S)
        ctx.plan, ctx.hw = (tile, parts), (h, w)
        ctx.dtypes = (x.dtype, xdbl.dtype)
        y = out.squeeze(1) if parts == 1 else out.sum(1)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, gout):
        x, z, WT, dt, At, D32, S = ctx.saved_tensors
        (tile, parts), (h, w) = ctx.plan, ctx.hw
        b, L, D = x.shape
        R, N, P = WT.shape[1], At.shape[0], z.shape[3]
        nt = -(-D // tile)
        gout = gout.to(torch.float32).contiguous()
        gx = torch.empty(b, parts, L, D)
        gz = torch.empty(b, nt, L, K, P)
        gW, gA = torch.empty(b, K, R, D), torch.empty(b, N, K * D)
        gb, gD = torch.empty(b, K * D), torch.empty(b, K * D)
        with numba_threads():
            backward_kernel(
                _flat(x), _flat(z), _flat(WT), _flat(dt), _flat(At), _flat(D32), _flat(gout),
                _flat(S), b, h, w, D, R, N, checkpoint_every(N), tile, parts, _flat(gx),
                _flat(gz), _flat(gW), _flat(gb), _flat(gA), _flat(gD),
            )  # fmt: skip
        x_dtype, z_dtype = ctx.dtypes
        gx = gx.squeeze(1) if parts == 1 else gx.sum(1)
        gz = gz.squeeze(1) if nt == 1 else gz.sum(1)
        return (
            gx.to(x_dtype),
            gz.to(z_dtype),
            gW.sum(0).transpose(1, 2),
            gb.sum(0).view(K, D),
            gA.sum(0).t(),
            gD.sum(0),
            None,
            None,
        )


def cross_selective_scan(
    x: torch.Tensor,
    xdbl: torch.Tensor,
    dt_weight: torch.Tensor,
    dt_bias: torch.Tensor,
    A: torch.Tensor,
    Ds: torch.Tensor,
    h: int,
    w: int,
) -> torch.Tensor:
    """Fused SS2D scan (see the module docstring): x (b, h*w, D); xdbl (b, h*w, 4, R + 2N);
    dt_weight (4, D, R); dt_bias (4, D); A (4D, N); Ds (4D,). Returns (b, h*w, D) in x's dtype;
    softplus on delta always. Needs :func:`available` (x)."""
    b, L, D = x.shape
    R, N = dt_weight.shape[2], A.shape[1]
    if (
        h * w != L
        or xdbl.shape != (b, L, K, R + 2 * N)
        or dt_weight.shape != (K, D, R)
        or dt_bias.shape != (K, D)
        or A.shape != (K * D, N)
        or Ds.shape != (K * D,)
    ):
        raise ValueError(
            f"cross_selective_scan: inconsistent shapes x {tuple(x.shape)}, xdbl "
            f"{tuple(xdbl.shape)}, dt_weight {tuple(dt_weight.shape)}, dt_bias "
            f"{tuple(dt_bias.shape)}, A {tuple(A.shape)}, Ds {tuple(Ds.shape)} for {h}x{w}"
        )
    if not available(x):
        raise RuntimeError("cross_selective_scan needs numba and a float32/bf16/fp16 CPU tensor")
    if L == 0:
        return x.new_zeros(x.shape)
    with torch.autocast("cpu", enabled=False):
        return _CrossSelectiveScanFn.apply(x, xdbl, dt_weight, dt_bias, A, Ds, h, w)


__all__ = ["available", "cross_selective_scan", "plan"]
