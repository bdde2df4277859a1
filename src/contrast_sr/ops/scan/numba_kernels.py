"""The numba kernels of the "numba" scan backend (fused CPU selective scan, float32).

Importing this module needs numba; :mod:`contrast_sr.ops.scan.numba_cpu` imports it only when
numba is installed and wraps :func:`forward_kernel` / :func:`backward_kernel` in autograd.

Every array is flat (C order) float32. Work is split into jobs of (batch row, channel tile
``[c0, c1)``); each job walks L once with the tile's channels in vectorised inner loops, so the
states stay in L1. Layouts: u, delta, dt, y, gu, gdt (b, L, dim); B, C (b, L, G, N); At (N, dim)
(A transposed); D, bias (dim,); checkpointed states S (b, ceil(L/K), N, dim).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types, uint64
from numba.extending import intrinsic

_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693145751953125)
_LN2_LO = np.float32(1.428606765330187e-06)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_LO = np.float32(-87.0)
_HI = np.float32(88.0)
_P2 = np.float32(1 / 2)
_P3 = np.float32(1 / 6)
_P4 = np.float32(1 / 24)
_P5 = np.float32(1 / 120)
_P6 = np.float32(1 / 720)
_P7 = np.float32(1 / 5040)
_L3, _L5, _L7 = np.float32(1 / 3), np.float32(1 / 5), np.float32(1 / 7)
_L9, _L11, _L13 = np.float32(1 / 9), np.float32(1 / 11), np.float32(1 / 13)


@intrinsic
def _as_float32(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (vectorisable)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _exp(x):
    """float32 exp for x in [-87, 88] (clamped), relative error ~2e-7."""
    x = min(max(x, _LO), _HI)
    k = np.floor(x * _LOG2E + _HALF)
    r = x - k * _LN2_HI - k * _LN2_LO
    p = _ONE + r * (_ONE + r * (_P2 + r * (_P3 + r * (_P4 + r * (_P5 + r * (_P6 + r * _P7))))))
    scale = _as_float32((np.int32(k) + np.int32(127)) << np.int32(23))
    return p * scale


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _softplus(z):
    """float32 log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)); log1p by the atanh series
    (s = e / (2 + e) <= 1/3), relative error ~3e-7."""
    e = _exp(-abs(z))
    s = e / (np.float32(2.0) + e)
    s2 = s * s
    p = _L13
    p = p * s2 + _L11
    p = p * s2 + _L9
    p = p * s2 + _L7
    p = p * s2 + _L5
    p = p * s2 + _L3
    p = p * s2 + _ONE
    return max(z, _ZERO) + np.float32(2.0) * s * p


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _spread(dst, src, brow, n, N, c0, c1, Dg):
    """dst[c] = src[brow + group(c0 + c) * N + n]: one broadcast fill per group segment."""
    for g in range(c0 // Dg, (c1 - 1) // Dg + 1):
        v = src[brow + uint64(g * N + n)]
        lo = uint64(max(c0, g * Dg) - c0)
        hi = uint64(min(c1, (g + 1) * Dg) - c0)
        for c in range(lo, hi):
            dst[c] = v


@njit(fastmath=_FASTMATH, cache=True, error_model="numpy")
def _forward_job(
    u, delta, bias, softplus, At, B, C, D, y, dt_out, S, b, L, dim, G, N, K, c0, c1, bi
):
    """One job: batch row ``bi``, channels [c0, c1). Flat arrays; uint64 indices keep
    the inner loops free of negative-index checks so LLVM vectorises them. Writes
    dt = softplus(delta + bias) to ``dt_out`` when it is not empty."""
    w = c1 - c0
    w64 = uint64(w)
    Dg = dim // G
    save_dt = dt_out.shape[0] > 0
    dt = np.empty(w, dtype=np.float32)
    h = np.zeros(N * w, dtype=np.float32)
    acc = np.empty(w, dtype=np.float32)
    bl = np.empty(w, dtype=np.float32)
    cl = np.empty(w, dtype=np.float32)
    nseg = (L + K - 1) // K if K > 0 else 0
    for t in range(L):
        row = uint64((bi * L + t) * dim + c0)
        brow = uint64((bi * L + t) * G * N)
        if K > 0 and t % K == 0:
            for n in range(N):
                srow = uint64(((bi * nseg + t // K) * N + n) * dim + c0)
                hrow = uint64(n * w)
                for c in range(w64):
                    S[srow + c] = h[hrow + c]
        for c in range(w64):
            acc[c] = D[uint64(c0) + c] * u[row + c]
            z = delta[row + c] + bias[uint64(c0) + c]
            dt[c] = _softplus(z) if softplus else z
        if save_dt:
            for c in range(w64):
                dt_out[row + c] = dt[c]
        for n in range(N):
            _spread(bl, B, brow, n, N, c0, c1, Dg)
            _spread(cl, C, brow, n, N, c0, c1, Dg)
            arow = uint64(n * dim + c0)
            hrow = uint64(n * w)
            for c in range(w64):
                dv = dt[c]
                hv = _exp(dv * At[arow + c]) * h[hrow + c] + dv * u[row + c] * bl[c]
                h[hrow + c] = hv
                acc[c] += cl[c] * hv
        for c in range(w64):
            y[row + c] = acc[c]


@njit(parallel=True, cache=True)
def forward_kernel(u, delta, bias, softplus, At, B, C, D, y, dt_out, S, b, L, dim, G, N, K, tile):
    ntiles = (dim + tile - 1) // tile
    for job in prange(b * ntiles):
        bi = job // ntiles
        c0 = (job % ntiles) * tile
        c1 = min(c0 + tile, dim)
        _forward_job(
            u, delta, bias, softplus, At, B, C, D, y, dt_out, S, b, L, dim, G, N, K,
            c0, c1, bi,
        )  # fmt: skip


@njit(fastmath=_FASTMATH, cache=True, error_model="numpy")
def _backward_job(
    u, dt, At, B, C, D, gy, S, b, L, dim, G, N, K, softplus,
    gu, gdt, gBp, gCp, gAp, gDp, gbp, c0, c1, bi, tile_id, ntiles,
):  # fmt: skip
    """Adjoint pass of one job, segment by segment from the end.

    gu, gdt (b, L, dim); gBp, gCp (b, L, ntiles, G, N) partial sums over channel tiles;
    gAp (b, N, dim), gDp, gbp (b, dim) partial sums over time (all flat).
    """
    w = c1 - c0
    w64 = uint64(w)
    Dg = dim // G
    nseg = (L + K - 1) // K
    hs = np.empty((K + 1) * N * w, dtype=np.float32)  # state before step t0 + j
    As = np.empty(K * N * w, dtype=np.float32)
    carry = np.zeros(N * w, dtype=np.float32)  # a_{t+1} * G_{t+1}
    gA = np.zeros(N * w, dtype=np.float32)
    gD = np.zeros(w, dtype=np.float32)
    gb = np.zeros(w, dtype=np.float32)
    sgb = np.empty(w, dtype=np.float32)
    sqa = np.empty(w, dtype=np.float32)
    bl = np.empty(w, dtype=np.float32)
    cl = np.empty(w, dtype=np.float32)
    tb = np.empty(w, dtype=np.float32)
    tc = np.empty(w, dtype=np.float32)
    g_first = c0 // Dg
    g_last = (c1 - 1) // Dg
    sp = _ONE if softplus else _ZERO
    for seg in range(nseg - 1, -1, -1):
        t0 = seg * K
        t1 = min(L, t0 + K)
        for n in range(N):
            srow = uint64(((bi * nseg + seg) * N + n) * dim + c0)
            hrow = uint64(n * w)
            for c in range(w64):
                hs[hrow + c] = S[srow + c]
        for t in range(t0, t1):
            j = t - t0
            row = uint64((bi * L + t) * dim + c0)
            brow = uint64((bi * L + t) * G * N)
            for n in range(N):
                _spread(bl, B, brow, n, N, c0, c1, Dg)
                arow = uint64(n * dim + c0)
                hp = uint64((j * N + n) * w)
                hc = uint64(((j + 1) * N + n) * w)
                ar = uint64((j * N + n) * w)
                for c in range(w64):
                    dv = dt[row + c]
                    a = _exp(dv * At[arow + c])
                    As[ar + c] = a
                    hs[hc + c] = a * hs[hp + c] + dv * u[row + c] * bl[c]
        for t in range(t1 - 1, t0 - 1, -1):
            j = t - t0
            row = uint64((bi * L + t) * dim + c0)
            brow = uint64((bi * L + t) * G * N)
            for c in range(w64):
                sgb[c] = _ZERO
                sqa[c] = _ZERO
            for n in range(N):
                _spread(bl, B, brow, n, N, c0, c1, Dg)
                _spread(cl, C, brow, n, N, c0, c1, Dg)
                arow = uint64(n * dim + c0)
                hp = uint64((j * N + n) * w)
                hc = uint64(((j + 1) * N + n) * w)
                ar = uint64((j * N + n) * w)
                nw = uint64(n * w)
                # two loops over fewer arrays each, which LLVM vectorises better
                for c in range(w64):
                    gv = gy[row + c] * cl[c] + carry[nw + c]
                    a = As[ar + c]
                    q = gv * a * hs[hp + c]
                    gA[nw + c] += q * dt[row + c]
                    sqa[c] += q * At[arow + c]
                    carry[nw + c] = a * gv
                    tb[c] = gv
                for c in range(w64):
                    sgb[c] += tb[c] * bl[c]
                    tb[c] = tb[c] * dt[row + c] * u[row + c]
                    tc[c] = gy[row + c] * hs[hc + c]
                for g in range(g_first, g_last + 1):
                    lo = uint64(max(c0, g * Dg) - c0)
                    hi = uint64(min(c1, (g + 1) * Dg) - c0)
                    sb = _ZERO
                    sc = _ZERO
                    for c in range(lo, hi):
                        sb += tb[c]
                        sc += tc[c]
                    o = uint64((((bi * L + t) * ntiles + tile_id) * G + g) * N + n)
                    gBp[o] = sb
                    gCp[o] = sc
            # three short loops: as one loop over all these arrays LLVM leaves the exp below
            # unvectorised (too many possible overlaps), and the backward takes 1.4x as long
            for c in range(w64):
                gu[row + c] = dt[row + c] * sgb[c] + gy[row + c] * D[uint64(c0) + c]
            for c in range(w64):
                dv = dt[row + c]
                # d softplus(z)/dz = 1 - exp(-softplus(z)); branch-free so the loop vectorises
                gdt[row + c] = (u[row + c] * sgb[c] + sqa[c]) * (_ONE - sp * _exp(-dv))
            for c in range(w64):
                gb[c] += gdt[row + c]
                gD[c] += gy[row + c] * u[row + c]
    for n in range(N):
        orow = uint64((bi * N + n) * dim + c0)
        nw = uint64(n * w)
        for c in range(w64):
            gAp[orow + c] = gA[nw + c]
    orow = uint64(bi * dim + c0)
    for c in range(w64):
        gDp[orow + c] = gD[c]
        gbp[orow + c] = gb[c]


@njit(parallel=True, cache=True)
def backward_kernel(
    u, dt, At, B, C, D, gy, S, b, L, dim, G, N, K, softplus, tile,
    gu, gdt, gBp, gCp, gAp, gDp, gbp,
):  # fmt: skip
    ntiles = (dim + tile - 1) // tile
    for job in prange(b * ntiles):
        bi = job // ntiles
        tile_id = job % ntiles
        c0 = tile_id * tile
        c1 = min(c0 + tile, dim)
        _backward_job(
            u, dt, At, B, C, D, gy, S, b, L, dim, G, N, K, softplus,
            gu, gdt, gBp, gCp, gAp, gDp, gbp, c0, c1, bi, tile_id, ntiles,
        )  # fmt: skip
