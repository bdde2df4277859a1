"""The "triton" scan backend: fused GPU selective scan (optional extra ``triton``).

Same semantics and channels-last layout as the torch backend (u, delta (b, L, dim);
B, C (b, L, groups, N)); state and sums in float32, inputs float32/bf16/fp16 read as they are,
y and gu/gdelta written in u's/delta's dtype. The kernels (:mod:`.triton_kernels`) run one
program per (batch row, channel tile of one group, time segment); this module holds the
availability check, the launch plan, and the autograd wrapper.

Memory: when training, the forward saves its inputs and the state every K steps
(b * ceil(L/K) * dim * N floats, K = :attr:`ScanPlan.checkpoint`), never the L*N states; the
backward recomputes one K-step chunk of states at a time into a per-program scratch buffer and
runs the adjoint recurrence back through it (the math is in :mod:`.numba_kernels`' backward,
softplus' derivative ``1 - exp(-dt)``). gA, gD, gbias are per-program partial sums and gB, gC
per-tile partial sums, reduced here with torch: the result is deterministic.

The dispatch (:mod:`contrast_sr.ops.scan.dispatch`) imports this module lazily and picks it
automatically for float32/bf16/fp16 CUDA tensors when triton is installed. CPU tensors run only
when the backend is named and ``TRITON_INTERPRET=1`` was set before triton was imported (the
tests do this; see ``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from contrast_sr.ops.scan.checks import check_scan_args
from contrast_sr.ops.tracing import detached_unless_grad, is_exporting

try:  # optional dependency
    import triton

    from contrast_sr.ops.scan import triton_kernels as kernels
except ImportError:  # pragma: no cover - exercised where triton is missing
    triton = None
    kernels = None

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def interpreting() -> bool:
    """Whether the kernels were built for Triton's CPU interpreter (TRITON_INTERPRET=1)."""
    if kernels is None:
        return False
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(kernels.fwd_kernel, InterpretedFunction)


def available(u: torch.Tensor) -> bool:
    """Whether auto-selection may run the kernels on ``u``: triton installed, a CUDA tensor,
    float32/bf16/fp16, and not inside a trace or an ONNX export."""
    return triton is not None and u.is_cuda and u.dtype in _DTYPES and not is_exporting()


@dataclass(frozen=True)
class ScanPlan:
    """Launch parameters: channel tile ``block_d`` (power of two), ``tiles`` per group, state
    lanes ``block_n`` (N rounded up to a power of two), ``checkpoint`` K (steps between saved
    states), ``segments`` P of ``seg`` steps each (a multiple of K), ``num_warps``."""

    block_d: int
    tiles: int
    block_n: int
    checkpoint: int
    segments: int
    seg: int
    num_warps: int


