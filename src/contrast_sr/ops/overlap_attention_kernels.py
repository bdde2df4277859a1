"""numba kernel of :mod:`contrast_sr.ops.overlap_attention` (needs numba; float32, flat arrays).

One job per (batch row, window, head): the window's keys and values are gathered once from the
channels-last qkv map into two transposed (head_dim, m) buffers (zeros where the key window
hangs over the image border, as zero padding gives), then each query's m scores, softmax and
weighted sum run as vector loops over the m keys, and the result is written straight into the
channels-last output map.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from contrast_sr.ops.numba_intrinsics import claim
from contrast_sr.ops.scan.numba_kernels import _FASTMATH, _ONE, _ZERO, _exp


@njit(parallel=True, fastmath=_FASTMATH, cache=True, error_model="numpy")
def overlap_attention_kernel(qkv, bias, out, b, H, W, C, heads, ws, ows, scale):
    """qkv (b, H, W, 3C), bias (heads, ws², ows²) or empty, out (b, H, W, C), all flat."""
    d = C // heads
    pad = (ows - ws) // 2
    nwh = H // ws
    nww = W // ws
    m = ows * ows
    n = ws * ws
    m64 = uint64(m)
    has_bias = bias.shape[0] > 0
    jobs = b * nwh * nww * heads
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        job = claim(counter)
        while job < jobs:
            head = job % heads
            wj = (job // heads) % nww
            wi = (job // (heads * nww)) % nwh
            bi = job // (heads * nww * nwh)
            kt = np.zeros(d * m, dtype=np.float32)
            vt = np.zeros(d * m, dtype=np.float32)
            s = np.empty(m, dtype=np.float32)
            for ki in range(ows):
                y = wi * ws - pad + ki
                if y < 0 or y >= H:
                    continue
                for kj in range(ows):
                    x = wj * ws - pad + kj
                    if x < 0 or x >= W:
                        continue
                    base = ((bi * H + y) * W + x) * 3 * C + C + head * d
                    j = ki * ows + kj
                    for dd in range(d):
                        kt[dd * m + j] = qkv[base + dd]
                        vt[dd * m + j] = qkv[base + C + dd]
            for qi in range(ws):
                for qj in range(ws):
                    token = (bi * H + wi * ws + qi) * W + wj * ws + qj
                    qrow = token * 3 * C + head * d
                    if has_bias:
                        brow = uint64((head * n + qi * ws + qj) * m)
                        for j in range(m64):
                            s[j] = bias[brow + j]
                    else:
                        for j in range(m64):
                            s[j] = _ZERO
                    if d == 8:  # the light models' head dim: one pass over the keys, not eight
                        q0, q1 = qkv[qrow] * scale, qkv[qrow + 1] * scale
                        q2, q3 = qkv[qrow + 2] * scale, qkv[qrow + 3] * scale
                        q4, q5 = qkv[qrow + 4] * scale, qkv[qrow + 5] * scale
                        q6, q7 = qkv[qrow + 6] * scale, qkv[qrow + 7] * scale
                        for j in range(m64):
                            s[j] += (
                                q0 * kt[j] + q1 * kt[m64 + j] + q2 * kt[2 * m64 + j]
                                + q3 * kt[3 * m64 + j] + q4 * kt[4 * m64 + j]
                                + q5 * kt[5 * m64 + j] + q6 * kt[6 * m64 + j]
                                + q7 * kt[7 * m64 + j]
                            )  # fmt: skip
                    else:
                        for dd in range(d):
                            qv = qkv[qrow + dd] * scale
                            krow = uint64(dd * m)
                            for j in range(m64):
                                s[j] += qv * kt[krow + j]
                    mx = s[0]
                    for j in range(m64):
                        mx = max(mx, s[j])
                    total = _ZERO
                    for j in range(m64):
                        e = _exp(s[j] - mx)
                        s[j] = e
                        total += e
                    inv = _ONE / total
                    orow = token * C + head * d
                    if d == 8:  # one pass over the keys with eight sums
                        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _ZERO
                        for j in range(m64):
                            p = s[j]
                            a0 += p * vt[j]
                            a1 += p * vt[m64 + j]
                            a2 += p * vt[2 * m64 + j]
                            a3 += p * vt[3 * m64 + j]
                            a4 += p * vt[4 * m64 + j]
                            a5 += p * vt[5 * m64 + j]
                            a6 += p * vt[6 * m64 + j]
                            a7 += p * vt[7 * m64 + j]
                        out[orow], out[orow + 1] = a0 * inv, a1 * inv
                        out[orow + 2], out[orow + 3] = a2 * inv, a3 * inv
                        out[orow + 4], out[orow + 5] = a4 * inv, a5 * inv
                        out[orow + 6], out[orow + 7] = a6 * inv, a7 * inv
                        continue
                    for dd in range(d):
                        vrow = uint64(dd * m)
                        acc = _ZERO
                        for j in range(m64):
                            acc += s[j] * vt[vrow + j]
                        out[orow + dd] = acc * inv
            job = claim(counter)
