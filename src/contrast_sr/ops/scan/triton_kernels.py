"""The Triton kernels of the "triton" scan backend (Mamba-1 selective scan, float32 state).

Importing this module needs triton; :mod:`contrast_sr.ops.scan.triton_gpu` imports it lazily and
wraps the kernels in autograd. Under ``TRITON_INTERPRET=1`` (set before this module is imported)
the same kernels run on CPU tensors through Triton's interpreter.

Work split: one program per (batch row ``bi``, channel tile, time segment ``p``), a 1-D grid in
that order. A channel tile is ``BLOCK_D`` channels of ONE group g (tile j of group g holds
channels ``g*Dg + j*BLOCK_D + [0, BLOCK_D)``, masked to the group's ``Dg = dim/G`` channels), so
B_t and C_t are a single (N,) vector per step, broadcast over the tile. Each program walks its
segment of ``SEG`` steps (a multiple of the checkpoint interval ``K``) one step at a time with
its state h (BLOCK_D, BLOCK_N) in registers; the state entering a segment is the sum over the
earlier segments' summaries (``*_segment_kernel``, run first when there are several segments):
the scan is linear, so h_in(p) = hsum(p-1) + exp(A * dtsum(p-1)) * h_in(p-1).

Layouts (contiguous): u, delta, y, gu, gdelta, gy (b, L, dim); B, C (b, L, G, N); A (dim, N);
D, bias (dim,); checkpoints S (b, ceil(L/K), dim, N), the state before step k*K; segment
summaries hsum / csum (b, P, dim, N) and dtsum (b, P, dim); partial sums gBp, gCp
(tiles per group, b, L, G, N) and gAp (b*P, dim, N), gDp, gbp (b*P, dim); scratch
(programs, K, BLOCK_D, BLOCK_N), the backward's recomputed states of one K-step chunk.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _coords(L, SEG, NSEG, SEG0, G, TPG, Dg, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, N):
    """This program's batch row (int64), group, tile-in-group, segment and step range, channels
    (BLOCK_D,) with their mask, and the state lanes (BLOCK_N,) with theirs."""
    pid = tl.program_id(0)
    p = pid % NSEG + SEG0
    tile = (pid // NSEG) % (G * TPG)
    bi = (pid // (NSEG * G * TPG)).to(tl.int64)
    g = tile // TPG
    j = tile % TPG
    in_group = j * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = in_group < Dg
    chan = g * Dg + in_group
    lanes = tl.arange(0, BLOCK_N)
    mask_n = lanes < N
    t_start = p * SEG
    t_stop = tl.minimum(t_start + SEG, L)
    return bi, g, j, p, t_start, t_stop, chan, mask_d, lanes, mask_n


@triton.jit
def _params(A_ptr, bias_ptr, N, chan, mask_d, lanes, mask_n):
    """A (BLOCK_D, BLOCK_N) and bias (BLOCK_D,) of the tile, float32, zero where masked."""
    mask2 = mask_d[:, None] & mask_n[None, :]
    A = tl.load(A_ptr + chan[:, None] * N + lanes[None, :], mask=mask2, other=0.0)
    bias = tl.load(bias_ptr + chan, mask=mask_d, other=0.0)
    return A, bias, mask2


@triton.jit
def _step_dt(delta_ptr, off, mask_d, bias, SOFTPLUS: tl.constexpr):
    """delta_t + bias (+ softplus) for a channel tile, float32."""
    dt = tl.load(delta_ptr + off, mask=mask_d, other=0.0).to(tl.float32) + bias
    if SOFTPLUS:  # max(z, 0) + log1p(exp(-|z|)), log1p(e) = log(w) * e / (w - 1), w = 1 + e
        e = tl.exp(-tl.abs(dt))
        w = 1.0 + e
        dt = tl.maximum(dt, 0.0) + tl.where(w == 1.0, e, tl.log(w) * e / (w - 1.0))
    return dt


@triton.jit
def _step_inputs(u_ptr, delta_ptr, B_ptr, off, bc, mask_d, mask_n, bias, SOFTPLUS: tl.constexpr):
    """(u_t, dt_t, B_t) of one step, float32: the channel tile's u and dt, the group's B."""
    uv = tl.load(u_ptr + off, mask=mask_d, other=0.0).to(tl.float32)
    dt = _step_dt(delta_ptr, off, mask_d, bias, SOFTPLUS)
    Bv = tl.load(B_ptr + bc, mask=mask_n, other=0.0).to(tl.float32)
    return uv, dt, Bv


@triton.jit
def fwd_segment_kernel(
    u_ptr, delta_ptr, bias_ptr, A_ptr, B_ptr, hsum_ptr, dtsum_ptr,
    L, dim, Dg, G, N, TPG, P, SEG, NSEG,
    SOFTPLUS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Segments 0..NSEG-1: the end state from a zero start (hsum) and sum of dt (dtsum)."""
    bi, g, _j, p, t0, t1, chan, mask_d, lanes, mask_n = _coords(
        L, SEG, NSEG, 0, G, TPG, Dg, BLOCK_D, BLOCK_N, N
    )
    A, bias, mask2 = _params(A_ptr, bias_ptr, N, chan, mask_d, lanes, mask_n)
    h = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dts = tl.zeros((BLOCK_D,), tl.float32)
    for t in range(t0, t1):
        row = bi * L + t
        off = row * dim + chan
        bc = (row * G + g) * N + lanes
        uv, dt, Bv = _step_inputs(u_ptr, delta_ptr, B_ptr, off, bc, mask_d, mask_n, bias, SOFTPLUS)
        decay = tl.exp(dt[:, None] * A)
        h = decay * h + (dt * uv)[:, None] * Bv[None, :]
        dts += dt
    seg = bi * P + p
    tl.store(hsum_ptr + (seg * dim + chan[:, None]) * N + lanes[None, :], h, mask=mask2)
    tl.store(dtsum_ptr + seg * dim + chan, dts, mask=mask_d)


