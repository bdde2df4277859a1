"""Triton kernels of the Mamba-2 SSD chunked scan (launched by :mod:`contrast_sr.ops.ssd_triton`).

One program per (batch, head, chunk) for the chunk kernels, one per (batch, head, state tile)
for the state passing, which runs sequentially over the chunks. Per chunk of T steps, with
``a = dt * A`` (log-decays <= 0) and ``xdt = x * dt``::

    W[t, s] = exp(sum_{s<i<=t} a_i)  (s <= t, else 0)     cum_t = sum_{i<=t} a_i
    f_s     = exp(sum_{s<i<T} a_i)                        (decay from step s to the chunk end)
    end     = sum_s f_s outer(xdt_s, B_s)                 (the chunk's end state from zero)
    S_{c+1} = exp(cum_{T-1}) S_c + end_c                  (state entering chunk c + 1)
    y_t     = sum_s (C_t . B_s) W[t, s] xdt_s + exp(cum_t) S_c C_t + D x_t

Segment sums are masked sums of the log-decays (a cumulative sum over a T x T tile), never a
difference of two cumulative sums, so no exponent is positive and strong decays lose nothing to
cancellation. Every tile is padded to a power of two >= 16 (``tl.dot``'s minimum) and masked;
steps past L or past the chunk act as dt = 0. All arithmetic is float32 (``tl.dot`` in IEEE
float32, no TF32); x, B, C, dy are read in their own dtype, y and dx written in x's dtype.
State buffers are contiguous float32 (b, n_chunks, heads, P, N); totals (b, heads, n_chunks).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _decay_matrix(a, idx):
    """W (BT, BT) of one chunk from its masked log-decays a (BT,): exp(sum_{s<i<=t} a_i)."""
    masked = tl.where(idx[:, None] > idx[None, :], a[:, None], 0.0)  # [i, s]: a_i if i > s
    seg = tl.cumsum(masked, axis=0)  # [t, s]: sum_{s<i<=t} a_i, 0 for s >= t
    return tl.where(idx[:, None] >= idx[None, :], tl.exp(seg), 0.0)


@triton.jit
def _decay_to_end(a, idx):
    """f (BT,): exp(sum_{i>s} a_i), the decay from step s to the chunk's end (a is 0 past it)."""
    return tl.exp(tl.sum(tl.where(idx[:, None] > idx[None, :], a[:, None], 0.0), axis=0))


