"""numba kernel of :mod:`contrast_sr.ops.gated_dwconv` (needs numba; float32, flat arrays).

One job per image row: for each pixel, the nine taps of the depthwise 3x3 convolution are
vector loops over the F channels reading the three rows of h2 in place (channels-last, so each
tap is one contiguous run), then GELU and the product with h1, written to the output row.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from contrast_sr.ops.numba_intrinsics import claim
from contrast_sr.ops.scan.numba_kernels import _FASTMATH, _HALF, _ONE

_SQRT_HALF = np.float32(0.7071067811865476)
_FOUR = np.float32(4.0)
# erf(x) = x P(x²) / Q(x²) on [-4, 4] (Eigen's float erf), clamped outside (erf = +-1 in fp32)
_A1, _A3 = np.float32(-1.60960333262415e-02), np.float32(-2.95459980854025e-03)
_A5 = np.float32(-7.34990630326855e-04)
_A7, _A9 = np.float32(-5.69250639462346e-05), np.float32(-2.10102402082508e-06)
_A11, _A13 = np.float32(2.77068142495902e-08), np.float32(-2.72614225801306e-10)
_B0, _B2 = np.float32(-1.42647390514189e-02), np.float32(-7.37332916720468e-03)
_B4 = np.float32(-1.68282697438203e-03)
_B6, _B8 = np.float32(-2.13374055278905e-04), np.float32(-1.45660718464996e-05)


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def erf32(x):
    """float32 erf, rational approximation, error ~1e-7 (vectorisable)."""
    x = min(max(x, -_FOUR), _FOUR)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    q = x2 * _B8 + _B6
    q = x2 * q + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return x * p / q


@njit(inline="always")
def _source(i, n, reflect):
    """Index of input row/column ``i`` (may be -1 or n) after padding, or -1 for a zero."""
    if 0 <= i < n:
        return i
    if not reflect:
        return -1
    if n == 1:
        return 0
    return 1 if i < 0 else n - 2


@njit(parallel=True, fastmath=_FASTMATH, cache=True, error_model="numpy")
def gated_dwconv_kernel(h1, h2, bias, taps, dw_bias, out, b, H, W, F, reflect):
    """h1, h2, out (b, H, W, F); bias (2F,); taps (9, F); dw_bias (F,)."""
    f64 = uint64(F)
    jobs = b * H
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        job = claim(counter)
        while job < jobs:
            bi = job // H
            y = job % H
            acc = np.empty(F, dtype=np.float32)
            for x in range(W):
                for c in range(f64):
                    acc[c] = dw_bias[c]
                for dy in range(3):
                    yy = _source(y + dy - 1, H, reflect)
                    if yy < 0:
                        continue
                    for dx in range(3):
                        xx = _source(x + dx - 1, W, reflect)
                        if xx < 0:
                            continue
                        src = uint64(((bi * H + yy) * W + xx) * F)
                        tap = uint64((dy * 3 + dx) * F)
                        for c in range(f64):
                            acc[c] += taps[tap + c] * (h2[src + c] + bias[f64 + c])
                row = uint64(((bi * H + y) * W + x) * F)
                for c in range(f64):
                    v = acc[c]
                    g = _HALF * v * (_ONE + erf32(v * _SQRT_HALF))
                    out[row + c] = (h1[row + c] + bias[c]) * g
            job = claim(counter)


__all__ = ["erf32", "gated_dwconv_kernel"]