@triton.jit
def fwd_kernel(
    u_ptr, delta_ptr, bias_ptr, A_ptr, B_ptr, C_ptr, D_ptr, y_ptr, S_ptr, hsum_ptr, dtsum_ptr,
    L, dim, Dg, G, N, TPG, P, SEG, K, NCK,
    SOFTPLUS: tl.constexpr, SAVE: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """y for every step of one (row, tile, segment); with SAVE, the state every K steps in S."""
    bi, g, _j, p, t_start, t_stop, chan, mask_d, lanes, mask_n = _coords(
        L, SEG, P, 0, G, TPG, Dg, BLOCK_D, BLOCK_N, N
    )
    A, bias, mask2 = _params(A_ptr, bias_ptr, N, chan, mask_d, lanes, mask_n)
    Dv = tl.load(D_ptr + chan, mask=mask_d, other=0.0)
    h = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    for q in range(0, p):  # the state entering this segment, from the earlier summaries
        seg = bi * P + q
        dts = tl.load(dtsum_ptr + seg * dim + chan, mask=mask_d, other=0.0)
        hs = tl.load(hsum_ptr + (seg * dim + chan[:, None]) * N + lanes[None, :], mask=mask2)
        h = tl.exp(dts[:, None] * A) * h + tl.where(mask2, hs, 0.0)
    for c0 in range(t_start, t_stop, K):
        if SAVE:
            ck = bi * NCK + c0 // K
            tl.store(S_ptr + (ck * dim + chan[:, None]) * N + lanes[None, :], h, mask=mask2)
        for t in range(c0, tl.minimum(c0 + K, t_stop)):
            row = bi * L + t
            off = row * dim + chan
            bc = (row * G + g) * N + lanes
            uv, dt, Bv = _step_inputs(
                u_ptr, delta_ptr, B_ptr, off, bc, mask_d, mask_n, bias, SOFTPLUS
            )
            decay = tl.exp(dt[:, None] * A)
            h = decay * h + (dt * uv)[:, None] * Bv[None, :]
            Cv = tl.load(C_ptr + bc, mask=mask_n, other=0.0).to(tl.float32)
            y = tl.sum(h * Cv[None, :], axis=1) + Dv * uv
            tl.store(y_ptr + off, y.to(y_ptr.dtype.element_ty), mask=mask_d)


@triton.jit
def bwd_segment_kernel(
    delta_ptr, bias_ptr, A_ptr, C_ptr, gy_ptr, csum_ptr, dtsum_ptr,
    L, dim, Dg, G, N, TPG, P, SEG, NSEG,
    SOFTPLUS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Segments 1..NSEG: the adjoint carry a_t0 * G_t0 leaving the segment's start when zero
    enters its end (csum), and the sum of dt (dtsum)."""
    bi, g, _j, p, t0, t1, chan, mask_d, lanes, mask_n = _coords(
        L, SEG, NSEG, 1, G, TPG, Dg, BLOCK_D, BLOCK_N, N
    )
    A, bias, mask2 = _params(A_ptr, bias_ptr, N, chan, mask_d, lanes, mask_n)
    carry = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dts = tl.zeros((BLOCK_D,), tl.float32)
    for tt in range(0, t1 - t0):
        row = bi * L + (t1 - 1 - tt)
        off = row * dim + chan
        dt = _step_dt(delta_ptr, off, mask_d, bias, SOFTPLUS)
        gyv = tl.load(gy_ptr + off, mask=mask_d, other=0.0).to(tl.float32)
        Cv = tl.load(C_ptr + (row * G + g) * N + lanes, mask=mask_n, other=0.0).to(tl.float32)
        carry = tl.exp(dt[:, None] * A) * (gyv[:, None] * Cv[None, :] + carry)
        dts += dt
    seg = bi * P + p
    tl.store(csum_ptr + (seg * dim + chan[:, None]) * N + lanes[None, :], carry, mask=mask2)
    tl.store(dtsum_ptr + seg * dim + chan, dts, mask=mask_d)


@triton.jit
def bwd_kernel(
    u_ptr, delta_ptr, bias_ptr, A_ptr, B_ptr, C_ptr, D_ptr, gy_ptr, S_ptr, csum_ptr, dtsum_ptr,
    scratch_ptr, gu_ptr, gdelta_ptr, gBp_ptr, gCp_ptr, gAp_ptr, gDp_ptr, gbp_ptr,
    nbatch, L, dim, Dg, G, N, TPG, P, SEG, K, NCK,
    SOFTPLUS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Adjoint pass of one (row, tile, segment), K-step chunks from the last: recompute the
    chunk's states from its checkpoint into scratch, then run G_t = C_t*gy_t + a_{t+1} G_{t+1}
    back through them, writing gu, gdelta, this tile's gB/gC sums, and per-program gA, gD, gbias."""
    bi, g, j, p, t_start, t_stop, chan, mask_d, lanes, mask_n = _coords(
        L, SEG, P, 0, G, TPG, Dg, BLOCK_D, BLOCK_N, N
    )
    A, bias, mask2 = _params(A_ptr, bias_ptr, N, chan, mask_d, lanes, mask_n)
    Dv = tl.load(D_ptr + chan, mask=mask_d, other=0.0)
    carry = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)  # a_{t+1} * G_{t+1}
    for qq in range(0, P - 1 - p):  # the carry entering this segment's end, from the later ones
        seg = bi * P + (P - 1 - qq)
        dts = tl.load(dtsum_ptr + seg * dim + chan, mask=mask_d, other=0.0)
        cs = tl.load(csum_ptr + (seg * dim + chan[:, None]) * N + lanes[None, :], mask=mask2)
        carry = tl.exp(dts[:, None] * A) * carry + tl.where(mask2, cs, 0.0)
    gA = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    gD = tl.zeros((BLOCK_D,), tl.float32)
    gb = tl.zeros((BLOCK_D,), tl.float32)
    tile_lanes = tl.arange(0, BLOCK_D)[:, None] * BLOCK_N + lanes[None, :]
    scratch = scratch_ptr + tl.program_id(0).to(tl.int64) * K * BLOCK_D * BLOCK_N + tile_lanes
    nchunks = tl.cdiv(t_stop - t_start, K)
    for kk in range(0, nchunks):
        c0 = t_start + (nchunks - 1 - kk) * K
        c1 = tl.minimum(c0 + K, t_stop)
        ck = bi * NCK + c0 // K
        h = tl.load(S_ptr + (ck * dim + chan[:, None]) * N + lanes[None, :], mask=mask2, other=0.0)
        for t in range(c0, c1):  # scratch[t - c0] = h_{t-1}
            tl.store(scratch + (t - c0) * BLOCK_D * BLOCK_N, h)
            row = bi * L + t
            off = row * dim + chan
            bc = (row * G + g) * N + lanes
            uv, dt, Bv = _step_inputs(
                u_ptr, delta_ptr, B_ptr, off, bc, mask_d, mask_n, bias, SOFTPLUS
            )
            decay = tl.exp(dt[:, None] * A)
            h = decay * h + (dt * uv)[:, None] * Bv[None, :]
        tl.debug_barrier()
        for tt in range(0, c1 - c0):
            t = c1 - 1 - tt
            row = bi * L + t
            h_prev = tl.load(scratch + (t - c0) * BLOCK_D * BLOCK_N)
            off = row * dim + chan
            bc = (row * G + g) * N + lanes
            uv, dt, Bv = _step_inputs(
                u_ptr, delta_ptr, B_ptr, off, bc, mask_d, mask_n, bias, SOFTPLUS
            )
            decay = tl.exp(dt[:, None] * A)
            h = decay * h_prev + (dt * uv)[:, None] * Bv[None, :]
            gyv = tl.load(gy_ptr + off, mask=mask_d, other=0.0).to(tl.float32)
            Cv = tl.load(C_ptr + bc, mask=mask_n, other=0.0).to(tl.float32)
            Gt = gyv[:, None] * Cv[None, :] + carry
            sum_gb = tl.sum(Gt * Bv[None, :], axis=1)
            q = Gt * decay * h_prev
            gA += q * dt[:, None]
            gdt = uv * sum_gb + tl.sum(q * A, axis=1)
            if SOFTPLUS:  # d softplus(z)/dz = sigmoid(z) = 1 - exp(-softplus(z))
                gdt = gdt * (1.0 - tl.exp(-dt))
            gu = dt * sum_gb + Dv * gyv
            tl.store(gu_ptr + off, gu.to(gu_ptr.dtype.element_ty), mask=mask_d)
            tl.store(gdelta_ptr + off, gdt.to(gdelta_ptr.dtype.element_ty), mask=mask_d)
            out = (((j * nbatch + bi) * L + t) * G + g) * N + lanes
            tl.store(gBp_ptr + out, tl.sum(Gt * (dt * uv)[:, None], axis=0), mask=mask_n)
            tl.store(gCp_ptr + out, tl.sum(gyv[:, None] * h, axis=0), mask=mask_n)
            carry = decay * Gt
            gD += gyv * uv
            gb += gdt
        tl.debug_barrier()  # this chunk's reads of scratch before the next chunk's writes
    seg = bi * P + p
    tl.store(gAp_ptr + (seg * dim + chan[:, None]) * N + lanes[None, :], gA, mask=mask2)
    tl.store(gDp_ptr + seg * dim + chan, gD, mask=mask_d)
    tl.store(gbp_ptr + seg * dim + chan, gb, mask=mask_d)
