"""numba kernel of :mod:`contrast_sr.ops.gated_ffn` (needs numba; float32, flat arrays).

One job per band of ``BAND`` image rows, walked row by row. For row y it computes the first
layer's half h2 for row y + 1 into a ring of three rows (rows y - 1 and y are there already)
and h1 for row y, with :func:`~contrast_sr.ops.linear_kernels.gemm_rows`; then the gate
``(h1 + b) * GELU(dwconv(h2 + b) + dw_bias)`` into a row buffer, and the second layer from it
straight into the output (plus a residual, if given, while the row is in cache). Only x and
the residual are read and only the output written; the buffers (five rows of F channels) stay
in L2.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from contrast_sr.ops.gated_dwconv_kernels import _SQRT_HALF, _source, erf32
from contrast_sr.ops.linear_kernels import add_residual, gemm_rows
from contrast_sr.ops.numba_intrinsics import claim
from contrast_sr.ops.scan.numba_kernels import _FASTMATH, _HALF, _ONE

BAND = 16  # image rows per job; h2 is computed for the band and one row above and below it


@njit(inline="always")
def _first_layer_row(h, F, x, pixel0, y, W, C, w1t, b1, half):
    """One image row of the first layer's half ``half`` (0: h1, 1: h2) into ``h`` (W, F)."""
    c64, f64 = uint64(C), uint64(F)
    xoff = (pixel0 + uint64(y * W)) * c64
    gemm_rows(h, uint64(0), f64, x, xoff, c64, w1t, uint64(half) * f64, 2 * f64, b1, W, C, F)


@njit(fastmath=_FASTMATH, error_model="numpy")
def _band(x, w1t, b1, taps, dw_bias, w2t, b2, res, out, bi, y0, y1, H, W, C, F, reflect):
    """Rows [y0, y1) of image ``bi``. h2 rows live in a ring of three (row r in slot r % 3):
    rows y - 1, y and y + 1 are there when row y is gated, each computed once per band."""
    c64, f64 = uint64(C), uint64(F)
    plane = uint64(W * F)
    ring = np.empty(3 * W * F, dtype=np.float32)
    h1 = np.empty(W * F, dtype=np.float32)
    gate = np.empty(W * F, dtype=np.float32)
    acc = np.empty(F, dtype=np.float32)
    pixel0 = uint64(bi * H * W)
    for r in range(max(0, y0 - 1), min(H, y0 + 1)):
        _first_layer_row(ring[uint64(r % 3) * plane :], F, x, pixel0, r, W, C, w1t, b1, 1)
    for y in range(y0, y1):
        if y + 1 < H:
            slot = uint64((y + 1) % 3) * plane
            _first_layer_row(ring[slot:], F, x, pixel0, y + 1, W, C, w1t, b1, 1)
        _first_layer_row(h1, F, x, pixel0, y, W, C, w1t, b1, 0)
        for px in range(W):
            for c in range(f64):
                acc[c] = dw_bias[c]
            for dy in range(3):
                yy = _source(y + dy - 1, H, reflect)
                if yy < 0:
                    continue
                for dx in range(3):
                    xx = _source(px + dx - 1, W, reflect)
                    if xx < 0:
                        continue
                    src = uint64(yy % 3) * plane + uint64(xx * F)
                    tap = uint64((dy * 3 + dx) * F)
                    for c in range(f64):
                        acc[c] += taps[tap + c] * ring[src + c]
            g_row = uint64(px * F)
            for c in range(f64):
                v = acc[c]
                gate[g_row + c] = h1[g_row + c] * (_HALF * v * (_ONE + erf32(v * _SQRT_HALF)))
        o = (pixel0 + uint64(y * W)) * c64
        gemm_rows(out, o, c64, gate, uint64(0), f64, w2t, uint64(0), c64, b2, W, F, C)
        add_residual(out, res, o, uint64(W) * c64)


@njit(parallel=True, cache=True)
def gated_ffn_kernel(x, w1t, b1, taps, dw_bias, w2t, b2, res, out, b, H, W, C, F, reflect):
    """x, out (b, H, W, C); w1t (C, 2F) the first layer transposed, b1 (2F,); taps (9, F),
    dw_bias (F,); w2t (F, C), b2 (C,); res (b, H, W, C) added to the output, or empty. C and
    F multiples of 16."""
    bands = (H + BAND - 1) // BAND
    jobs = b * bands
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        job = claim(counter)
        while job < jobs:
            bi = job // bands
            y0 = (job % bands) * BAND
            _band(
                x, w1t, b1, taps, dw_bias, w2t, b2, res, out, bi, y0, min(H, y0 + BAND), H, W,
                C, F, reflect,
            )  # fmt: skip
            job = claim(counter)
