"""numba kernel of :mod:`contrast_sr.ops.transpose` (importing this module needs numba)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from contrast_sr.ops.numba_intrinsics import claim, transpose16

T = 16  # tile side: 16 floats = one 64-byte line per tile row


@njit(parallel=True, cache=True, error_model="numpy")
def transpose_kernel(src, dst, b, m, n):
    """src (b, m, n) -> dst (b, n, m), both flat float32. Jobs are (batch, block of T rows);
    each moves T x T tiles through vector registers (T line-sized reads, then T line-sized
    writes) instead of one strided access per element."""
    mb = (m + T - 1) // T
    jobs = b * mb
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        job = claim(counter)
        while job < jobs:
            bi = job // mb
            r0 = (job % mb) * T
            nr = min(T, m - r0)
            base = uint64(bi * m * n)
            for c0 in range(0, n, T):
                nc = min(T, n - c0)
                if nr == T and nc == T:
                    transpose16(
                        dst, base + uint64(c0 * m + r0), uint64(m), src, base + uint64(r0 * n + c0),
                        uint64(n),
                    )  # fmt: skip
                else:  # a partial edge tile
                    for i in range(nr):
                        for j in range(nc):
                            dst[base + uint64((c0 + j) * m + r0 + i)] = src[
                                base + uint64((r0 + i) * n + c0 + j)
                            ]
            job = claim(counter)
