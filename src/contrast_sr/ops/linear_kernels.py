"""numba kernel of :mod:`contrast_sr.ops.linear` (needs numba; float32, flat arrays).

Jobs of ``ROWS`` tokens; each job walks its tokens in register tiles of
:func:`~contrast_sr.ops.numba_intrinsics.gemm_tile`, 64 output columns (4 vectors) at a time
and a remainder of 16, 32 or 48. Rows per tile keep 16-20 accumulators in the 32 vector
registers: 4 rows x 4 vectors, 5 x 3, 8 x 2, 8 x 1; a job's last rows go one at a time.
"""

from __future__ import annotations

from numba import njit, prange, uint64

from contrast_sr.ops.numba_intrinsics import gemm_tile

ROWS = 64  # tokens per job


@njit(inline="always")
def _columns(out, x, wt, bias, r0, r1, K, N, c0, MR, NV):
    """Rows [r0, r1), columns [c0, c0 + 16 NV): MR-row tiles, then single rows."""
    k64, n64 = uint64(K), uint64(N)
    r = r0
    while r + MR <= r1:
        gemm_tile(
            out, uint64(r) * n64 + c0, n64, x, uint64(r) * k64, k64, wt, c0, n64, bias, k64, MR, NV
        )
        r += MR
    while r < r1:
        gemm_tile(
            out, uint64(r) * n64 + c0, n64, x, uint64(r) * k64, k64, wt, c0, n64, bias, k64, 1, NV
        )
        r += 1


@njit(parallel=True, cache=True)
def linear_kernel(x, wt, bias, out, rows, K, N):
    """out (rows, N) = x (rows, K) @ wt (K, N) + bias (N,); N a multiple of 16, K >= 1."""
    for job in prange((rows + ROWS - 1) // ROWS):
        r0 = job * ROWS
        r1 = min(rows, r0 + ROWS)
        c = 0
        while c + 64 <= N:
            _columns(out, x, wt, bias, r0, r1, K, N, uint64(c), 4, 4)
            c += 64
        rest = (N - c) // 16
        if rest == 3:
            _columns(out, x, wt, bias, r0, r1, K, N, uint64(c), 5, 3)
        elif rest == 2:
            _columns(out, x, wt, bias, r0, r1, K, N, uint64(c), 8, 2)
        elif rest == 1:
            _columns(out, x, wt, bias, r0, r1, K, N, uint64(c), 8, 1)
