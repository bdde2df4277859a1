"""numba kernels of :mod:`contrast_sr.ops.fused_attention` (needs numba; float32, flat arrays).

Layouts: q, out, dq (J, n, d); k, v, dk, dv (J, m, d); J = batch * windows * heads with the head
fastest, so head = j % heads; bias (heads, n, m) or empty; lse (J, n) the log-sum-exp of each
query's scores. The keys and values of one (window, head) are transposed into (d, m) buffers, so
every per-query step is a vector loop over the m keys; scores never leave the cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

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
    for dd in range(d):
        qv = q[qrow + dd] * scale
        krow = uint64(dd * m)
        for t in range(m64):
            s[t] += qv * kt[krow + t]


@njit(parallel=True, fastmath=_FASTMATH, cache=True, error_model="numpy")
def attention_forward(q, k, v, bias, out, lse, J, heads, n, m, d, scale):
    has_bias = bias.shape[0] > 0
    m64 = uint64(m)
    for j in prange(J):
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
            for dd in range(d):
                vrow = uint64(dd * m)
                acc = _ZERO
                for t in range(m64):
                    acc += s[t] * vt[vrow + t]
                out[qrow + dd] = acc * inv


@njit(parallel=True, fastmath=_FASTMATH, cache=True, error_model="numpy")
def attention_backward(
    q, k, v, bias, out, lse, dout, dq, dk, dv, dbias_p, J, heads, groups, n, m, d, scale
):
    """Jobs (group, head): the windows of one head, split in ``groups``; each job's bias
    gradient goes to its own dbias_p[group, head] (n, m) slice (summed by the caller)."""
    has_bias = bias.shape[0] > 0
    m64 = uint64(m)
    windows = J // heads
    for job in prange(groups * heads):
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
