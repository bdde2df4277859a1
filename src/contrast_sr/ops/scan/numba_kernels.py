"""The numba kernels of the "numba" scan backend (fused CPU selective scan, float32).

Importing this module needs numba; :mod:`contrast_sr.ops.scan.numba_cpu` imports it only when
numba is installed and wraps :func:`forward_kernel` / :func:`backward_kernel` in autograd.

Every array is flat (C order) float32. Work is split into jobs of (batch row, channel tile
``[c0, c1)``); each job walks L once with the tile's channels in vectorised inner loops, so the
states stay in L1. Layouts: u, delta, dt, y, gu, gdt (b, L, dim); B, C (b, L, G, N); At (N, dim)
(A transposed); D, bias (dim,); checkpointed states S (b, ceil(L/K), N, dim).

With ``mamba`` true, u, delta, y, gy, gu and gdt are in mamba_ssm's (b, dim, L) layout instead
(N = 1 for the backward): the jobs transpose (channels x steps) blocks into local buffers
(:func:`_stage_in`, :func:`_stage_out`), so no transposed copy of a whole map is made; dt and
the backward's copy of u stay (b, L, dim).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from contrast_sr.ops.numba_intrinsics import as_float32, claim, transpose16
from contrast_sr.ops.scan.numba_vector import GROUP, forward_step_n1

_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
STAGE = 64  # steps per staged block of a mamba-layout forward (the backward uses K)
VECTOR_STEP_REVISION = 1  # bump with every change to numba_vector (numba's cache sees this file)

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


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _exp(x):
    """float32 exp for x in [-87, 88] (clamped), relative error ~2e-7."""
    x = min(max(x, _LO), _HI)
    k = np.floor(x * _LOG2E + _HALF)
    r = x - k * _LN2_HI - k * _LN2_LO
    p = _ONE + r * (_ONE + r * (_P2 + r * (_P3 + r * (_P4 + r * (_P5 + r * (_P6 + r * _P7))))))
    scale = as_float32((np.int32(k) + np.int32(127)) << np.int32(23))
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


@njit(inline="always", error_model="numpy")
def _stage_in(dst, src, bi, c0, w, dim, L, t0, n):
    """dst[j * w + c] = src[bi, c0 + c, t0 + j] for j < n: a (channels x steps) block of a
    mamba-layout (b, dim, L) array, transposed into the kernel's (steps, lanes) order, 16 x 16
    blocks in registers (:func:`~contrast_sr.ops.numba_intrinsics.transpose16`)."""
    w16, n16 = w - w % 16, n - n % 16
    row0 = uint64((bi * dim + c0) * L + t0)
    for cb in range(0, w16, 16):
        for j0 in range(0, n16, 16):
            transpose16(
                dst, uint64(j0 * w + cb), uint64(w), src, row0 + uint64(cb * L + j0), uint64(L)
            )
    for c in range(w):
        for j in range(n16 if c < w16 else 0, n):
            dst[uint64(j * w + c)] = src[row0 + uint64(c * L + j)]


@njit(inline="always", error_model="numpy")
def _stage_out(dst, src, bi, c0, w, dim, L, t0, n):
    """The inverse of :func:`_stage_in`: dst[bi, c0 + c, t0 + j] = src[j * w + c]."""
    w16, n16 = w - w % 16, n - n % 16
    row0 = uint64((bi * dim + c0) * L + t0)
    for cb in range(0, w16, 16):
        for j0 in range(0, n16, 16):
            transpose16(
                dst, row0 + uint64(cb * L + j0), uint64(L), src, uint64(j0 * w + cb), uint64(w)
            )
    for c in range(w):
        for j in range(n16 if c < w16 else 0, n):
            dst[row0 + uint64(c * L + j)] = src[uint64(j * w + c)]


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _forward_step(
    ua, da, ya, ir, row, brow, bias, softplus, At, B, C, D, dt_out, save_dt, dim, G, N,
    c0, c1, dt, h, acc, bl, cl,
):  # fmt: skip
    """One step on lanes [c0, c1): u, delta, y at ``ua[ir:]``, ``da[ir:]``, ``ya[ir:]`` (the
    arrays themselves or staged blocks: each call site is compiled for its own arrays, so
    LLVM vectorises both), dt_out at ``row``, B and C at ``brow``."""
    w64 = uint64(c1 - c0)
    Dg = dim // G
    for c in range(w64):
        acc[c] = D[uint64(c0) + c] * ua[ir + c]
        z = da[ir + c] + bias[uint64(c0) + c]
        dt[c] = _softplus(z) if softplus else z
    if save_dt:
        for c in range(w64):
            dt_out[row + c] = dt[c]
    for n in range(N):
        _spread(bl, B, brow, n, N, c0, c1, Dg)
        _spread(cl, C, brow, n, N, c0, c1, Dg)
        arow = uint64(n * dim + c0)
        hrow = uint64(n * (c1 - c0))
        for c in range(w64):
            dv = dt[c]
            hv = _exp(dv * At[arow + c]) * h[hrow + c] + dv * ua[ir + c] * bl[c]
            h[hrow + c] = hv
            acc[c] += cl[c] * hv
    for c in range(w64):
        ya[ir + c] = acc[c]


@njit(inline="always", error_model="numpy")
def _vector_groups(c0, w, Dg, G):
    """Per 16-lane vector of lanes [c0, c0 + w): its first lane's group, the next group and
    how many of its lanes are in the first (``forward_step_n1``'s B/C spread; room for a
    masked group of ``GROUP`` vectors past the end). Groups of >= 16 lanes (Dg >= 16) cover a
    vector in at most two; narrower ones take the general step."""
    nvec = (w + 15) // 16 + GROUP
    first_group = np.zeros(nvec, dtype=np.int64)
    next_group = np.zeros(nvec, dtype=np.int64)
    split = np.full(nvec, 16, dtype=np.int64)
    for j in range((w + 15) // 16):
        lane0 = c0 + 16 * j
        g = lane0 // Dg
        first_group[j] = g
        next_group[j] = min(g + 1, G - 1)
        split[j] = min(16, (g + 1) * Dg - lane0)
    return first_group, next_group, split


@njit(fastmath=_FASTMATH, cache=True, error_model="numpy")
def _forward_job(
    u, delta, bias, softplus, At, B, C, D, y, dt_out, u_out, S, b, L, dim, G, N, K, c0, c1, bi,
    mamba,
):  # fmt: skip
    """One job: batch row ``bi``, channels [c0, c1). Flat arrays; uint64 indices keep
    the inner loops free of negative-index checks so LLVM vectorises them. Writes
    dt = softplus(delta + bias) to ``dt_out`` (always (b, L, dim)) when it is not empty.
    ``mamba``: u, delta and y are (b, dim, L), staged through (STAGE, lanes) blocks, and u
    is also written to ``u_out`` (b, L, dim) when that is not empty (for the backward)."""
    w = c1 - c0
    w64 = uint64(w)
    save_dt = dt_out.shape[0] > 0
    save_u = u_out.shape[0] > 0
    dt = np.empty(w, dtype=np.float32)
    h = np.zeros(N * w, dtype=np.float32)
    acc = np.empty(w, dtype=np.float32)
    bl = np.empty(w, dtype=np.float32)
    cl = np.empty(w, dtype=np.float32)
    nseg = (L + K - 1) // K if K > 0 else 0
    nb = STAGE * w if mamba else 0
    ub = np.empty(nb, dtype=np.float32)
    db = np.empty(nb, dtype=np.float32)
    yb = np.empty(nb, dtype=np.float32)
    # the step in explicit vectors (numba_vector.forward_step_n1) where a vector spans <= 2 groups
    vector = N == 1 and softplus and (G == 1 or dim // G >= 16)
    first_group, next_group, split = _vector_groups(c0, w, dim // G, G)
    for t in range(L):
        row = uint64((bi * L + t) * dim + c0)
        brow = uint64((bi * L + t) * G * N)
        if K > 0 and t % K == 0:
            for n in range(N):
                srow = uint64(((bi * nseg + t // K) * N + n) * dim + c0)
                hrow = uint64(n * w)
                for c in range(w64):
                    S[srow + c] = h[hrow + c]
        if mamba:
            j = t % STAGE
            if j == 0:
                _stage_in(ub, u, bi, c0, w, dim, L, t, min(STAGE, L - t))
                _stage_in(db, delta, bi, c0, w, dim, L, t, min(STAGE, L - t))
            if save_u:
                for c in range(w64):
                    u_out[row + c] = ub[uint64(j * w) + c]
            if vector:
                forward_step_n1(
                    ub, db, yb, uint64(j * w), row, brow, bias, At, B, C, D, dt_out, save_dt,
                    uint64(c0), w64, h, first_group, next_group, split,
                )  # fmt: skip
            else:
                _forward_step(
                    ub, db, yb, uint64(j * w), row, brow, bias, softplus, At, B, C, D, dt_out,
                    save_dt, dim, G, N, c0, c1, dt, h, acc, bl, cl,
                )  # fmt: skip
            if j == STAGE - 1 or t == L - 1:
                _stage_out(y, yb, bi, c0, w, dim, L, t - j, j + 1)
        elif vector:
            forward_step_n1(
                u, delta, y, row, row, brow, bias, At, B, C, D, dt_out, save_dt, uint64(c0), w64,
                h, first_group, next_group, split,
            )  # fmt: skip
        else:
            _forward_step(
                u, delta, y, row, row, brow, bias, softplus, At, B, C, D, dt_out, save_dt,
                dim, G, N, c0, c1, dt, h, acc, bl, cl,
            )  # fmt: skip


@njit(parallel=True, cache=True)
def forward_kernel(
    u, delta, bias, softplus, At, B, C, D, y, dt_out, u_out, S, b, L, dim, G, N, K, tile, mamba
):
    ntiles = (dim + tile - 1) // tile
    jobs = b * ntiles
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        job = claim(counter)
        while job < jobs:
            bi = job // ntiles
            c0 = (job % ntiles) * tile
            c1 = min(c0 + tile, dim)
            _forward_job(
                u, delta, bias, softplus, At, B, C, D, y, dt_out, u_out, S, b, L, dim, G, N,
                K, c0, c1, bi, mamba,
            )  # fmt: skip
            job = claim(counter)


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


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _recompute_step_n1(ua, ya, ir, row, brow, dt, B, C, Dg, c0, c1, Ac, hs, As, Bl, Gv, jw):
    """Step j of a segment (N = 1): the decay and the next state, B spread over the lanes,
    and gy * C; u at ``ua[row:]`` (always (b, L, dim)), gy at ``ya[ir:]`` (the array or a
    staged block: each call site is compiled for its own arrays). B and gy * C are written
    group by group in one loop: two :func:`_spread` calls and a third loop took 1.3x as long."""
    w64 = uint64(c1 - c0)
    for g in range(c0 // Dg, (c1 - 1) // Dg + 1):
        vb = B[brow + uint64(g)]
        vc = C[brow + uint64(g)]
        lo = uint64(max(c0, g * Dg) - c0)
        hi = uint64(min(c1, (g + 1) * Dg) - c0)
        for c in range(lo, hi):
            Bl[jw + c] = vb
            Gv[jw + c] = ya[ir + c] * vc
    for c in range(w64):
        dv = dt[row + c]
        a = _exp(dv * Ac[c])
        As[jw + c] = a
        hs[jw + w64 + c] = a * hs[jw + c] + dv * ua[row + c] * Bl[jw + c]


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _gradient_step_n1(
    ua, ya, ga, da, ir, row, o, dt, Ac, Dc, sp, c0, c1, Dg, g_first, g_last, hs, As, Bl, Gv,
    gA, gD, gb, gBp, gCp, jw,
):  # fmt: skip
    """Every gradient of step j (N = 1) from its adjoint ``Gv[jw:]``; u at ``ua[row:]``;
    gy, gu, gdt at ``ya``, ``ga``, ``da`` [ir:]; gB, gC of group g at ``gBp[o + g]``.
    The elementwise gradients share one loop (each input loaded once): as four loops over
    two scratch rows the backward took 1.1x as long; the group sums stay apart (folded into
    that loop, per group, it took 1.3x)."""
    w64 = uint64(c1 - c0)
    for c in range(w64):
        gv = Gv[jw + c]
        dv = dt[row + c]
        uv = ua[row + c]
        gyv = ya[ir + c]
        q = gv * As[jw + c] * hs[jw + c]
        gA[c] += q * dv
        s = gv * Bl[jw + c]
        ga[ir + c] = dv * s + gyv * Dc[c]
        gd = (uv * s + q * Ac[c]) * (_ONE - sp * _exp(-dv))
        da[ir + c] = gd
        gb[c] += gd
        gD[c] += gyv * uv
    for g in range(g_first, g_last + 1):
        lo = uint64(max(c0, g * Dg) - c0)
        hi = uint64(min(c1, (g + 1) * Dg) - c0)
        sb = _ZERO
        sc = _ZERO
        for c in range(lo, hi):
            sb += Gv[jw + c] * dt[row + c] * ua[row + c]
            sc += ya[ir + c] * hs[jw + w64 + c]
        gBp[o + uint64(g)] = sb
        gCp[o + uint64(g)] = sc


@njit(fastmath=_FASTMATH, cache=True, error_model="numpy")
def _backward_job_n1(
    u, dt, At, B, C, D, gy, S, b, L, dim, G, K, softplus,
    gu, gdt, gBp, gCp, gAp, gDp, gbp, c0, c1, bi, tile_id, ntiles, mamba,
):  # fmt: skip
    """:func:`_backward_job` for N = 1 (every SS2D), staged so the big arrays are read and
    written in ascending order only.

    Per segment of K steps: (1) ascending, recompute the states and decays and stage
    gy * C; (2) descending, the adjoint recurrence alone, over the staged (K, w) buffers
    (in L2); (3) ascending, every gradient from the stored adjoints. Walking u, dt, gy, gu
    and gdt from the end of each segment, as the general kernel does, made its backward
    1.6x slower (measured at (8, 240, 1, 4096)). ``mamba``: gy, gu and gdt are (b, dim, L),
    staged per segment through (K, lanes) blocks; u and dt are the forward's (b, L, dim) copies.
    """
    w = c1 - c0
    w64 = uint64(w)
    Dg = dim // G
    nseg = (L + K - 1) // K
    hs = np.empty((K + 1) * w, dtype=np.float32)  # state before step t0 + j
    As = np.empty(K * w, dtype=np.float32)  # decay exp(dt * A) of step t0 + j
    Bl = np.empty(K * w, dtype=np.float32)  # B spread over the lanes
    Gv = np.empty(K * w, dtype=np.float32)  # gy * C, then the adjoint of the state
    carry = np.zeros(w, dtype=np.float32)  # a_{t+1} * adjoint_{t+1}
    gA = np.zeros(w, dtype=np.float32)  # this segment's sums; tA, tD, tb the totals
    gD = np.zeros(w, dtype=np.float32)
    gb = np.zeros(w, dtype=np.float32)
    tA = np.zeros(w, dtype=np.float32)
    tD = np.zeros(w, dtype=np.float32)
    tb = np.zeros(w, dtype=np.float32)
    nb = K * w if mamba else 0
    gyb = np.empty(nb, dtype=np.float32)
    gub = np.empty(nb, dtype=np.float32)
    gdtb = np.empty(nb, dtype=np.float32)
    Ac = At[c0:c1]
    Dc = D[c0:c1]
    g_first = c0 // Dg
    g_last = (c1 - 1) // Dg
    sp = _ONE if softplus else _ZERO
    for seg in range(nseg - 1, -1, -1):
        t0 = seg * K
        t1 = min(L, t0 + K)
        srow = uint64((bi * nseg + seg) * dim + c0)
        for c in range(w64):
            hs[c] = S[srow + c]
        if mamba:
            _stage_in(gyb, gy, bi, c0, w, dim, L, t0, t1 - t0)
        for t in range(t0, t1):
            jw = uint64((t - t0) * w)
            row = uint64((bi * L + t) * dim + c0)
            brow = uint64((bi * L + t) * G)
            if mamba:
                _recompute_step_n1(
                    u, gyb, jw, row, brow, dt, B, C, Dg, c0, c1, Ac, hs, As, Bl, Gv, jw
                )
            else:
                _recompute_step_n1(
                    u, gy, row, row, brow, dt, B, C, Dg, c0, c1, Ac, hs, As, Bl, Gv, jw
                )
        for t in range(t1 - 1, t0 - 1, -1):
            jw = uint64((t - t0) * w)
            # over row views: indexed as Gv[jw + c], LLVM compiles this loop 2.5x slower
            gv_row = Gv[jw : jw + w64]
            a_row = As[jw : jw + w64]
            for c in range(w64):
                gv = gv_row[c] + carry[c]
                gv_row[c] = gv
                carry[c] = a_row[c] * gv
        for t in range(t0, t1):
            jw = uint64((t - t0) * w)
            row = uint64((bi * L + t) * dim + c0)
            o = uint64(((bi * L + t) * ntiles + tile_id) * G)
            if mamba:
                _gradient_step_n1(
                    u, gyb, gub, gdtb, jw, row, o, dt, Ac, Dc, sp, c0, c1, Dg, g_first,
                    g_last, hs, As, Bl, Gv, gA, gD, gb, gBp, gCp, jw,
                )  # fmt: skip
            else:
                _gradient_step_n1(
                    u, gy, gu, gdt, row, row, o, dt, Ac, Dc, sp, c0, c1, Dg, g_first,
                    g_last, hs, As, Bl, Gv, gA, gD, gb, gBp, gCp, jw,
                )  # fmt: skip
        if mamba:
            _stage_out(gu, gub, bi, c0, w, dim, L, t0, t1 - t0)
            _stage_out(gdt, gdtb, bi, c0, w, dim, L, t0, t1 - t0)
        for c in range(w64):  # segment sums, then the total: float32 rounding grows with K + nseg
            tA[c] += gA[c]
            tD[c] += gD[c]
            tb[c] += gb[c]
            gA[c] = _ZERO
            gD[c] = _ZERO
            gb[c] = _ZERO
    orow = uint64(bi * dim + c0)
    for c in range(w64):
        gAp[orow + c] = tA[c]
        gDp[orow + c] = tD[c]
        gbp[orow + c] = tb[c]


@njit(parallel=True, cache=True)
def backward_kernel(
    u, dt, At, B, C, D, gy, S, b, L, dim, G, N, K, softplus, tile,
    gu, gdt, gBp, gCp, gAp, gDp, gbp, mamba,
):  # fmt: skip
    """``mamba`` (gy, gu, gdt in (b, dim, L); u the forward's (b, L, dim) copy) needs N = 1."""
    ntiles = (dim + tile - 1) // tile
    jobs = b * ntiles
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):
        job = claim(counter)
        while job < jobs:
            bi = job // ntiles
            tile_id = job % ntiles
            c0 = tile_id * tile
            c1 = min(c0 + tile, dim)
            if N == 1:
                _backward_job_n1(
                    u, dt, At, B, C, D, gy, S, b, L, dim, G, K, softplus,
                    gu, gdt, gBp, gCp, gAp, gDp, gbp, c0, c1, bi, tile_id, ntiles, mamba,
                )  # fmt: skip
            else:
                _backward_job(
                    u, dt, At, B, C, D, gy, S, b, L, dim, G, N, K, softplus,
                    gu, gdt, gBp, gCp, gAp, gDp, gbp, c0, c1, bi, tile_id, ntiles,
                )  # fmt: skip
            job = claim(counter)