def plan_scan(
    u: torch.Tensor,
    groups: int,
    N: int,
    *,
    checkpoint: int | None = None,
    segments: int | None = None,
    block_d: int | None = None,
) -> ScanPlan:
    """The launch plan for u (b, L, dim). Tiles stay inside one group (B_t/C_t one vector per
    step); on CUDA, L is cut into segments until there are about 8 programs per SM (segments at
    least 2K steps): each program walks its steps one by one, so more segments hide more of the
    load latency. The keywords override the choice (tests force small values)."""
    b, L, dim = u.shape
    Dg = dim // groups
    block_n = triton.next_power_of_2(N)
    block_d = block_d or min(triton.next_power_of_2(Dg), 64 if block_n <= 4 else 32)
    tiles = triton.cdiv(Dg, block_d)
    K = checkpoint or max(16, min(64, 8192 // (block_d * block_n)))
    if segments is None:
        target = 1
        if u.is_cuda:
            target = 8 * torch.cuda.get_device_properties(u.device).multi_processor_count
        segments = min(triton.cdiv(target, b * groups * tiles), max(1, L // (2 * K)))
    seg = K * triton.cdiv(triton.cdiv(L, max(1, segments)), K)
    num_warps = max(1, min(4, block_d * block_n // 128))
    return ScanPlan(block_d, tiles, block_n, K, triton.cdiv(L, seg), seg, num_warps)


def _device(u: torch.Tensor):
    return torch.cuda.device(u.device) if u.is_cuda else contextlib.nullcontext()


class _TritonScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, bias, softplus, plan):
        b, L, dim = u.shape
        G, N = B.shape[2], A.shape[1]
        Dg, P, K = dim // G, plan.segments, plan.checkpoint
        f32 = {"device": u.device, "dtype": torch.float32}
        u, delta, B, C = (t.contiguous() for t in (u, delta, B, C))
        A32 = A.to(torch.float32).contiguous()
        D32 = D.to(torch.float32).contiguous() if D is not None else torch.zeros(dim, **f32)
        b32 = bias.to(torch.float32).contiguous() if bias is not None else torch.zeros(dim, **f32)
        save = any(ctx.needs_input_grad[:7])
        nck = triton.cdiv(L, K)
        S = torch.empty(b, nck, dim, N, **f32) if save else torch.empty(1, **f32)
        hsum = torch.empty(b, P, dim, N, **f32)
        dtsum = torch.empty(b, P, dim, **f32)
        y = torch.empty_like(u)
        nt = G * plan.tiles
        meta = {"BLOCK_D": plan.block_d, "BLOCK_N": plan.block_n, "num_warps": plan.num_warps}
        shape = (L, dim, Dg, G, N, plan.tiles, P, plan.seg)
        with _device(u):
            if P > 1:
                kernels.fwd_segment_kernel[(b * nt * (P - 1),)](
                    u, delta, b32, A32, B, hsum, dtsum, *shape, P - 1, SOFTPLUS=softplus, **meta
                )
            kernels.fwd_kernel[(b * nt * P,)](
                u, delta, b32, A32, B, C, D32, y, S, hsum, dtsum, *shape, K, nck,
                SOFTPLUS=softplus, SAVE=save, **meta,
            )  # fmt: skip
        if save:
            ctx.save_for_backward(u, delta, A32, B, C, D32, b32, S)
        ctx.softplus, ctx.plan = softplus, plan
        ctx.has = (D is not None, bias is not None)
        return y

    @staticmethod
    def backward(ctx, gy):
        u, delta, A32, B, C, D32, b32, S = ctx.saved_tensors
        plan, softplus = ctx.plan, ctx.softplus
        b, L, dim = u.shape
        G, N = B.shape[2], A32.shape[1]
        Dg, P, K = dim // G, plan.segments, plan.checkpoint
        f32 = {"device": u.device, "dtype": torch.float32}
        gy = gy.contiguous()
        gu, gdelta = torch.empty_like(u), torch.empty_like(delta)
        gBp = torch.empty(plan.tiles, b, L, G, N, **f32)
        gCp = torch.empty(plan.tiles, b, L, G, N, **f32)
        gAp = torch.empty(b * P, dim, N, **f32)
        gDp, gbp = torch.empty(b * P, dim, **f32), torch.empty(b * P, dim, **f32)
        csum = torch.empty(b, P, dim, N, **f32)
        dtsum = torch.empty(b, P, dim, **f32)
        nt = G * plan.tiles
        nprog = b * nt * P
        scratch = torch.empty(nprog * K * plan.block_d * plan.block_n, **f32)
        meta = {"BLOCK_D": plan.block_d, "BLOCK_N": plan.block_n, "num_warps": plan.num_warps}
        shape = (L, dim, Dg, G, N, plan.tiles, P, plan.seg)
        with _device(u):
            if P > 1:
                kernels.bwd_segment_kernel[(b * nt * (P - 1),)](
                    delta, b32, A32, C, gy, csum, dtsum, *shape, P - 1, SOFTPLUS=softplus, **meta
                )
            kernels.bwd_kernel[(nprog,)](
                u, delta, b32, A32, B, C, D32, gy, S, csum, dtsum, scratch,
                gu, gdelta, gBp, gCp, gAp, gDp, gbp, b, *shape, K, triton.cdiv(L, K),
                SOFTPLUS=softplus, **meta,
            )  # fmt: skip
        gB = gBp[0] if plan.tiles == 1 else gBp.sum(0)
        gC = gCp[0] if plan.tiles == 1 else gCp.sum(0)
        has_d, has_bias = ctx.has
        return (
            gu,
            gdelta,
            gAp.sum(0),
            gB.to(B.dtype),
            gC.to(C.dtype),
            gDp.sum(0) if has_d else None,
            gbp.sum(0) if has_bias else None,
            None,
            None,
        )


@torch.compiler.disable  # dynamo runs it as one opaque eager call (a graph break)
def scan_triton_channels_last(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    *,
    checkpoint: int | None = None,
    segments: int | None = None,
    block_d: int | None = None,
) -> torch.Tensor:
    """The "triton" backend: u, delta (b, L, dim); A (dim, N); B, C (b, L, groups, N);
    D, delta_bias (dim,). Returns y (b, L, dim) in u's dtype. ``checkpoint`` (K), ``segments``
    and ``block_d`` override the launch plan (:func:`plan_scan`). Raises RuntimeError without
    triton, for float64, and for CPU tensors unless Triton's interpreter is on."""
    if triton is None:
        raise RuntimeError(
            "the triton scan backend needs triton (pip install 'contrast-sr[triton]')"
        )
    if u.dtype not in _DTYPES:
        raise RuntimeError("the triton scan backend runs float32/bf16/fp16 tensors only")
    if not u.is_cuda and not interpreting():
        raise RuntimeError(
            "the triton scan backend runs CUDA tensors (CPU tensors only under TRITON_INTERPRET=1)"
        )
    check_scan_args(u, delta, A, B, C, D, delta_bias)
    if u.shape[1] == 0:
        return u.new_zeros(u.shape)
    plan = plan_scan(
        u, B.shape[2], A.shape[1], checkpoint=checkpoint, segments=segments, block_d=block_d
    )
    with torch.autocast(u.device.type, enabled=False):
        args = detached_unless_grad(u, delta, A, B, C, D, delta_bias)
        return _TritonScanFn.apply(*args, bool(delta_softplus), plan)


__all__ = ["ScanPlan", "available", "interpreting", "plan_scan", "scan_triton_channels_last"]
