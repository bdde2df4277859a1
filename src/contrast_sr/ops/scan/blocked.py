"""The "torch" scan backend: blocked two-level scan in plain PyTorch, hand-written backward.

Recurrence (per batch, channel d, state n), with ``delta <- softplus(delta + delta_bias)``::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = sum_n C_t[n] * h_t[n] + D * u_t

Channels-last layout (see :mod:`contrast_sr.ops.scan.checks`): u, delta (b, L, dim);
B, C (b, L, groups, N); channels ``[g*dim/groups, (g+1)*dim/groups)`` share group g's B and C.
It computes in float32 (float64 if u is float64) with autocast disabled and returns y in u's
dtype. L is cut into cache-sized blocks; inside a block, chunks run in parallel (pass 1:
chunk-end states), a short carry recurrence links them, and an exact pass 2 writes every state.
Only products of decays in (0, 1] occur, so no exponent can overflow. The backward is the
adjoint recurrence ``G_t = C_t*gy_t + exp(delta_{t+1} A) G_{t+1}`` run with the same primitive
in reverse, block by block from the end. The forward saves delta after softplus and, for N = 1,
every state (each the size of y); for N > 1 it saves the block-start states and the backward
recomputes a block's states, so extra memory is O(b*dim*L + b*dim*N*L/block).
"""

from __future__ import annotations

import math

import torch

from contrast_sr.ops.scan.checks import check_scan_args, compute_dtype
from contrast_sr.ops.tracing import detached_unless_grad

# ----------------------------------------------------------------------------- primitive


def _linear_scan(
    a: torch.Tensor,
    x: torch.Tensor,
    h0: torch.Tensor,
    out: torch.Tensor,
    chunk: int,
    reverse: bool = False,
) -> torch.Tensor:
    """Write ``out_t = a_t * out_{t-1} + x_t`` (``out_{-1} = h0``) and return the last state.

    a, x, out: (b, n, M) (any strides, M contiguous for speed); h0: (b, M). With ``reverse`` the
    recurrence runs from t = n-1 down to 0 (``out_n = h0``). Chunks of ``chunk`` steps run in
    parallel (two passes); the ragged tail runs step by step.
    """
    b, n, M = a.shape
    P = n // chunk if chunk > 1 else 0
    if P < 2:
        P = 0
    m = P * chunk
    h = h0
    if P:
        main = slice(n - m, n) if reverse else slice(0, m)
        av = a[:, main].reshape(b, P, chunk, M)
        xv = x[:, main].reshape(b, P, chunk, M)
        ov = out[:, main].view(b, P, chunk, M)
        steps = range(chunk - 1, -1, -1) if reverse else range(chunk)
        chunks = range(P - 1, -1, -1) if reverse else range(P)
        # pass 1: state at each chunk's end (from zero) and the chunk's decay product
        hs = xv[:, :, steps[0]].clone()
        ap = av[:, :, steps[0]].clone()
        for t in steps[1:]:
            torch.addcmul(xv[:, :, t], av[:, :, t], hs, out=hs)
            ap.mul_(av[:, :, t])
        # carries: the state entering each chunk
        carry = torch.empty_like(hs)
        carry[:, chunks[0]] = h0
        prev = chunks[0]
        for p in chunks[1:]:
            torch.addcmul(hs[:, prev], ap[:, prev], carry[:, prev], out=carry[:, p])
            prev = p
        # pass 2: exact states from the carries
        torch.addcmul(xv[:, :, steps[0]], av[:, :, steps[0]], carry, out=ov[:, :, steps[0]])
        prev = steps[0]
        for t in steps[1:]:
            torch.addcmul(xv[:, :, t], av[:, :, t], ov[:, :, prev], out=ov[:, :, t])
            prev = t
        h = ov[:, chunks[-1], steps[-1]]
    tail = range(n - m - 1, -1, -1) if reverse else range(m, n)
    for t in tail:
        torch.addcmul(x[:, t], a[:, t], h, out=out[:, t])
        h = out[:, t]
    return h


