"""The "numba" scan backend: fused CPU selective scan, one pass over memory (numba is a
dependency; without it the torch backend is the fallback). The kernels are in
:mod:`contrast_sr.ops.scan.numba_kernels`; this module holds the
availability check, the work split, thread control and the autograd wrapper.

Same semantics and channels-last layout as the torch backend (u, delta (b, L, dim);
B, C (b, L, groups, N)), float32 compute. Work is split into jobs of (batch row, channel tile);
each job walks L once with the tile's channels in vectorised inner loops, so the states stay in
L1. ``exp`` and softplus' ``log1p`` are vectorisable polynomials (relative error ~3e-7) so LLVM
can use SIMD. When training, the forward also writes delta after softplus and the state every
K steps (:func:`checkpoint_every`); the backward recomputes one segment of K states at a time and
runs the adjoint recurrence through it in reverse, accumulating every gradient on the way
(softplus' derivative is ``1 - exp(-dt)``).

The dispatch (:mod:`contrast_sr.ops.scan.dispatch`) imports this module lazily and picks it
automatically for float32/bf16/fp16 CPU tensors when numba is installed (float64 stays on the
torch backend).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np
import torch

from contrast_sr.ops.scan.checks import check_scan_args
from contrast_sr.ops.tracing import detached_unless_grad, is_capturing
from contrast_sr.utils.malloc import tune_malloc_once

try:  # a regular dependency, but the package still works without it
    import numba

    from contrast_sr.ops.scan.numba_kernels import backward_kernel, forward_kernel
except ImportError:  # pragma: no cover - exercised where numba is missing
    numba = None


SEGMENT_FLOATS = 1 << 17  # N = 1: floats per (K, lanes) segment buffer of a job's backward


def checkpoint_every(N: int, width: int = 0) -> int:
    """Steps K between saved states (a power of two).

    N = 1 with a job ``width`` (lanes per job; the scan's own kernels pass it): K * width ~
    :data:`SEGMENT_FLOATS`, K in [64, 1024]. Longer segments walk the big maps in longer
    ascending runs: the backward at (8, 240, 1, 4096) took 1.15-1.25x less time with K = 512
    than with 64, and buffers of ~2**20 floats were slower again (measured). Otherwise (N > 1,
    or no width: SS2D's fused op) the per-job segment buffers of (K+1)*N lanes stay in L2
    (K = 64 for N = 1, 8 for N = 16)."""
    if N == 1 and width > 0:
        k = max(1, SEGMENT_FLOATS // width)
        return max(64, min(1024, 1 << (k.bit_length() - 1)))
    return max(8, min(64, 1 << (max(1, 128 // N).bit_length() - 1)))


def available(u: torch.Tensor) -> bool:
    """Whether auto-selection may run the fused kernel on ``u``: numba installed, a CPU tensor,
    not float64, and not inside a trace, an ONNX export or ``torch.compile``."""
    return (
        numba is not None
        and u.device.type == "cpu"
        and u.dtype in (torch.float32, torch.bfloat16, torch.float16)
        and not is_capturing()
    )


def inference_ready(t: torch.Tensor) -> bool:
    """What every fused CPU inference op needs of its input: numba installed, a float32 CPU
    tensor, no gradient wanted, not inside a trace, export or ``torch.compile``."""
    return (
        numba is not None
        and t.device.type == "cpu"
        and t.dtype == torch.float32
        and not (torch.is_grad_enabled() and t.requires_grad)
        and not is_capturing()
    )


def _tile(b: int, dim: int) -> int:
    """Channel tile per job: whole rows when the batch alone feeds every thread, else one
    tile per thread, a multiple of 16 lanes (one AVX-512 vector). Each job has a fixed cost
    per time step, so fewer, wider jobs are faster."""
    threads = torch.get_num_threads()
    if b >= threads or dim <= 16:
        return dim
    tiles = -(-threads // b)
    return min(dim, 16 * -(-dim // (16 * tiles)))


_LOCK = threading.Lock()  # numba's default "workqueue" threading layer is not re-entrant


@contextlib.contextmanager
def numba_threads() -> Iterator[None]:
    """Serialise launches and use torch's thread count; numba's OpenMP layer changes the
    process-wide OpenMP setting, so torch's is restored afterwards. The first launch of a
    process also keeps freed blocks in the heap
    (:func:`~contrast_sr.utils.malloc.tune_malloc_once`), unless the process decided already."""
    tune_malloc_once()
    with _LOCK:
        torch_threads = torch.get_num_threads()
        numba.set_num_threads(max(1, min(torch_threads, numba.config.NUMBA_NUM_THREADS)))
        try:
            yield
        finally:
            torch.set_num_threads(torch_threads)


def _flat(t: torch.Tensor) -> np.ndarray:
    """Zero-copy flat float32 view of a contiguous CPU tensor."""
    return t.detach().contiguous().view(-1).numpy()


class _NumbaScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, bias, softplus, mamba):
        b, L, dim = (u.shape[0], u.shape[2], u.shape[1]) if mamba else u.shape
        G, N = B.shape[2], A.shape[1]
        f32 = torch.float32
        u32, d32, B32, C32 = (t.to(f32).contiguous() for t in (u, delta, B, C))
        bias32 = bias.to(f32).contiguous() if bias is not None else torch.zeros(dim)
        At = A.to(f32).t().contiguous()
        D32 = D.to(f32).contiguous() if D is not None else torch.zeros(dim)
        save = any(ctx.needs_input_grad[:7])
        tile = _tile(b, dim)
        K = checkpoint_every(N, tile) if save else 0
        S = torch.empty(b, -(-L // K) if save else 0, N, dim)
        dt = torch.empty(b, L, dim) if save else torch.empty(0)
        y = torch.empty(u.shape)
        u_cl = torch.empty(b, L, dim) if save and mamba else torch.empty(0)
        with numba_threads():
            forward_kernel(
                _flat(u32), _flat(d32), _flat(bias32), softplus, _flat(At), _flat(B32),
                _flat(C32), _flat(D32), _flat(y), _flat(dt), _flat(u_cl), _flat(S), b, L, dim, G,
                N, K, tile, mamba,
            )  # fmt: skip
        if save:  # the backward reads u channels-last (the kernel's copy in the mamba layout)
            ctx.save_for_backward(u_cl if mamba else u32, dt, At, B32, C32, D32, S)
        ctx.softplus, ctx.tile, ctx.mamba, ctx.K = softplus, tile, mamba, K
        ctx.meta = (u.dtype, delta.dtype, D is not None, bias is not None)
        return y.to(u.dtype)

    @staticmethod
    def backward(ctx, gy):
        u, dt, At, B, C, D, S = ctx.saved_tensors
        u_dtype, delta_dtype, has_d, has_bias = ctx.meta
        f32 = torch.float32
        b, L, dim = dt.shape
        G, N = B.shape[2], B.shape[3]
        tile = ctx.tile
        nt = -(-dim // tile)
        from contrast_sr.ops.transpose import transpose_last2  # (it imports this module)

        # the staged mamba-layout backward is N = 1 only: larger N transpose gy in, gu, gdt out
        staged = ctx.mamba and N == 1
        gy = gy.float().contiguous() if staged or not ctx.mamba else transpose_last2(gy, f32)
        gu, gdt = torch.empty(gy.shape), torch.empty(gy.shape)
        gBp, gCp = torch.zeros(b, L, nt, G, N), torch.zeros(b, L, nt, G, N)
        gAp, gDp, gbp = torch.empty(b, N, dim), torch.empty(b, dim), torch.empty(b, dim)
        with numba_threads():
            backward_kernel(
                _flat(u), _flat(dt), _flat(At), _flat(B), _flat(C), _flat(D), _flat(gy),
                _flat(S), b, L, dim, G, N, ctx.K, ctx.softplus, tile, _flat(gu),
                _flat(gdt), _flat(gBp), _flat(gCp), _flat(gAp), _flat(gDp), _flat(gbp), staged,
            )  # fmt: skip
        if ctx.mamba and not staged:
            gu, gdt = transpose_last2(gu), transpose_last2(gdt)
        gB = gBp.sum(2) if nt > 1 else gBp.squeeze(2)
        gC = gCp.sum(2) if nt > 1 else gCp.squeeze(2)
        return (
            gu.to(u_dtype),
            gdt.to(delta_dtype),
            gAp.sum(0).t(),
            gB,
            gC,
            gDp.sum(0) if has_d else None,
            gbp.sum(0) if has_bias else None,
            None,
            None,
        )


def _run(u, delta, A, B, C, D, delta_bias, delta_softplus, mamba: bool) -> torch.Tensor:
    """Both entries: the checks, an empty scan, then the autograd Function (u, delta
    (b, dim, L) when ``mamba``, else (b, L, dim))."""
    if numba is None:
        raise RuntimeError("the numba scan backend needs numba (pip install 'contrast-sr[numba]')")
    if u.dtype == torch.float64 or u.device.type != "cpu":
        raise RuntimeError("the numba scan backend runs float32/bf16/fp16 CPU tensors only")
    cl = (u.transpose(1, 2), delta.transpose(1, 2)) if mamba else (u, delta)
    check_scan_args(*cl, A, B, C, D, delta_bias)
    if cl[0].shape[1] == 0:
        return u.new_zeros(u.shape)
    with torch.autocast("cpu", enabled=False):
        args = detached_unless_grad(u, delta, A, B, C, D, delta_bias)
        return _NumbaScanFn.apply(*args, bool(delta_softplus), mamba)


def scan_numba_channels_last(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """The "numba" backend (fused CPU kernel): shapes as the torch backend, y (b, L, dim) in u's
    dtype. Raises RuntimeError if numba is missing or u is float64 or not on the CPU."""
    return _run(u, delta, A, B, C, D, delta_bias, delta_softplus, mamba=False)


def scan_numba_mamba_layout(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """The numba kernel on u, delta in mamba_ssm's layout (b, dim, L): the kernels stage
    (channels x steps) blocks themselves, so the forward makes no transposed copy, nor does the
    backward for N = 1 (for N > 1 it transposes gy in and gu, gdelta out). B, C channels-last
    (b, L, groups, N). Returns y (b, dim, L) in u's dtype; gradients come back in the input
    layouts. RuntimeError as :func:`scan_numba_channels_last`."""
    return _run(u, delta, A, B, C, D, delta_bias, delta_softplus, mamba=True)


__all__ = [
    "available",
    "checkpoint_every",
    "inference_ready",
    "scan_numba_channels_last",
    "scan_numba_mamba_layout",
]