@triton.jit
def _chunk_coords(H, R, L, T, BT: tl.constexpr):
    """This program's batch, head, group, chunk, n_chunks, index, step and valid (BT,)."""
    pid = tl.program_id(0)
    n_chunks = tl.cdiv(L, T)
    chunk = pid % n_chunks
    bh = pid // n_chunks
    b = (bh // H).to(tl.int64)
    h = bh % H
    idx = tl.arange(0, BT)
    pos = chunk * T + idx
    valid = (idx < T) & (pos < L)
    return b, h, h // R, chunk, n_chunks, idx, pos.to(tl.int64), valid


@triton.jit
def _load_rows(ptr, b, pos, head, valid, s_b, s_l, s_h, s_c, width, BW: tl.constexpr):
    """(BT, BW) float32 tile ptr[b, pos, head, :width], zero where masked."""
    col = tl.arange(0, BW)
    offs = b * s_b + pos[:, None] * s_l + head * s_h + col[None, :] * s_c
    mask = valid[:, None] & (col[None, :] < width)
    return tl.load(ptr + offs, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _state_offsets(b, h, chunk, n_chunks, H, P, N, BP: tl.constexpr, BN: tl.constexpr):
    """Offsets and mask of the (BP, BN) tile of state[b, chunk, h] in a (b, nc, H, P, N) buffer."""
    p = tl.arange(0, BP)
    n = tl.arange(0, BN)
    base = ((b * n_chunks + chunk) * H + h) * P * N
    return base + p[:, None] * N + n[None, :], (p[:, None] < P) & (n[None, :] < N)


@triton.jit
def ssd_chunk_state_fwd(
    x_ptr, dt_ptr, A_ptr, B_ptr, ends_ptr, tot_ptr,
    H, R, L, T, P, N,
    sx_b, sx_l, sx_h, sx_p, sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n,
    BT: tl.constexpr, BP: tl.constexpr, BN: tl.constexpr,
):  # fmt: skip
    """ends[b, c, h] = sum_s f_s outer(xdt_s, B_s) (P, N); tot[b, h, c] = sum_s a_s."""
    b, h, grp, chunk, n_chunks, idx, pos, valid = _chunk_coords(H, R, L, T, BT)
    dt = tl.load(dt_ptr + b * sdt_b + pos * sdt_l + h * sdt_h, mask=valid, other=0.0)
    a = dt * tl.load(A_ptr + h)
    f = _decay_to_end(a, idx)
    x = _load_rows(x_ptr, b, pos, h, valid, sx_b, sx_l, sx_h, sx_p, P, BP)
    Bm = _load_rows(B_ptr, b, pos, grp, valid, sB_b, sB_l, sB_g, sB_n, N, BN)
    xdt_f = x * (dt * f)[:, None]
    end = tl.dot(tl.trans(xdt_f), Bm, input_precision="ieee")  # (BP, BN)
    offs, mask = _state_offsets(b, h, chunk, n_chunks, H, P, N, BP, BN)
    tl.store(ends_ptr + offs, end, mask=mask)
    tl.store(tot_ptr + (b * H + h) * n_chunks + chunk, tl.sum(a, axis=0))


@triton.jit
def ssd_state_passing_fwd(states_ptr, tot_ptr, H, n_chunks, PN, BS: tl.constexpr):
    """In place: chunk-end states (from zero) -> states entering each chunk (S_0 = 0)."""
    bh = tl.program_id(0).to(tl.int64)
    e = tl.program_id(1) * BS + tl.arange(0, BS)
    mask = e < PN
    b = bh // H
    h = bh % H
    state = tl.zeros((BS,), dtype=tl.float32)
    for c in range(0, n_chunks):
        offs = ((b * n_chunks + c) * H + h) * PN + e
        end = tl.load(states_ptr + offs, mask=mask, other=0.0)
        tl.store(states_ptr + offs, state, mask=mask)
        state = tl.exp(tl.load(tot_ptr + bh * n_chunks + c)) * state + end


@triton.jit
def ssd_chunk_scan_fwd(
    x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, states_ptr, y_ptr,
    H, R, L, T, P, N,
    sx_b, sx_l, sx_h, sx_p, sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n,
    sC_b, sC_l, sC_g, sC_n, sy_b, sy_l, sy_h, sy_p,
    HAS_D: tl.constexpr, BT: tl.constexpr, BP: tl.constexpr, BN: tl.constexpr,
):  # fmt: skip
    """y = (C B^T o W) xdt + exp(cum) C S_c^T (+ D x) for one chunk of one head."""
    b, h, grp, chunk, n_chunks, idx, pos, valid = _chunk_coords(H, R, L, T, BT)
    dt = tl.load(dt_ptr + b * sdt_b + pos * sdt_l + h * sdt_h, mask=valid, other=0.0)
    a = dt * tl.load(A_ptr + h)
    cum = tl.cumsum(a, axis=0)
    W = _decay_matrix(a, idx)
    x = _load_rows(x_ptr, b, pos, h, valid, sx_b, sx_l, sx_h, sx_p, P, BP)
    Bm = _load_rows(B_ptr, b, pos, grp, valid, sB_b, sB_l, sB_g, sB_n, N, BN)
    Cm = _load_rows(C_ptr, b, pos, grp, valid, sC_b, sC_l, sC_g, sC_n, N, BN)
    offs, mask = _state_offsets(b, h, chunk, n_chunks, H, P, N, BP, BN)
    S = tl.load(states_ptr + offs, mask=mask, other=0.0)
    M = tl.dot(Cm, tl.trans(Bm), input_precision="ieee") * W  # (BT, BT)
    y = tl.dot(M, x * dt[:, None], input_precision="ieee")
    y += tl.exp(cum)[:, None] * tl.dot(Cm, tl.trans(S), input_precision="ieee")
    col = tl.arange(0, BP)
    if HAS_D:
        y += tl.load(D_ptr + h * P + col, mask=col < P, other=0.0)[None, :] * x
    y_offs = b * sy_b + pos[:, None] * sy_l + h * sy_h + col[None, :] * sy_p
    tl.store(y_ptr + y_offs, y, mask=valid[:, None] & (col[None, :] < P))


@triton.jit
def ssd_chunk_dstate_bwd(
    dt_ptr, A_ptr, C_ptr, dy_ptr, dstates_ptr,
    H, R, L, T, P, N,
    sdt_b, sdt_l, sdt_h, sC_b, sC_l, sC_g, sC_n, sdy_b, sdy_l, sdy_h, sdy_p,
    BT: tl.constexpr, BP: tl.constexpr, BN: tl.constexpr,
):  # fmt: skip
    """dstates[b, c, h] = sum_t exp(cum_t) outer(dy_t, C_t): the chunk's own gradient of S_c."""
    b, h, grp, chunk, n_chunks, _, pos, valid = _chunk_coords(H, R, L, T, BT)
    dt = tl.load(dt_ptr + b * sdt_b + pos * sdt_l + h * sdt_h, mask=valid, other=0.0)
    cum = tl.cumsum(dt * tl.load(A_ptr + h), axis=0)
    dy = _load_rows(dy_ptr, b, pos, h, valid, sdy_b, sdy_l, sdy_h, sdy_p, P, BP)
    Cm = _load_rows(C_ptr, b, pos, grp, valid, sC_b, sC_l, sC_g, sC_n, N, BN)
    dS = tl.dot(tl.trans(dy * tl.exp(cum)[:, None]), Cm, input_precision="ieee")
    offs, mask = _state_offsets(b, h, chunk, n_chunks, H, P, N, BP, BN)
    tl.store(dstates_ptr + offs, dS, mask=mask)


@triton.jit
def ssd_state_passing_bwd(
    dstates_ptr, states_ptr, tot_ptr, dtot_ptr, H, n_chunks, PN, n_tiles, BS: tl.constexpr
):
    """In place: each chunk's own dS_c -> d end_c (the gradient entering S_{c+1}), backwards.

    dtot[b, h, c, tile] = exp(tot_c) * sum(dS_{c+1} * S_c) over this tile (summed afterwards).
    """
    bh = tl.program_id(0).to(tl.int64)
    tile = tl.program_id(1)
    e = tile * BS + tl.arange(0, BS)
    mask = e < PN
    b = bh // H
    h = bh % H
    grad = tl.zeros((BS,), dtype=tl.float32)  # gradient of the state entering chunk c + 1
    for i in range(0, n_chunks):
        c = n_chunks - 1 - i
        offs = ((b * n_chunks + c) * H + h) * PN + e
        own = tl.load(dstates_ptr + offs, mask=mask, other=0.0)
        S = tl.load(states_ptr + offs, mask=mask, other=0.0)
        tl.store(dstates_ptr + offs, grad, mask=mask)
        decay = tl.exp(tl.load(tot_ptr + bh * n_chunks + c))
        tl.store(dtot_ptr + (bh * n_chunks + c) * n_tiles + tile, decay * tl.sum(grad * S, axis=0))
        grad = own + decay * grad


@triton.jit
def ssd_chunk_scan_bwd(
    x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, dy_ptr, states_ptr, dends_ptr, dtot_ptr,
    dx_ptr, ddt_ptr, dB_ptr, dC_ptr, dA_ptr, dD_ptr,
    H, R, L, T, P, N,
    sx_b, sx_l, sx_h, sx_p, sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n,
    sC_b, sC_l, sC_g, sC_n, sdy_b, sdy_l, sdy_h, sdy_p,
    HAS_D: tl.constexpr, BT: tl.constexpr, BP: tl.constexpr, BN: tl.constexpr,
):  # fmt: skip
    """Every input gradient of one chunk of one head, given dy, S_c and d end_c.

    Writes dx (b, L, H, P) in dx's dtype; ddt (b, L, H), dB and dC per head (b, L, H, N), and
    per-chunk partial sums dA (b, H, nc) and dD (b, H, nc, P), all contiguous float32.
    """
    b, h, grp, chunk, n_chunks, idx, pos, valid = _chunk_coords(H, R, L, T, BT)
    dt = tl.load(dt_ptr + b * sdt_b + pos * sdt_l + h * sdt_h, mask=valid, other=0.0)
    A = tl.load(A_ptr + h)
    a = dt * A
    e = tl.exp(tl.cumsum(a, axis=0))
    f = _decay_to_end(a, idx)
    W = _decay_matrix(a, idx)
    x = _load_rows(x_ptr, b, pos, h, valid, sx_b, sx_l, sx_h, sx_p, P, BP)
    Bm = _load_rows(B_ptr, b, pos, grp, valid, sB_b, sB_l, sB_g, sB_n, N, BN)
    Cm = _load_rows(C_ptr, b, pos, grp, valid, sC_b, sC_l, sC_g, sC_n, N, BN)
    dy = _load_rows(dy_ptr, b, pos, h, valid, sdy_b, sdy_l, sdy_h, sdy_p, P, BP)
    offs, mask = _state_offsets(b, h, chunk, n_chunks, H, P, N, BP, BN)
    S = tl.load(states_ptr + offs, mask=mask, other=0.0)
    dE = tl.load(dends_ptr + offs, mask=mask, other=0.0)
    xdt = x * dt[:, None]

    G = tl.dot(Cm, tl.trans(Bm), input_precision="ieee")  # (BT, BT): C_t . B_s
    dGW = tl.dot(dy, tl.trans(xdt), input_precision="ieee") * W  # dy_t . xdt_s, masked
    BdE = tl.dot(Bm, tl.trans(dE), input_precision="ieee")  # (BT, BP)
    dC = tl.dot(dGW, Bm, input_precision="ieee")
    dC += e[:, None] * tl.dot(dy, S, input_precision="ieee")
    dB = tl.dot(tl.trans(dGW), Cm, input_precision="ieee")
    dB += f[:, None] * tl.dot(xdt, dE, input_precision="ieee")
    dxdt = tl.dot(tl.trans(G * W), dy, input_precision="ieee") + f[:, None] * BdE

    # log-decay gradient, each term a sum of the exponents' own gradients (no differences):
    # a_i is in seg[t, s] for s < i <= t, in cum_t for t >= i, in f_s for s < i, and in tot
    Q = G * dGW  # gradient of seg[t, s]
    q = e * tl.sum(dy * tl.dot(Cm, tl.trans(S), input_precision="ieee"), axis=1)  # of cum_t
    u = f * tl.sum(xdt * BdE, axis=1)  # of log f_s
    before = idx[:, None] > idx[None, :]  # [i, s]: s < i
    da = tl.sum(tl.where(before, tl.cumsum(Q, axis=0, reverse=True), 0.0), axis=1)
    da += tl.cumsum(q, axis=0, reverse=True)
    da += tl.sum(tl.where(before, u[None, :], 0.0), axis=1)
    da = tl.where(valid, da + tl.load(dtot_ptr + (b * H + h) * n_chunks + chunk), 0.0)

    col = tl.arange(0, BP)
    dx = dxdt * dt[:, None]
    if HAS_D:
        Dv = tl.load(D_ptr + h * P + col, mask=col < P, other=0.0)
        dx += Dv[None, :] * dy
        d_offs = ((b * H + h) * n_chunks + chunk) * P + col
        tl.store(dD_ptr + d_offs, tl.sum(dy * x, axis=0), mask=col < P)
    rows = b * L * H + pos * H + h  # row of (b, L, H) for the contiguous outputs
    tile = valid[:, None] & (col[None, :] < P)
    tl.store(dx_ptr + rows[:, None] * P + col[None, :], dx, mask=tile)
    tl.store(ddt_ptr + rows, tl.sum(dxdt * x, axis=1) + da * A, mask=valid)
    n = tl.arange(0, BN)
    nmask = valid[:, None] & (n[None, :] < N)
    tl.store(dB_ptr + rows[:, None] * N + n[None, :], dB, mask=nmask)
    tl.store(dC_ptr + rows[:, None] * N + n[None, :], dC, mask=nmask)
    tl.store(dA_ptr + (b * H + h) * n_chunks + chunk, tl.sum(da * dt, axis=0))