def _plan(b: int, dim: int, N: int, L: int) -> tuple[int, int]:
    """Block length (about 1 M elements per block buffer) and chunk length (~sqrt(block/2))."""
    block = max(8, (1 << 20) // max(1, b * dim * N))
    block = 1 << int(math.log2(block))
    block = min(block, L)
    chunk = max(1, round(math.sqrt(block / 2)))
    return block, chunk


# ----------------------------------------------------------------------------- torch kernel


def _delta_block(
    delta: torch.Tensor, bias: torch.Tensor | None, softplus: bool, out: torch.Tensor
) -> torch.Tensor:
    """out <- softplus(delta + bias) (or the un-activated value); out: (b, n, dim) compute dtype."""
    if bias is not None:
        torch.add(delta, bias, out=out)
    else:
        out.copy_(delta)
    if softplus:
        torch.ops.aten.softplus.out(out, 1, 20, out=out)  # in place, same as F.softplus
    return out


def _scan_forward(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    bias: torch.Tensor | None,
    softplus: bool,
    block: int,
    chunk: int,
    save: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Channels-last forward. Returns y (b, L, dim) in u's dtype and what backward needs:
    dt (b, L, dim) (delta after bias and softplus), the block-start states (b, nblk, dim, N)
    and, for N = 1, every state (b, L, dim, 1) (the same size as y; larger N recomputes)."""
    b, L, dim = u.shape
    G, N = B.shape[2], A.shape[1]
    Dg, M = dim // G, dim * N
    cdt = A.dtype
    kw = {"device": u.device, "dtype": cdt}
    y = torch.empty(b, L, dim, device=u.device, dtype=u.dtype)
    nblk = -(-L // block)
    states = torch.empty(b, nblk, dim, N, **kw) if save else None
    dt_all = torch.empty(b, L, dim, **kw) if save else None
    h_all = torch.empty(b, L, dim, N, **kw) if save and N == 1 else None
    dt_buf = None if save else torch.empty(b, block, dim, **kw)
    h_buf = None if h_all is not None else torch.empty(b, block, dim, N, **kw)
    du_buf = torch.empty(b, block, dim, **kw)
    a_buf = torch.empty(b, block, dim, N, **kw)
    x_buf = torch.empty(b, block, dim, N, **kw)
    y_buf = torch.empty(b, block, dim, **kw) if u.dtype != cdt else None
    h = torch.zeros(b, M, **kw)
    for k, l0 in enumerate(range(0, L, block)):
        n = min(block, L - l0)
        s = slice(l0, l0 + n)
        if states is not None:
            states[:, k] = h.view(b, dim, N)
        dt_out = dt_all[:, s] if dt_all is not None else dt_buf[:, :n]
        dt = _delta_block(delta[:, s], bias, softplus, dt_out)
        ub = u[:, s].to(cdt)
        a = a_buf[:, :n]
        torch.mul(dt.unsqueeze(-1), A, out=a).exp_()
        du = torch.mul(dt, ub, out=du_buf[:, :n])
        x = x_buf[:, :n]
        torch.mul(
            du.view(b, n, G, Dg, 1),
            B[:, s].reshape(b, n, G, 1, N),
            out=x.view(b, n, G, Dg, N),
        )
        hb = h_all[:, s] if h_all is not None else h_buf[:, :n]
        h = _linear_scan(a.view(b, n, M), x.view(b, n, M), h, hb.view(b, n, M), chunk).clone()
        yb = y[:, s] if y_buf is None else y_buf[:, :n]
        _readout(hb, C[:, s], G, out=yb)
        if D is not None:
            yb.addcmul_(ub, D)
        if y_buf is not None:
            y[:, s] = yb
    saved = () if not save else (dt_all, states, h_all if h_all is not None else states[:, :0])
    return y, saved


def _readout(h: torch.Tensor, C: torch.Tensor, G: int, out: torch.Tensor) -> torch.Tensor:
    """out (b, n, dim) <- sum_n C[g, n] * h[d, n]; h (b, n, dim, N), C (b, n, G, N)."""
    b, n, dim, N = h.shape
    Dg = dim // G
    if N == 1:
        torch.mul(h.view(b, n, G, Dg), C.reshape(b, n, G, 1), out=out.view(b, n, G, Dg))
    else:
        prod = h.view(b, n, G, Dg, N) * C.reshape(b, n, G, 1, N)
        torch.sum(prod, dim=-1, out=out.view(b, n, G, Dg))
    return out


def _scan_backward(
    gy: torch.Tensor,
    u: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    has_bias: bool,
    softplus: bool,
    dt_all: torch.Tensor,
    states: torch.Tensor,
    h_all: torch.Tensor | None,
    block: int,
    chunk: int,
) -> tuple[torch.Tensor | None, ...]:
    """Reverse pass over blocks (last first). Returns gu, gdelta, gA, gB, gC, gD, gbias."""
    b, L, dim = u.shape
    G, N = B.shape[2], A.shape[1]
    Dg, M = dim // G, dim * N
    cdt = A.dtype
    kw = {"device": u.device, "dtype": cdt}
    gu = torch.empty(b, L, dim, **kw)
    gdelta = torch.empty(b, L, dim, **kw)
    gB = torch.empty(b, L, G, N, **kw)
    gC = torch.empty(b, L, G, N, **kw)
    gA = torch.zeros(dim, N, **kw)
    gD = torch.zeros(dim, **kw) if D is not None else None
    gbias = torch.zeros(dim, **kw) if has_bias else None
    du_buf = torch.empty(b, block, dim, **kw)
    gbb_buf = torch.empty(b, block, dim, **kw)
    a_buf = torch.empty(b, block + 1, dim, N, **kw)
    x_buf = torch.empty(b, block, dim, N, **kw)
    h_buf = torch.empty(b, block, dim, N, **kw) if h_all is None else None
    g_buf = torch.empty(b, block, dim, N, **kw)
    g_next = torch.zeros(b, M, **kw)
    starts = list(range(0, L, block))
    for k in range(len(starts) - 1, -1, -1):
        l0 = starts[k]
        n = min(block, L - l0)
        ne = min(n + 1, L - l0)  # one extra step: the adjoint needs a_{t+1}
        s = slice(l0, l0 + n)
        dt = dt_all[:, s]
        a_e = a_buf[:, : n + 1]
        torch.mul(dt_all[:, l0 : l0 + ne].unsqueeze(-1), A, out=a_e[:, :ne]).exp_()
        if ne == n:
            a_e[:, n] = 0
        a = a_e[:, :n]
        ub = u[:, s].to(cdt)
        gyb = gy[:, s].to(cdt)
        du = torch.mul(dt, ub, out=du_buf[:, :n])
        h0 = states[:, k].reshape(b, M)
        if h_all is not None:
            hb = h_all[:, s]
        else:
            x = x_buf[:, :n]
            torch.mul(
                du.view(b, n, G, Dg, 1), B[:, s].reshape(b, n, G, 1, N), out=x.view(b, n, G, Dg, N)
            )
            hb = h_buf[:, :n]
            _linear_scan(a.view(b, n, M), x.view(b, n, M), h0, hb.view(b, n, M), chunk)
        # adjoint: G_t = C_t gy_t + a_{t+1} G_{t+1}
        gh = x_buf[:, :n]
        torch.mul(
            gyb.view(b, n, G, Dg, 1), C[:, s].reshape(b, n, G, 1, N), out=gh.view(b, n, G, Dg, N)
        )
        gb = g_buf[:, :n]
        g_first = _linear_scan(
            a_e[:, 1 : n + 1].reshape(b, n, M),
            gh.view(b, n, M),
            g_next,
            gb.view(b, n, M),
            chunk,
            reverse=True,
        )
        g_next = g_first.clone()
        # q_t = G_t * a_t * h_{t-1}  (overwrites a)
        q = a
        q[:, 1:].mul_(hb[:, :-1])
        q[:, 0].mul_(h0.view(b, dim, N))
        q.mul_(gb)
        # sum_n G_t B_t  -> (b, n, dim)
        gbb = _readout(gb, B[:, s], G, out=gbb_buf[:, :n])
        # gB[g, n] = sum_{d in g} G[d, n] delta u;  gC[g, n] = sum_{d in g} gy[d] h[d, n]
        torch.sum(gb.view(b, n, G, Dg, N) * du.view(b, n, G, Dg, 1), dim=3, out=gB[:, s])
        torch.sum(hb.view(b, n, G, Dg, N) * gyb.view(b, n, G, Dg, 1), dim=3, out=gC[:, s])
        # gu_t = D gy_t + delta_t sum_n G B
        gub = gu[:, s]
        torch.mul(dt, gbb, out=gub)
        if D is not None:
            gub.addcmul_(gyb, D)
            gD += (gyb * ub).sum((0, 1))
        # gdelta_t = u_t * sum_n G B + sum_n q A ; gA = sum q * delta
        gdt = gdelta[:, s]
        if N == 1:
            torch.addcmul(gbb.mul_(ub), q.view(b, n, dim), A.view(dim), out=gdt)
        else:
            torch.add(gbb.mul_(ub), (q * A).sum(-1), out=gdt)
        gA += (q * dt.unsqueeze(-1)).sum((0, 1))
        if softplus:  # d softplus(z)/dz = sigmoid(z) = 1 - exp(-softplus(z))
            e = torch.neg(dt, out=du).exp_()
            gdt.addcmul_(gdt, e, value=-1.0)
        if gbias is not None:
            gbias += gdt.sum((0, 1))
    return gu, gdelta, gA, gB, gC, gD, gbias


class _SelectiveScanFn(torch.autograd.Function):
    """Channels-last selective scan; A, B, C, D, bias already in the compute dtype."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, bias, softplus, block, chunk):
        save = any(ctx.needs_input_grad[:7])
        y, saved = _scan_forward(u, delta, A, B, C, D, bias, softplus, block, chunk, save)
        if save:
            ctx.save_for_backward(u, A, B, C, D, *saved)
        ctx.softplus, ctx.block, ctx.chunk = softplus, block, chunk
        ctx.has_bias, ctx.delta_dtype = bias is not None, delta.dtype
        return y

    @staticmethod
    def backward(ctx, gy):
        u, A, B, C, D, dt_all, states, h_all = ctx.saved_tensors
        grads = _scan_backward(
            gy,
            u,
            A,
            B,
            C,
            D,
            ctx.has_bias,
            ctx.softplus,
            dt_all,
            states,
            h_all if h_all.numel() else None,
            ctx.block,
            ctx.chunk,
        )
        gu, gdelta, gA, gB, gC, gD, gbias = grads
        gu, gdelta = gu.to(u.dtype), gdelta.to(ctx.delta_dtype)
        return gu, gdelta, gA, gB, gC, gD, gbias, None, None, None


def scan_torch_channels_last(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    *,
    block: int | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """The "torch" backend: u, delta (b, L, dim); A (dim, N); B, C (b, L, groups, N);
    D, delta_bias (dim,). Returns y (b, L, dim) in u's dtype. ``block``/``chunk`` override the
    cache-sized plan (tests force them small to exercise several blocks, chunks, ragged tails)."""
    check_scan_args(u, delta, A, B, C, D, delta_bias)
    b, L, dim = u.shape
    if L == 0:
        return u.new_zeros(b, 0, dim)
    cdt = compute_dtype(u)
    auto_block, auto_chunk = _plan(b, dim, A.shape[1], L)
    block = max(1, min(block or auto_block, L))
    chunk = max(1, chunk or (auto_chunk if block == auto_block else round(math.sqrt(block / 2))))
    with torch.autocast(u.device.type, enabled=False):
        args = [A, B, C, D, delta_bias]
        A, B, C, D, delta_bias = (None if t is None else t.to(cdt) for t in args)
        args = detached_unless_grad(u, delta, A, B, C, D, delta_bias)
        return _SelectiveScanFn.apply(*args, bool(delta_softplus), block, chunk)
