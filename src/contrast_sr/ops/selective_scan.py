"""Selective scan (Mamba-1 S6) in plain PyTorch: blocked two-level scan, hand-written backward.

Recurrence (per batch, channel d, state n), with ``delta <- softplus(delta + delta_bias)``::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = sum_n C_t[n] * h_t[n] + D * u_t

Two layouts share one kernel:

* :func:`selective_scan_channels_last` (fast path): u, delta (b, L, dim); B, C (b, L, groups, N).
  Channels ``[g*dim/groups, (g+1)*dim/groups)`` share group g's B and C. SS2D feeds
  (b, L, 4*c) with groups = 4 (one group per scan direction) without any transpose.
* :func:`selective_scan`: mamba_ssm's layout, u, delta (b, dim, L); B, C (b, groups, N, L).

Both compute in float32 (float64 if u is float64) with autocast disabled and return y in u's
dtype. The torch backend cuts L into cache-sized blocks; inside a block, chunks run in
parallel (pass 1: chunk-end states), a short carry recurrence links them, and an exact pass 2
writes every state. Only products of decays in (0, 1] occur, so no exponent can overflow. The
backward is the adjoint recurrence ``G_t = C_t*gy_t + exp(delta_{t+1} A) G_{t+1}`` run with the
same primitive in reverse; it recomputes the states block by block from the block-start states
saved by the forward, so extra memory is O(b * dim * N * L / block).

Backends (see :func:`scan_backend`, :func:`register_scan_backend`) take the channels-last
signature ``fn(u, delta, A, B, C, D, delta_bias, delta_softplus) -> y``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import threading
from collections.abc import Callable, Iterator

import torch

from contrast_sr.ops.scan_reference import selective_scan_ref

ScanFn = Callable[..., torch.Tensor]

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


def _compute_dtype(u: torch.Tensor) -> torch.dtype:
    return torch.float64 if u.dtype == torch.float64 else torch.float32


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


def _check(u, delta, A, B, C, D, delta_bias) -> None:
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(
            f"u and delta must be (b, L, dim) alike, got {tuple(u.shape)}, {tuple(delta.shape)}"
        )
    b, L, dim = u.shape
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f"A must be (dim={dim}, N), got {tuple(A.shape)}")
    N = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if t.dim() != 4 or t.shape[0] != b or t.shape[1] != L or t.shape[3] != N:
            raise ValueError(f"{name} must be (b={b}, L={L}, groups, N={N}), got {tuple(t.shape)}")
    if B.shape[2] != C.shape[2] or dim % B.shape[2]:
        raise ValueError(f"groups ({B.shape[2]}, {C.shape[2]}) must match and divide dim={dim}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and t.shape != (dim,):
            raise ValueError(f"{name} must be (dim={dim},), got {tuple(t.shape)}")


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
    """The "torch" backend. ``block``/``chunk`` override the cache-sized plan (tests force them
    small to exercise several blocks, chunks and ragged tails)."""
    _check(u, delta, A, B, C, D, delta_bias)
    b, L, dim = u.shape
    if L == 0:
        return u.new_zeros(b, 0, dim)
    cdt = _compute_dtype(u)
    auto_block, auto_chunk = _plan(b, dim, A.shape[1], L)
    block = max(1, min(block or auto_block, L))
    chunk = max(1, chunk or (auto_chunk if block == auto_block else round(math.sqrt(block / 2))))
    with torch.autocast(u.device.type, enabled=False):
        args = [A, B, C, D, delta_bias]
        A, B, C, D, delta_bias = (None if t is None else t.to(cdt) for t in args)
        return _SelectiveScanFn.apply(
            u, delta, A, B, C, D, delta_bias, bool(delta_softplus), block, chunk
        )


def scan_reference_channels_last(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """The "reference" backend: the sequential loop, wrapped with layout transposes."""
    _check(u, delta, A, B, C, D, delta_bias)
    with torch.autocast(u.device.type, enabled=False):
        y = selective_scan_ref(
            u.transpose(1, 2),
            delta.transpose(1, 2),
            A,
            B.permute(0, 2, 3, 1),
            C.permute(0, 2, 3, 1),
            D,
            delta_bias,
            delta_softplus,
        )
    return y.transpose(1, 2).contiguous()


# ----------------------------------------------------------------------------- backends

_BACKENDS: dict[str, ScanFn] = {
    "torch": scan_torch_channels_last,
    "reference": scan_reference_channels_last,
}
_AVAILABLE: dict[str, Callable[[torch.Tensor], bool]] = {}
_STATE = threading.local()
ENV_BACKEND = "CONTRAST_SR_SCAN_BACKEND"


def register_scan_backend(
    name: str, fn: ScanFn, available: Callable[[torch.Tensor], bool] | None = None
) -> None:
    """Add (or replace) a backend ``fn(u, delta, A, B, C, D, delta_bias, delta_softplus)``.

    ``available(u)`` (optional) says whether ``auto`` may pick it for input ``u``; backends
    registered without it are only used when named explicitly.
    """
    _BACKENDS[name] = fn
    if available is not None:
        _AVAILABLE[name] = available
    else:
        _AVAILABLE.pop(name, None)


def list_scan_backends() -> list[str]:
    return sorted(_BACKENDS)


@contextlib.contextmanager
def scan_backend(name: str | None) -> Iterator[None]:
    """Use backend ``name`` (or ``None``/"auto") for scans in this thread inside the block."""
    if name not in (None, "auto") and name not in _BACKENDS:
        raise ValueError(
            f"unknown scan backend {name!r} (known: {', '.join(list_scan_backends())})"
        )
    previous = getattr(_STATE, "name", None)
    _STATE.name = name
    try:
        yield
    finally:
        _STATE.name = previous


def resolve_scan_backend(u: torch.Tensor, backend: str | None = None) -> str:
    """Explicit argument, then :func:`scan_backend`, then ``$CONTRAST_SR_SCAN_BACKEND``, then
    auto: the first available fused backend ("triton" on CUDA, "numba" on CPU), else "torch"."""
    name = backend or getattr(_STATE, "name", None) or os.environ.get(ENV_BACKEND) or "auto"
    if name != "auto":
        if name not in _BACKENDS:
            raise ValueError(
                f"unknown scan backend {name!r} (known: {', '.join(list_scan_backends())})"
            )
        return name
    for candidate in ("triton", "numba"):
        check = _AVAILABLE.get(candidate)
        if check is not None and check(u):
            return candidate
    return "torch"


def _register_optional_backends() -> None:
    """ "numba" (fused CPU kernel) when numba is installed; imported lazily on first use."""
    if importlib.util.find_spec("numba") is None:
        return

    def scan_numba(*args, **kwargs):
        from contrast_sr.ops.numba_scan import scan_numba_channels_last

        return scan_numba_channels_last(*args, **kwargs)

    def numba_available(u: torch.Tensor) -> bool:
        from contrast_sr.ops.numba_scan import available

        return available(u)

    register_scan_backend("numba", scan_numba, numba_available)


_register_optional_backends()


def selective_scan_channels_last(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    backend: str | None = None,
) -> torch.Tensor:
    """Selective scan, channels last: u, delta (b, L, dim); A (dim, N); B, C (b, L, groups, N);
    D, delta_bias (dim,). Returns y (b, L, dim) in u's dtype (float32 accumulation inside)."""
    fn = _BACKENDS[resolve_scan_backend(u, backend)]
    return fn(u, delta, A, B, C, D, delta_bias, delta_softplus)


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    backend: str | None = None,
) -> torch.Tensor:
    """mamba_ssm's ``selective_scan_fn`` layout: u, delta (b, dim, L); A (dim, N);
    B, C (b, groups, N, L) (or (b, N, L) for one group); D, delta_bias (dim,).
    Returns y (b, dim, L) in u's dtype. Runs the channels-last kernel on transposed copies."""
    if B.dim() == 3:
        B = B.unsqueeze(1)
    if C.dim() == 3:
        C = C.unsqueeze(1)
    y = selective_scan_channels_last(
        u.transpose(1, 2).contiguous(),
        delta.transpose(1, 2).contiguous(),
        A,
        B.permute(0, 3, 1, 2).contiguous(),
        C.permute(0, 3, 1, 2).contiguous(),
        D,
        delta_bias,
        delta_softplus,
        backend=backend,
    )
    return y.transpose(1, 2).contiguous()
