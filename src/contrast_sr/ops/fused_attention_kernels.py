"""numba kernels of :mod:`contrast_sr.ops.fused_attention` (needs numba; float32, flat arrays).

Layouts: q, out, dq (J, n, d); k, v, dk, dv (J, m, d); J = batch * windows * heads with the head
fastest, so head = j % heads; bias (heads, n, m) or empty; lse (J, n) the log-sum-exp of each
query's scores. The keys and values of one (window, head) are transposed into (d, m) buffers, so
every per-query step is a vector loop over the m keys; scores never leave the cache. Head dim 8
(the light models') has one-pass loops with eight sums (`_pv8`, `_dp_dv8`, `_dq_dk8`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from contrast_sr.ops.numba_intrinsics import claim
from contrast_sr.ops.scan.numba_kernels import _FASTMATH, _ONE, _ZERO, _exp


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _load_t(src, j, m, d, dst):
    """dst (d, m) = src[j] (m, d) transposed."""
    base = j * m * d
    for t in range(m):
        for dd in range(d):
            dst[dd * m + t] = src[base + t * d + dd]


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _scores(q, qrow, kt, bias, brow, has_bias, scale, m, d, s):
    """s (m,) = bias row + scale * q[qrow:qrow+d] . kt."""
    m64 = uint64(m)
    if has_bias:
        for t in range(m64):
            s[t] = bias[brow + t]
    else:
        for t in range(m64):
            s[t] = _ZERO
    if d == 8:  # the light models' head dim: one pass over the keys, not eight
        q0, q1 = q[qrow] * scale, q[qrow + 1] * scale
        q2, q3 = q[qrow + 2] * scale, q[qrow + 3] * scale
        q4, q5 = q[qrow + 4] * scale, q[qrow + 5] * scale
        q6, q7 = q[qrow + 6] * scale, q[qrow + 7] * scale
        for t in range(m64):
            s[t] += (
                q0 * kt[t] + q1 * kt[m64 + t] + q2 * kt[2 * m64 + t] + q3 * kt[3 * m64 + t]
                + q4 * kt[4 * m64 + t] + q5 * kt[5 * m64 + t] + q6 * kt[6 * m64 + t]
                + q7 * kt[7 * m64 + t]
            )  # fmt: skip
        return
    for dd in range(d):
        qv = q[qrow + dd] * scale
        krow = uint64(dd * m)
        for t in range(m64):
            s[t] += qv * kt[krow + t]


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _pv8(p, vt, out, orow, inv, m64):
    """Head dim 8: out = inv * p . vt, one pass over the keys with eight sums."""
    r1, r2, r3, r4, r5, r6, r7 = m64, 2 * m64, 3 * m64, 4 * m64, 5 * m64, 6 * m64, 7 * m64
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _ZERO
    for t in range(m64):
        w = p[t]
        a0 += w * vt[t]
        a1 += w * vt[r1 + t]
        a2 += w * vt[r2 + t]
        a3 += w * vt[r3 + t]
        a4 += w * vt[r4 + t]
        a5 += w * vt[r5 + t]
        a6 += w * vt[r6 + t]
        a7 += w * vt[r7 + t]
    out[orow], out[orow + 1] = a0 * inv, a1 * inv
    out[orow + 2], out[orow + 3] = a2 * inv, a3 * inv
    out[orow + 4], out[orow + 5] = a4 * inv, a5 * inv
    out[orow + 6], out[orow + 7] = a6 * inv, a7 * inv


@njit(parallel=True, fastmath=_FASTMATH, cache=True, error_model="numpy")
def attention_forward(q, k, v, bias, out, lse, J, heads, n, m, d, scale):
    has_bias = bias.shape[0] > 0
    m64 = uint64(m)
    jobs = J
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        j = claim(counter)
        while j < jobs:
            head = j % heads
            kt = np.empty(d * m, dtype=np.float32)
            vt = np.empty(d * m, dtype=np.float32)
            s = np.empty(m, dtype=np.float32)
            _load_t(k, j, m, d, kt)
            _load_t(v, j, m, d, vt)
            for i in range(n):
                qrow = uint64((j * n + i) * d)
                _scores(q, qrow, kt, bias, uint64((head * n + i) * m), has_bias, scale, m, d, s)
                mx = s[0]
                for t in range(m64):
                    mx = max(mx, s[t])
                total = _ZERO
                for t in range(m64):
                    e = _exp(s[t] - mx)
                    s[t] = e
                    total += e
                inv = _ONE / total
                lse[j * n + i] = mx + np.log(total)
                if d == 8:
                    _pv8(s, vt, out, qrow, inv, m64)
                    continue
                for dd in range(d):
                    vrow = uint64(dd * m)
                    acc = _ZERO
                    for t in range(m64):
                        acc += s[t] * vt[vrow + t]
                    out[qrow + dd] = acc * inv
            j = claim(counter)


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _dp_dv8(dout, qrow, vt, s, dp, dvt, m64):
    """Head dim 8: dp = dout . vt and dvt += dout outer p, one pass over the keys."""
    g0, g1, g2, g3 = dout[qrow], dout[qrow + 1], dout[qrow + 2], dout[qrow + 3]
    g4, g5, g6, g7 = dout[qrow + 4], dout[qrow + 5], dout[qrow + 6], dout[qrow + 7]
    r1, r2, r3, r4, r5, r6, r7 = m64, 2 * m64, 3 * m64, 4 * m64, 5 * m64, 6 * m64, 7 * m64
    for t in range(m64):
        p = s[t]
        dp[t] = (
            g0 * vt[t] + g1 * vt[r1 + t] + g2 * vt[r2 + t] + g3 * vt[r3 + t]
            + g4 * vt[r4 + t] + g5 * vt[r5 + t] + g6 * vt[r6 + t] + g7 * vt[r7 + t]
        )  # fmt: skip
        dvt[t] += g0 * p
        dvt[r1 + t] += g1 * p
        dvt[r2 + t] += g2 * p
        dvt[r3 + t] += g3 * p
        dvt[r4 + t] += g4 * p
        dvt[r5 + t] += g5 * p
        dvt[r6 + t] += g6 * p
        dvt[r7 + t] += g7 * p


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _dq_dk8(q, qrow, kt, ds, dkt, dq, scale, m64):
    """Head dim 8: dq = scale * ds . kt and dkt += scale * q outer ds, one pass over the keys."""
    q0, q1 = q[qrow] * scale, q[qrow + 1] * scale
    q2, q3 = q[qrow + 2] * scale, q[qrow + 3] * scale
    q4, q5 = q[qrow + 4] * scale, q[qrow + 5] * scale
    q6, q7 = q[qrow + 6] * scale, q[qrow + 7] * scale
    r1, r2, r3, r4, r5, r6, r7 = m64, 2 * m64, 3 * m64, 4 * m64, 5 * m64, 6 * m64, 7 * m64
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _ZERO
    for t in range(m64):
        g = ds[t]
        a0 += g * kt[t]
        a1 += g * kt[r1 + t]
        a2 += g * kt[r2 + t]
        a3 += g * kt[r3 + t]
        a4 += g * kt[r4 + t]
        a5 += g * kt[r5 + t]
        a6 += g * kt[r6 + t]
        a7 += g * kt[r7 + t]
        dkt[t] += g * q0
        dkt[r1 + t] += g * q1
        dkt[r2 + t] += g * q2
        dkt[r3 + t] += g * q3
        dkt[r4 + t] += g * q4
        dkt[r5 + t] += g * q5
        dkt[r6 + t] += g * q6
        dkt[r7 + t] += g * q7
    dq[qrow], dq[qrow + 1] = a0 * scale, a1 * scale
    dq[qrow + 2], dq[qrow + 3] = a2 * scale, a3 * scale
    dq[qrow + 4], dq[qrow + 5] = a4 * scale, a5 * scale
    dq[qrow + 6], dq[qrow + 7] = a6 * scale, a7 * scale


@njit(parallel=True, fastmath=_FASTMATH, cache=True, error_model="numpy")
def attention_backward(
    q, k, v, bias, out, lse, dout, dq, dk, dv, dbias_p, J, heads, groups, n, m, d, scale
):
    """Jobs (group, head): the windows of one head, split in ``groups``; each job's bias
    gradient goes to its own dbias_p[group, head] (n, m) slice (summed by the caller)."""
    has_bias = bias.shape[0] > 0
    m64 = uint64(m)
    windows = J // heads
    jobs = groups * heads
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        job = claim(counter)
        while job < jobs:
            g = job // heads
            head = job % heads
            kt = np.empty(d * m, dtype=np.float32)
            vt = np.empty(d * m, dtype=np.float32)
            dkt = np.empty(d * m, dtype=np.float32)
            dvt = np.empty(d * m, dtype=np.float32)
            s = np.empty(m, dtype=np.float32)
            dp = np.empty(m, dtype=np.float32)
            gbase = uint64((g * heads + head) * n * m)
            if has_bias:
                for t in range(n * m):
                    dbias_p[gbase + t] = _ZERO
            for w in range(g, windows, groups):
                j = w * heads + head
                _load_t(k, j, m, d, kt)
                _load_t(v, j, m, d, vt)
                for t in range(d * m):
                    dkt[t] = _ZERO
                    dvt[t] = _ZERO
                for i in range(n):
                    qrow = uint64((j * n + i) * d)
                    _scores(q, qrow, kt, bias, uint64((head * n + i) * m), has_bias, scale, m, d, s)
                    shift = lse[j * n + i]
                    for t in range(m64):
                        s[t] = _exp(s[t] - shift)  # the probabilities p
                    delta = _ZERO
                    for dd in range(d):
                        delta += dout[qrow + dd] * out[qrow + dd]
                    if d == 8:
                        _dp_dv8(dout, qrow, vt, s, dp, dvt, m64)
                    else:
                        for t in range(m64):
                            dp[t] = _ZERO
                        for dd in range(d):
                            go = dout[qrow + dd]
                            row = uint64(dd * m)
                            for t in range(m64):
                                dp[t] += go * vt[row + t]
                                dvt[row + t] += go * s[t]
                    for t in range(m64):
                        dp[t] = s[t] * (dp[t] - delta)  # dS, the gradient of the scores
                    if has_bias:
                        brow = gbase + uint64(i * m)
                        for t in range(m64):
                            dbias_p[brow + t] += dp[t]
                    if d == 8:
                        _dq_dk8(q, qrow, kt, dp, dkt, dq, scale, m64)
                        continue
                    for dd in range(d):
                        row = uint64(dd * m)
                        qv = q[qrow + dd] * scale
                        acc = _ZERO
                        for t in range(m64):
                            acc += dp[t] * kt[row + t]
                            dkt[row + t] += dp[t] * qv
                        dq[qrow + dd] = acc * scale
                base = j * m * d
                for t in range(m):
                    for dd in range(d):
                        dk[base + t * d + dd] = dkt[dd * m + t]
                        dv[base + t * d + dd] = dvt[dd * m + t]
            job = claim(counter)
