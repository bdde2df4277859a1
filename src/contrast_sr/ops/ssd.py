"""Mamba-2 state-space duality (SSD) scan: one scalar decay per head, matrix-valued state.

Per head h and step t, with ``dt <- softplus(dt + dt_bias)`` when asked::

    state_t = exp(dt_t * A_h) * state_{t-1} + dt_t * outer(x_t, B_t)     # (head_dim, N)
    y_t     = state_t @ C_t + D_h * x_t

Layout (mamba_ssm's): x (b, L, heads, head_dim); dt (b, L, heads); A (heads,) negative;
B, C (b, L, groups, N), heads divisible by groups (consecutive heads share a group's B and C);
D (heads,) or (heads, head_dim); dt_bias (heads,). Output (b, L, heads, head_dim) in x's dtype,
computed in float32 (float64 for float64 inputs) with autocast disabled.

:func:`ssd_scan` is the chunked "dual" form: inside a chunk of T steps the output is a masked
(T x T) matmul with decays ``exp(segsum(dt*A))``; chunk-end states pass between chunks with the
same segment sums one level up (in blocks of chunks, so L = 1,000,000 needs O(L * T) memory per
head, not O((L/T)^2)). Every exponent is a sum of log-decays <= 0: nothing overflows, however
strong the decay. It is plain loop-free torch inside a chunk block, so autograd gives the
backward (memory O(L * T) per head) and tracing / ONNX export see ordinary ops.
:func:`ssd_scan_ref` is the sequential loop every test compares with.

``backend`` picks the implementation: ``"torch"`` (the above), ``"triton"`` (the chunk kernels
of :mod:`contrast_sr.ops.ssd_triton`: forward and hand-written backward, float32 arithmetic) or
``None`` / ``"auto"``: Triton for CUDA tensors of float32 / bfloat16 / float16 when triton is
installed and no graph is being captured, else torch. A named backend is used as named (the
tests run ``"triton"`` on CPU tensors under ``TRITON_INTERPRET=1``).

With head_dim = 1 and N = 1 SSD is the Mamba-1 scan with one A per channel; SSD pays off with
head_dim and N in the tens, where the intra-chunk work is matmuls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrast_sr.ops.segsum import segsum
from contrast_sr.ops.tracing import is_capturing
from contrast_sr.ops.triton_select import interpreter_requested, triton_importable

DEFAULT_CHUNK = 64
CHUNKS_PER_BLOCK = 256  # state passing: one segsum over at most this many chunks at a time
SSD_BACKENDS = ("auto", "torch", "triton")
_TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def resolve_ssd_backend(x: torch.Tensor, backend: str | None = None) -> str:
    """``"torch"`` or ``"triton"``: the implementation :func:`ssd_scan` runs for x."""
    name = backend or "auto"
    if name not in SSD_BACKENDS:
        raise ValueError(f"unknown SSD backend {name!r} (known: {', '.join(SSD_BACKENDS)})")
    if name == "auto":
        use = x.is_cuda and x.dtype in _TRITON_DTYPES and not is_capturing() and triton_importable()
        return "triton" if use else "torch"
    if name == "triton":
        if not triton_importable():
            raise ValueError("SSD backend 'triton' needs triton installed (pip install triton)")
        if x.dtype not in _TRITON_DTYPES:
            raise ValueError(f"SSD backend 'triton' computes in float32; x is {x.dtype}")
        if not (x.is_cuda or interpreter_requested()):
            raise ValueError("SSD backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1)")
    return name


def _check(x, dt, A, B, C, D, dt_bias) -> None:
    """ValueError with the expected shapes when the arguments do not fit together."""
    if x.dim() != 4:
        raise ValueError(f"x must be (b, L, heads, head_dim), got {tuple(x.shape)}")
    b, L, h, p = x.shape
    if dt.shape != (b, L, h):
        raise ValueError(f"dt must be (b={b}, L={L}, heads={h}), got {tuple(dt.shape)}")
    if A.shape != (h,):
        raise ValueError(f"A must be (heads={h},), got {tuple(A.shape)}")
    if B.dim() != 4 or B.shape[:2] != (b, L) or B.shape != C.shape:
        raise ValueError(
            f"B and C must be (b={b}, L={L}, groups, N) alike, got {tuple(B.shape)}, "
            f"{tuple(C.shape)}"
        )
    if h % B.shape[2]:
        raise ValueError(f"heads ({h}) must be divisible by groups ({B.shape[2]})")
    if D is not None and D.shape not in ((h,), (h, p)):
        raise ValueError(f"D must be (heads={h},) or (heads, head_dim={p}), got {tuple(D.shape)}")
    if dt_bias is not None and dt_bias.shape != (h,):
        raise ValueError(f"dt_bias must be (heads={h},), got {tuple(dt_bias.shape)}")


def _prepare(x, dt, A, B, C, D, dt_bias, dt_softplus):
    """Compute-dtype copies and the activated step sizes."""
    cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
    x, dt, A, B, C = (t.to(cdt) for t in (x, dt, A, B, C))
    if dt_bias is not None:
        dt = dt + dt_bias.to(cdt)
    if dt_softplus:
        dt = F.softplus(dt)
    return x, dt, A, B, C, None if D is None else D.to(cdt)


def _skip(y: torch.Tensor, x: torch.Tensor, D: torch.Tensor | None) -> torch.Tensor:
    """y + D * x, D per head (heads,) or per head and channel (heads, head_dim)."""
    if D is None:
        return y
    return y + (D[:, None] if D.dim() == 1 else D) * x


def ssd_scan_ref(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
) -> torch.Tensor:
    """The recurrence step by step (a Python loop over L): slow and obviously right."""
    _check(x, dt, A, B, C, D, dt_bias)
    out_dtype = x.dtype
    with torch.autocast(x.device.type, enabled=False):
        x, dt, A, B, C, D = _prepare(x, dt, A, B, C, D, dt_bias, dt_softplus)
        b, L, h, p = x.shape
        r = h // B.shape[2]
        Bh = B.repeat_interleave(r, dim=2)  # (b, L, heads, N)
        Ch = C.repeat_interleave(r, dim=2)
        state = x.new_zeros(b, h, p, B.shape[3])
        ys = []
        for t in range(L):
            decay = torch.exp(dt[:, t] * A)[:, :, None, None]
            drive = (dt[:, t, :, None] * x[:, t])[..., None] * Bh[:, t, :, None, :]
            state = decay * state + drive
            ys.append((state * Ch[:, t, :, None, :]).sum(-1))
        y = torch.stack(ys, dim=1) if ys else x.new_zeros(b, 0, h, p)
        return _skip(y, x, D).to(out_dtype)


def _pass_states(entries: torch.Tensor, log_decay: torch.Tensor) -> torch.Tensor:
    """S_j = sum_{i<=j} exp(sum_{i<k<=j} log_decay_k) * entries_i along dim 1, loop-free.

    entries (b, n, g, r, p, N); log_decay (b, n, g, r) <= 0. Memory O(n^2) per head.
    """
    weights = torch.exp(segsum(log_decay, dim=1))  # (b, n, n, g, r)
    return torch.einsum("bjigr,bigrpn->bjgrpn", weights, entries)


def _states_entering_chunks(ends: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:
    """State entering each chunk from the chunk-end states started at zero.

    ends (b, nc, g, r, p, N): chunk c's end state from a zero start; totals (b, nc, g, r):
    chunk c's summed log-decay. Returns S (b, nc, g, r, p, N) with S_0 = 0 and
    S_{c+1} = exp(totals_c) S_c + ends_c, in blocks of :data:`CHUNKS_PER_BLOCK` chunks (one
    block while tracing or compiling, so captured graphs have no loop).
    """
    nc = ends.shape[1]
    if is_capturing() or nc <= CHUNKS_PER_BLOCK:  # one block: no shape-dependent ints
        entries = torch.cat([torch.zeros_like(ends[:, :1]), ends[:, :-1]], dim=1)
        return _pass_states(entries, F.pad(totals[:, :-1], (0, 0, 0, 0, 1, 0)))
    carry = torch.zeros_like(ends[:, :1])
    out = []
    for c0 in range(0, nc, CHUNKS_PER_BLOCK):
        c1 = min(c0 + CHUNKS_PER_BLOCK, nc)
        # entry 0 is the carried state; entry j >= 1 is the end state of chunk c0 + j - 1
        entries = torch.cat([carry, ends[:, c0 : c1 - 1]], dim=1)
        states = _pass_states(entries, F.pad(totals[:, c0 : c1 - 1], (0, 0, 0, 0, 1, 0)))
        out.append(states)
        decay = torch.exp(totals[:, c1 - 1])[:, None, :, :, None, None]
        carry = decay * states[:, -1:] + ends[:, c1 - 1 : c1]
    return torch.cat(out, dim=1)


def ssd_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
    *,
    chunk: int = DEFAULT_CHUNK,
    backend: str | None = None,
) -> torch.Tensor:
    """SSD scan in chunks of ``chunk`` steps (any L: the tail is padded with dt = 0).

    Shapes as in the module docstring; returns y (b, L, heads, head_dim) in x's dtype.
    ``backend``: ``None`` / ``"auto"``, ``"torch"`` or ``"triton"`` (module docstring).
    """
    _check(x, dt, A, B, C, D, dt_bias)
    if int(chunk) < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    out_dtype = x.dtype
    b, L, h, p = x.shape
    if L == 0:
        return x.new_zeros(b, 0, h, p)
    if resolve_ssd_backend(x, backend) == "triton":
        from contrast_sr.ops.ssd_triton import ssd_scan_triton

        return ssd_scan_triton(x, dt, A, B, C, D, dt_bias, dt_softplus, int(chunk))
    with torch.autocast(x.device.type, enabled=False):
        x, dt, A, B, C, D = _prepare(x, dt, A, B, C, D, dt_bias, dt_softplus)
        g, N = B.shape[2], B.shape[3]
        r, T = h // g, int(chunk)
        pad = (-L) % T
        # padded steps have dt = 0: no decay, no input, so the state passes through unchanged
        xdt, log_a = x * dt[..., None], dt * A
        if pad or is_capturing():  # captured graphs keep the pad: L varies there
            xdt = F.pad(xdt, (0, 0, 0, 0, 0, pad))
            log_a = F.pad(log_a, (0, 0, 0, pad))
            B = F.pad(B, (0, 0, 0, 0, 0, pad))
            C = F.pad(C, (0, 0, 0, 0, 0, pad))
        # head-major chunks, so every step below is a batched matmul over (b, nc, g, r)
        xdt = xdt.reshape(b, -1, T, g, r, p).permute(0, 1, 3, 4, 2, 5)  # (b, nc, g, r, T, p)
        log_a = log_a.reshape(b, -1, T, g, r).permute(0, 1, 3, 4, 2)  # (b, nc, g, r, T)
        Bc = B.reshape(b, -1, T, g, N).transpose(2, 3).unsqueeze(3)  # (b, nc, g, 1, T, N)
        Cc = C.reshape(b, -1, T, g, N).transpose(2, 3).unsqueeze(3)
        cum = torch.cumsum(log_a, dim=-1)  # decreasing, <= 0

        # 1) inside each chunk: y_t = sum_{s<=t} (C_t . B_s) exp(sum_{s<i<=t} log_a_i) xdt_s
        weights = (Cc @ Bc.transpose(-1, -2)) * torch.exp(segsum(log_a, dim=-1))  # (.., T, T)
        y = weights @ xdt  # (b, nc, g, r, T, p)

        # 2) each chunk's end state started from zero: (b, nc, g, r, p, N)
        to_end = torch.exp(cum[..., -1:] - cum)  # <= 1
        ends = (xdt * to_end.unsqueeze(-1)).transpose(-1, -2) @ Bc

        # 3) states entering every chunk, 4) their contribution to the chunk's outputs
        entering = _states_entering_chunks(ends, cum[..., -1])
        y = y + (Cc @ entering.transpose(-1, -2)) * torch.exp(cum).unsqueeze(-1)

        y = y.permute(0, 1, 4, 2, 3, 5).reshape(b, -1, h, p)[:, :L]
        return _skip(y, x, D).to(out_dtype)


__all__ = ["DEFAULT_CHUNK", "SSD_BACKENDS", "resolve_ssd_backend", "ssd_scan", "ssd_scan_ref"]
