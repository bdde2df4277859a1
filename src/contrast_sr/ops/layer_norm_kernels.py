"""numba kernel of :mod:`contrast_sr.ops.layer_norm` (needs numba; float32, flat arrays).

Jobs of ``ROWS`` consecutive tokens; each token's C channels are one contiguous run, read once
for the mean, once for the variance of the centred values (two passes, as exact as torch's) and
once for the output, all from L1.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from contrast_sr.ops.numba_intrinsics import claim
from contrast_sr.ops.scan.numba_kernels import _FASTMATH, _ONE, _ZERO

ROWS = 512  # tokens per job


@njit(parallel=True, fastmath=_FASTMATH, cache=True, error_model="numpy")
def layer_norm_kernel(x, weight, bias, out, rows, C, eps):
    """out[r] = (x[r] - mean) / sqrt(var + eps) * weight + bias for each token r of C channels
    (x, out (rows * C,); weight, bias (C,))."""
    jobs = (rows + ROWS - 1) // ROWS
    inv_c = np.float32(1.0) / np.float32(C)
    c64 = uint64(C)
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        job = claim(counter)
        while job < jobs:
            for r in range(job * ROWS, min(rows, (job + 1) * ROWS)):
                o = uint64(r) * c64
                xr = x[o : o + c64]
                orow = out[o : o + c64]
                s = _ZERO
                for c in range(c64):
                    s += xr[c]
                mean = s * inv_c
                v = _ZERO
                for c in range(c64):
                    d = xr[c] - mean
                    v += d * d
                rstd = _ONE / np.sqrt(v * inv_c + eps)
                for c in range(c64):
                    orow[c] = (xr[c] - mean) * rstd * weight[c] + bias[c]
            job = claim(counter)
