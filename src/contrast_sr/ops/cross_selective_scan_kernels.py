"""numba kernels of the fused SS2D scan (:mod:`contrast_sr.ops.cross_selective_scan`).

Importing this module needs numba. Every array is flat (C order) float32; K = 4 directions.
Direction k scans orientation ``o = k % 2`` (0: the tokens in row-major order, 1: in
column-major order), forwards for k < 2 and backwards for k >= 2, so every walk is a sequential
pass over memory. Layouts (L = h*w, P = R + 2N):

* x (b, L, D) row-major tokens, xT (b, L, D) the same in column-major order;
* z[o] (b, L, 2, P): dt_low, B, C of directions o and o + 2 for each token of orientation o;
* WT (K, R, D) dt_proj weights transposed; bias, Ds (K*D,); At (N, K*D) A transposed;
* out, gout (b, parts, L, D): each job's output in its orientation's token order;
* dt (b, 2, L, 2, D) delta after softplus, S (b, K, ceil(L/Kc), N, D) the state every Kc steps.

A job is (batch row, part, channel tile [c0, c1)); part p of 2 runs directions p and p + 2 (one
orientation), part p of 4 direction p.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from contrast_sr.ops.numba_intrinsics import claim
from contrast_sr.ops.scan.numba_kernels import _FASTMATH, _ONE, _ZERO, _exp, _softplus

K = 4


@njit(inline="always")
def directions(p, parts):
    """The directions part ``p`` of ``parts`` (2 or 4) runs, as range bounds and a step."""
    return (p, K, 2) if parts == 2 else (p, p + 1, 1)


@njit(fastmath=_FASTMATH, cache=True, error_model="numpy")
def _forward_job(
    x, xT, z0, z1, WT, bias, At, Ds, out, dt_out, S, L, D, R, N, Kc, c0, c1, bi, p, parts
):
    """The directions of part ``p`` for batch row ``bi`` on channels [c0, c1). Saves dt and
    the checkpoints when ``dt_out`` is not empty."""
    P = R + 2 * N
    wd = c1 - c0
    w64 = uint64(wd)
    save = dt_out.shape[0] > 0
    nseg = (L + Kc - 1) // Kc if save else 0
    dt = np.empty(wd, dtype=np.float32)
    acc = np.empty(wd, dtype=np.float32)
    hs = np.empty(N * wd, dtype=np.float32)
    k_first, k_end, k_step = directions(p, parts)
    for k in range(k_first, k_end, k_step):
        o = k % 2
        rev = k // 2
        xa = x if o == 0 else xT
        za = z0 if o == 0 else z1
        ch = uint64(k * D + c0)
        for i in range(N * wd):
            hs[i] = _ZERO
        for t in range(L):
            s = L - 1 - t if rev else t
            xrow = uint64((bi * L + s) * D + c0)
            zrow = uint64(((bi * L + s) * 2 + rev) * P)
            orow = uint64(((bi * parts + p) * L + s) * D + c0)
            if save and t % Kc == 0:
                for n in range(N):
                    srow = uint64((((bi * K + k) * nseg + t // Kc) * N + n) * D + c0)
                    for c in range(w64):
                        S[srow + c] = hs[uint64(n * wd) + c]
            for c in range(w64):
                dt[c] = bias[ch + c]
            for r in range(R):
                zr = za[zrow + uint64(r)]
                wrow = uint64((k * R + r) * D + c0)
                for c in range(w64):
                    dt[c] += WT[wrow + c] * zr
            for c in range(w64):
                dt[c] = _softplus(dt[c])
                acc[c] = Ds[ch + c] * xa[xrow + c]
            if save:
                drow = uint64((((bi * 2 + o) * L + s) * 2 + rev) * D + c0)
                for c in range(w64):
                    dt_out[drow + c] = dt[c]
            for n in range(N):
                bn = za[zrow + uint64(R + n)]
                cn = za[zrow + uint64(R + N + n)]
                arow = uint64(n * K * D) + ch
                hrow = uint64(n * wd)
                for c in range(w64):
                    dv = dt[c]
                    hv = _exp(dv * At[arow + c]) * hs[hrow + c] + dv * xa[xrow + c] * bn
                    hs[hrow + c] = hv
                    acc[c] += cn * hv
            if k == k_first:
                for c in range(w64):
                    out[orow + c] = acc[c]
            else:
                for c in range(w64):
                    out[orow + c] += acc[c]


@njit(parallel=True, cache=True)
def forward_kernel(x, xT, z0, z1, WT, bias, At, Ds, out, dt_out, S, b, L, D, R, N, Kc, tile, parts):
    ntiles = (D + tile - 1) // tile
    jobs = b * parts * ntiles
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        job = claim(counter)
        while job < jobs:
            bi = job // (parts * ntiles)
            p = (job // ntiles) % parts
            c0 = (job % ntiles) * tile
            c1 = min(c0 + tile, D)
            _forward_job(
                x, xT, z0, z1, WT, bias, At, Ds, out, dt_out, S, L, D, R, N, Kc, c0, c1, bi, p,
                parts,
            )  # fmt: skip
            job = claim(counter)


@njit(fastmath=_FASTMATH, cache=True, error_model="numpy")
def _backward_job(
    x, xT, z0, z1, WT, dt, At, Ds, gout, S, L, D, R, N, Kc,
    gx, gz0, gz1, gWp, gbp, gAp, gDp, c0, c1, bi, p, parts, tile_id, ntiles,
):  # fmt: skip
    """Adjoint of :func:`_forward_job`, per direction segment by segment from the end.

    gx (b, parts, L, D) this part's input gradient in its orientation's order; gz0, gz1
    (b, ntiles, L, 2, P) partial over tiles; gWp (b, K, R, D), gbp, gDp (b, K*D),
    gAp (b, N, K*D) partial over the batch.
    """
    P = R + 2 * N
    wd = c1 - c0
    w64 = uint64(wd)
    nseg = (L + Kc - 1) // Kc
    hs = np.empty((Kc + 1) * N * wd, dtype=np.float32)  # state before step t0 + j
    As = np.empty(Kc * N * wd, dtype=np.float32)
    carry = np.empty(N * wd, dtype=np.float32)
    gA = np.empty(N * wd, dtype=np.float32)
    gW = np.empty(R * wd, dtype=np.float32)
    gD = np.empty(wd, dtype=np.float32)
    gb = np.empty(wd, dtype=np.float32)
    sgb = np.empty(wd, dtype=np.float32)
    sqa = np.empty(wd, dtype=np.float32)
    tb = np.empty(wd, dtype=np.float32)
    tc = np.empty(wd, dtype=np.float32)
    gz = np.empty(wd, dtype=np.float32)
    k_first, k_end, k_step = directions(p, parts)
    for k in range(k_first, k_end, k_step):
        o = k % 2
        rev = k // 2
        xa = x if o == 0 else xT
        za = z0 if o == 0 else z1
        gza = gz0 if o == 0 else gz1
        ch = uint64(k * D + c0)
        for i in range(N * wd):
            carry[i] = _ZERO
            gA[i] = _ZERO
        for i in range(R * wd):
            gW[i] = _ZERO
        for c in range(w64):
            gD[c] = _ZERO
            gb[c] = _ZERO
        for seg in range(nseg - 1, -1, -1):
            t0 = seg * Kc
            t1 = min(L, t0 + Kc)
            for n in range(N):
                srow = uint64((((bi * K + k) * nseg + seg) * N + n) * D + c0)
                for c in range(w64):
                    hs[uint64(n * wd) + c] = S[srow + c]
            for t in range(t0, t1):
                j = t - t0
                s = L - 1 - t if rev else t
                xrow = uint64((bi * L + s) * D + c0)
                zrow = uint64(((bi * L + s) * 2 + rev) * P)
                drow = uint64((((bi * 2 + o) * L + s) * 2 + rev) * D + c0)
                for n in range(N):
                    bn = za[zrow + uint64(R + n)]
                    arow = uint64(n * K * D) + ch
                    hp = uint64((j * N + n) * wd)
                    hc = uint64(((j + 1) * N + n) * wd)
                    for c in range(w64):
                        dv = dt[drow + c]
                        a = _exp(dv * At[arow + c])
                        As[hp + c] = a
                        hs[hc + c] = a * hs[hp + c] + dv * xa[xrow + c] * bn
            for t in range(t1 - 1, t0 - 1, -1):
                j = t - t0
                s = L - 1 - t if rev else t
                xrow = uint64((bi * L + s) * D + c0)
                zrow = uint64(((bi * L + s) * 2 + rev) * P)
                drow = uint64((((bi * 2 + o) * L + s) * 2 + rev) * D + c0)
                grow = uint64(((bi * parts + p) * L + s) * D + c0)
                orow = uint64((((bi * ntiles + tile_id) * L + s) * 2 + rev) * P)
                for c in range(w64):
                    sgb[c] = _ZERO
                    sqa[c] = _ZERO
                for n in range(N):
                    bn = za[zrow + uint64(R + n)]
                    cn = za[zrow + uint64(R + N + n)]
                    arow = uint64(n * K * D) + ch
                    hp = uint64((j * N + n) * wd)
                    hc = uint64(((j + 1) * N + n) * wd)
                    nw = uint64(n * wd)
                    # two loops over fewer arrays each: LLVM vectorises them better
                    for c in range(w64):
                        gv = gout[grow + c] * cn + carry[nw + c]
                        a = As[hp + c]
                        q = gv * a * hs[hp + c]
                        gA[nw + c] += q * dt[drow + c]
                        sqa[c] += q * At[arow + c]
                        carry[nw + c] = a * gv
                        tb[c] = gv
                    for c in range(w64):
                        sgb[c] += tb[c] * bn
                        tb[c] = tb[c] * dt[drow + c] * xa[xrow + c]
                        tc[c] = gout[grow + c] * hs[hc + c]
                    sb = _ZERO
                    sc = _ZERO
                    for c in range(w64):
                        sb += tb[c]
                        sc += tc[c]
                    gza[orow + uint64(R + n)] = sb
                    gza[orow + uint64(R + N + n)] = sc
                # short loops: as one, LLVM leaves the exp unvectorised (too many arrays)
                if k == k_first:
                    for c in range(w64):
                        gx[grow + c] = dt[drow + c] * sgb[c] + gout[grow + c] * Ds[ch + c]
                else:
                    for c in range(w64):
                        gx[grow + c] += dt[drow + c] * sgb[c] + gout[grow + c] * Ds[ch + c]
                for c in range(w64):
                    dv = dt[drow + c]  # softplus' derivative is 1 - exp(-dt)
                    gz[c] = (xa[xrow + c] * sgb[c] + sqa[c]) * (_ONE - _exp(-dv))
                for c in range(w64):
                    gb[c] += gz[c]
                    gD[c] += gout[grow + c] * xa[xrow + c]
                for r in range(R):
                    zr = za[zrow + uint64(r)]
                    wrow = uint64((k * R + r) * D + c0)
                    sr = _ZERO
                    for c in range(w64):
                        sr += gz[c] * WT[wrow + c]
                        gW[uint64(r * wd) + c] += gz[c] * zr
                    gza[orow + uint64(r)] = sr
        for n in range(N):
            orow = uint64((bi * N + n) * K * D) + ch
            for c in range(w64):
                gAp[orow + c] = gA[uint64(n * wd) + c]
        for r in range(R):
            orow = uint64(((bi * K + k) * R + r) * D + c0)
            for c in range(w64):
                gWp[orow + c] = gW[uint64(r * wd) + c]
        orow = uint64(bi * K * D) + ch
        for c in range(w64):
            gDp[orow + c] = gD[c]
            gbp[orow + c] = gb[c]


@njit(parallel=True, cache=True)
def backward_kernel(
    x, xT, z0, z1, WT, dt, At, Ds, gout, S, b, L, D, R, N, Kc, tile, parts,
    gx, gz0, gz1, gWp, gbp, gAp, gDp,
):  # fmt: skip
    ntiles = (D + tile - 1) // tile
    jobs = b * parts * ntiles
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(jobs):  # shares taken by claim(), not by prange
        job = claim(counter)
        while job < jobs:
            bi = job // (parts * ntiles)
            p = (job // ntiles) % parts
            tile_id = job % ntiles
            c0 = tile_id * tile
            c1 = min(c0 + tile, D)
            _backward_job(
                x, xT, z0, z1, WT, dt, At, Ds, gout, S, L, D, R, N, Kc,
                gx, gz0, gz1, gWp, gbp, gAp, gDp, c0, c1, bi, p, parts, tile_id, ntiles,
            )  # fmt: skip
            job = claim(counter)
