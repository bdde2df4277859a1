"""numba kernels of :mod:`contrast_sr.ops.linear` (needs numba; float32, flat arrays).

:func:`gemm_rows` computes a block of rows of ``x @ wt + bias`` in register tiles of
:func:`~contrast_sr.ops.numba_intrinsics.gemm_tile`, 64 output columns (4 vectors) at a time
and a remainder of 16, 32 or 48. Rows per tile keep 16-20 accumulators in the 32 vector
registers: 4 rows x 4 vectors, 5 x 3, 8 x 2, 8 x 1; the last rows go one at a time.
:func:`linear_kernel` runs it over jobs of ``ROWS`` tokens; the fused FFN kernel
(:mod:`contrast_sr.ops.gated_ffn_kernels`) calls it on its row buffers.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from contrast_sr.ops.numba_intrinsics import claim, gemm_tile

ROWS = 64  # tokens per job


@njit(inline="always")
def _columns(block, c, MR, NV):
    """Columns [c, c + 16 NV) of a :func:`gemm_rows` block: MR-row tiles, then single rows."""
    out, ooff, ostride, x, xoff, xstride, wt, woff, wstride, bias, nrows, K = block
    r = 0
    while r + MR <= nrows:
        o, i = ooff + uint64(r) * ostride + c, xoff + uint64(r) * xstride
        gemm_tile(out, o, ostride, x, i, xstride, wt, woff + c, wstride, bias, K, MR, NV)
        r += MR
    while r < nrows:
        o, i = ooff + uint64(r) * ostride + c, xoff + uint64(r) * xstride
        gemm_tile(out, o, ostride, x, i, xstride, wt, woff + c, wstride, bias, K, 1, NV)
        r += 1


@njit(inline="always")
def gemm_rows(out, ooff, ostride, x, xoff, xstride, wt, woff, wstride, bias, nrows, K, N):
    """``out[ooff + r * ostride + j] = bias[woff + j] + sum_k x[xoff + r * xstride + k] *
    wt[woff + k * wstride + j]`` for r < nrows, j < N (a multiple of 16), K >= 1; offsets
    and strides uint64."""
    block = (out, ooff, ostride, x, xoff, xstride, wt, woff, wstride, bias, nrows, uint64(K))
    c = 0
    while c + 64 <= N:
        _columns(block, uint64(c), 4, 4)
        c += 64
    rest = (N - c) // 16  # MR x NV literals: the tiles' register shapes
    if rest == 3:
        _columns(block, uint64(c), 5, 3)
    elif rest == 2:
        _columns(block, uint64(c), 8, 2)
    elif rest == 1:
        _columns(block, uint64(c), 8, 1)


@njit(inline="always")
def add_residual(out, res, off, n):
    """``out[off + i] += res[off + i]`` for i < n (uint64 off, n), when ``res`` is not empty:
    a residual added to output rows the GEMM has just written, while they are in cache."""
    if res.shape[0] > 0:
        o, r = out[off : off + n], res[off : off + n]
        for i in range(n):
            o[i] += r[i]


@njit(parallel=True, cache=True)
def linear_kernel(x, wt, bias, res, out, rows, K, N):
    """out (rows, N) = x (rows, K) @ wt (K, N) + bias (N,) [+ res (rows, N), if not empty];
    N a multiple of 16, K >= 1."""
    k64, n64 = uint64(K), uint64(N)
    jobs = (rows + ROWS - 1) // ROWS
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        job = claim(counter)
        while job < jobs:
            r0 = job * ROWS
            n = min(rows, r0 + ROWS) - r0
            o = uint64(r0) * n64
            gemm_rows(out, o, n64, x, uint64(r0) * k64, k64, wt, uint64(0), n64, bias, n, K, N)
            add_residual(out, res, o, uint64(n) * n64)
            job = claim(counter)
