"""The "chunked" scan backend: loop-free, the export-friendly formulation (ONNX, tracing).

The scan dispatch picks it automatically while a model is traced or exported. Same semantics as
:func:`contrast_sr.ops.scan.reference.selective_scan_ref`, channels-last
layout (u, delta (b, L, dim); B, C (b, L, groups, N); A (dim, N); y (b, L, dim)):

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t,    y_t = C_t . h_t + D * u_t

The sequence is split into chunks of ``T`` steps (SSD / Mamba-2 style, but with a per-(dim, n)
decay, so the "matmul" is elementwise). Two levels, no Python loop that depends on L:

1. inside a chunk, the T x T decay matrix ``exp(segsum(dA))`` comes from a *masked segment sum*:
   segsum[t, s] = sum_{s < i <= t} dA_i, computed as a cumsum of masked copies (never as a
   difference of cumsums), -inf above the diagonal. dA = delta * A <= 0, so every exponent is
   <= 0 and nothing overflows even with strong decay;
2. the chunk-end states are carried across chunks with the same trick one level up, on the
   chunk totals.

Cost: O(L * T + (L / T)^2) elements per (batch, dim, N) with ``T ~ L^(1/3)`` by default (T = 32
in traced/exported graphs, where one graph serves every size), so it is meant for export and
moderate sizes, e.g. LR tiles up to about 128x128 (the eager blocked scan is the fast path).
Requires A <= 0 (as every Mamba layer does: A = -exp(A_log)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrast_sr.ops.scan.checks import check_scan_args, compute_dtype
from contrast_sr.ops.segsum import segsum
from contrast_sr.ops.tracing import is_exporting

TRACE_CHUNK = 32


def default_chunk(length: int) -> int:
    """Chunk length balancing the intra-chunk (L*T) and inter-chunk ((L/T)^2) terms."""
    return max(4, min(64, round(length ** (1.0 / 3.0))))


def selective_scan_chunked(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    chunk: int | None = None,
) -> torch.Tensor:
    """Channels-last selective scan without loops over L. Returns y (b, L, dim) in u's dtype.

    Shapes: u, delta (b, L, dim); A (dim, N); B, C (b, L, groups, N); D, delta_bias (dim,).
    ``chunk`` fixes T (default :func:`default_chunk` of L); any L >= 1 works (zero padding).
    """
    dtype_in = u.dtype
    compute = compute_dtype(u)
    u, delta, A, B, C = (t.to(compute) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute)
    if delta_softplus:
        delta = F.softplus(delta)
    b, L, dim = u.shape
    groups, N = B.shape[2], B.shape[3]
    if groups != dim:
        B = B.repeat_interleave(dim // groups, dim=2)  # (b, L, dim, N)
        C = C.repeat_interleave(dim // groups, dim=2)
    if chunk is not None:
        T = int(chunk)
    elif is_exporting():  # one graph for every size: a chunk that suits up to ~128x128
        T = TRACE_CHUNK
    else:
        T = default_chunk(int(L))

    # Pad L to a multiple of T with delta = 0 (no decay, no input): the state passes unchanged.
    pad = (-L) % T
    dA = delta.unsqueeze(-1) * A  # (b, L, dim, N), <= 0
    x = (delta * u).unsqueeze(-1) * B  # (b, L, dim, N)
    if pad or is_exporting():  # keep the pad in traced graphs: L varies there
        dA = F.pad(dA, (0, 0, 0, 0, 0, pad))
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, 0, 0, pad))
    dA = dA.reshape(b, -1, T, dim, N)  # (b, nc, T, dim, N)
    x = x.reshape(b, -1, T, dim, N)
    Cc = C.reshape(b, -1, T, dim, N)

    # 1) inside each chunk: h_t = sum_{s<=t} exp(segsum[t, s]) x_s.
    decay = torch.exp(segsum(dA, dim=2))  # (b, nc, T, T, dim, N)
    h_intra = (decay * x.unsqueeze(2)).sum(3)  # (b, nc, T, dim, N)

    # 2) across chunks: state entering chunk c = sum_{c'<c} exp(sum_{c'<k<c} P_k) * end_{c'}.
    cum = torch.cumsum(dA, dim=2)  # (b, nc, T, dim, N), <= 0, exp(cum_t) = decay from chunk start
    totals = cum[:, :, -1]  # (b, nc, dim, N)
    ends = h_intra[:, :, -1]  # (b, nc, dim, N): chunk-end state started from zero
    # Shift by one chunk so that entry c sees chunks < c: prepend a zero state / zero total.
    totals_in = F.pad(totals, (0, 0, 0, 0, 1, 0))[:, :-1]  # P_{c-1} at position c
    ends_in = F.pad(ends, (0, 0, 0, 0, 1, 0))[:, :-1]
    carry_decay = torch.exp(segsum(totals_in, dim=1))  # (b, nc, nc, dim, N)
    carry = (carry_decay * ends_in.unsqueeze(1)).sum(2)  # (b, nc, dim, N)

    h = h_intra + torch.exp(cum) * carry.unsqueeze(2)
    y = (h * Cc).sum(-1).reshape(b, -1, dim)[:, :L]
    if D is not None:
        y = y + D.to(compute) * u
    return y.to(dtype_in)


def selective_scan_channels_last_chunked(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """The "chunked" backend: :func:`selective_scan_chunked` with its default chunk (shapes and
    result as there). Arguments are checked like every backend's when called eagerly; inside a
    traced / exported graph the checks are skipped (they would only add warnings there)."""
    if not is_exporting():
        check_scan_args(u, delta, A, B, C, D, delta_bias)
    return selective_scan_chunked(u, delta, A, B, C, D, delta_bias, delta_softplus)
