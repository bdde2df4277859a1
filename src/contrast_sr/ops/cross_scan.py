"""SS2D's four scan orders over an image's tokens, and their merge.

Direction k visits the h*w tokens (row-major index i*w + j) in the order ``perm_k``:
0 row-major, 1 column-major, 2 reversed row-major, 3 reversed column-major.

* Channel-major (VMamba layout): :func:`cross_scan` (b, c, h, w) -> (b, 4, c, h*w) and
  :func:`cross_merge` (b, 4, c, h*w) or (b, 4, c, h, w) -> (b, c, h*w). Their ``scans=``
  option is VMamba's: 0 the four orders above, 1 unidirectional (row-major four times),
  2 bidirectional (row-major twice, then reversed row-major twice); 1 and 2 are plain torch.
* Channels-last (the fast scan's layout): :func:`cross_scan_channels_last`
  (b, h, w, c) -> (b, L, 4, c) where ``y[:, t, k] = x_flat[:, perm_k[t]]``, and
  :func:`cross_merge_channels_last` (b, L, 4, c) -> (b, h, w, c), the sum over k of each
  direction mapped back to row-major. (b, L, 4, c) viewed as (b, L, 4*c) is exactly the
  selective scan's input with groups = 4.

Eagerly, scan and merge are custom autograd Functions and each other's adjoint, so each
backward is one call of the other (one gather pass), never an autograd graph of flips and
transposes. While a model is traced or exported (and, for the channels-last pair, compiled,
which the gather Functions would break) each function takes its plain formulation instead:
reshape, transpose, flip and stack, the same values, traceable for any h and w.

On CUDA tensors, when triton imports, eager calls run fused Triton kernels instead
(:mod:`contrast_sr.ops.cross_scan_triton`: one read, four strided writes, no flips, no index
tables; each kernel the other's backward). ``impl=`` ("auto", "torch", "triton") forces a path,
as in :func:`contrast_sr.ops.triton_select.use_triton`.
"""

from __future__ import annotations

import torch

from contrast_sr.errors import ArgumentError
from contrast_sr.ops.tracing import is_capturing, is_exporting
from contrast_sr.ops.triton_select import use_triton

_PERM_CACHE: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}


def cross_permutations(h: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(4, h*w) int64: row k lists the row-major token index visited at each step of direction k."""
    rows = torch.arange(h * w, device=device)
    cols = rows.view(h, w).t().reshape(-1)
    return torch.stack([rows, cols, rows.flip(0), cols.flip(0)])


def _tables(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached gather tables: scan (L*4,) into x (b, L, c); merge (L*4,) into y (b, L*4, c)."""
    key = (h, w, str(device))
    if key not in _PERM_CACHE:
        perm = cross_permutations(h, w, device)  # (4, L)
        L = h * w
        inv = torch.empty_like(perm)
        inv.scatter_(1, perm, torch.arange(L, device=device).expand(4, L).contiguous())
        # scan: y.view(b, L*4, c)[t*4 + k] = x_flat[perm[k, t]]
        scan_idx = perm.t().reshape(-1).contiguous()
        # merge: x[s] = sum_k y.view(b, L*4, c)[inv[k, s]*4 + k]
        merge_idx = (inv * 4 + torch.arange(4, device=device)[:, None]).t().reshape(-1)
        if len(_PERM_CACHE) > 64:
            _PERM_CACHE.clear()
        _PERM_CACHE[key] = (scan_idx, merge_idx.contiguous())
    return _PERM_CACHE[key]


# ----------------------------------------------------------------------------- channel-major


def _scan_cm(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    L = h * w
    y = x.new_empty(b, 4, c, L)
    y[:, 0] = x.reshape(b, c, L)
    y[:, 1].view(b, c, w, h).copy_(x.transpose(2, 3))
    y[:, 2:] = y[:, :2].flip(-1)
    return y


def _merge_cm(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b, _, c, _L = y.shape
    y = y[:, :2] + y[:, 2:].flip(-1)
    out = y[:, 0].clone()
    out.view(b, c, h, w).add_(y[:, 1].reshape(b, c, w, h).transpose(2, 3))
    return out


class _CrossScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.hw = x.shape[2:]
        return _scan_cm(x)

    @staticmethod
    def backward(ctx, gy):
        h, w = ctx.hw
        return _merge_cm(gy, h, w).view(gy.shape[0], gy.shape[2], h, w)


class _CrossMerge(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, h, w):
        ctx.hw = (h, w)
        return _merge_cm(y, h, w)

    @staticmethod
    def backward(ctx, gx):
        h, w = ctx.hw
        return _scan_cm(gx.reshape(gx.shape[0], gx.shape[1], h, w)), None, None


def _scan_cm_traceable(x: torch.Tensor) -> torch.Tensor:
    """:func:`cross_scan` from stack and flip: (b, c, h, w) -> (b, 4, c, h*w)."""
    b, c, h, w = x.shape
    rows = x.reshape(b, c, h * w)
    cols = x.transpose(2, 3).reshape(b, c, h * w)
    return torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], dim=1)


def _merge_cm_traceable(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """:func:`cross_merge` from flip and transpose: (b, 4, c, h*w) -> (b, c, h*w), summed in
    the order of :func:`_merge_cm`."""
    b, _, c, L = y.shape
    rows = y[:, 0] + y[:, 2].flip(-1)
    cols = (y[:, 1] + y[:, 3].flip(-1)).reshape(b, c, w, h).transpose(2, 3).reshape(b, c, L)
    return rows + cols


SCANS = (0, 1, 2)  # VMamba's scan modes: cross (four orders), unidirectional, bidirectional


def _scans(scans: int, impl: str | None) -> int:
    if scans not in SCANS:
        raise ArgumentError(
            "scans", f"must be 0 (cross), 1 (unidirectional) or 2 (bidirectional), not {scans!r}"
        )
    if scans and impl == "triton":
        raise ArgumentError("impl", "the Triton kernels compute the cross orders (scans=0) only")
    return scans


def _scan_uni_bi(x: torch.Tensor, scans: int) -> torch.Tensor:
    """scans 1 / 2: (b, c, h, w) -> (b, 4, c, h*w), row-major 4x, or 2x forward + 2x reversed."""
    rows = x.reshape(x.shape[0], x.shape[1], -1)
    if scans == 1:
        return torch.stack([rows] * 4, dim=1)
    back = rows.flip(-1)
    return torch.stack([rows, rows, back, back], dim=1)


def _merge_uni_bi(y: torch.Tensor, scans: int) -> torch.Tensor:
    """The adjoint of :func:`_scan_uni_bi`: (b, 4, c, L) -> (b, c, L)."""
    if scans == 1:
        return y.sum(1)
    return y[:, 0] + y[:, 1] + (y[:, 2] + y[:, 3]).flip(-1)


def cross_scan(x: torch.Tensor, impl: str | None = None, *, scans: int = 0) -> torch.Tensor:
    """(b, c, h, w) -> (b, 4, c, h*w): row-major, column-major, and both reversed
    (``scans=1``: row-major four times; ``scans=2``: row-major twice, reversed twice)."""
    if x.dim() != 4:
        raise ValueError(f"cross_scan expects (b, c, h, w), got {tuple(x.shape)}")
    if _scans(scans, impl):
        return _scan_uni_bi(x, scans)
    if is_exporting():
        return _scan_cm_traceable(x)
    if use_triton(x, impl):
        from contrast_sr.ops.cross_scan_triton import CrossScanChannelMajor

        return CrossScanChannelMajor.apply(x)
    return _CrossScan.apply(x)


def cross_merge(
    y: torch.Tensor,
    h: int | None = None,
    w: int | None = None,
    impl: str | None = None,
    *,
    scans: int = 0,
) -> torch.Tensor:
    """(b, 4, c, h*w) -> (b, c, h*w): undo each direction's order and sum the four.

    ``y`` may also be VMamba's (b, 4, c, h, w), which gives h and w; ``scans`` as in
    :func:`cross_scan`."""
    if y.dim() == 5:
        h, w = (y.shape[3], y.shape[4]) if h is None and w is None else (h, w)
        y = y.reshape(*y.shape[:3], -1)
    if h is None or w is None:
        raise ArgumentError("h", "h and w are needed for a (b, 4, c, h*w) input")
    if y.dim() != 4 or y.shape[1] != 4 or y.shape[3] != h * w:
        raise ValueError(f"cross_merge expects (b, 4, c, {h}*{w}), got {tuple(y.shape)}")
    if _scans(scans, impl):
        return _merge_uni_bi(y, scans)
    if is_exporting():
        return _merge_cm_traceable(y, h, w)
    if use_triton(y, impl):
        from contrast_sr.ops.cross_scan_triton import CrossMergeChannelMajor

        return CrossMergeChannelMajor.apply(y, h, w)
    return _CrossMerge.apply(y, h, w)


# ----------------------------------------------------------------------------- channels-last


def _scan_cl(x: torch.Tensor) -> torch.Tensor:
    b, h, w, c = x.shape
    L = h * w
    scan_idx, _ = _tables(h, w, x.device)
    return x.reshape(b, L, c).index_select(1, scan_idx).view(b, L, 4, c)


def _merge_cl(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b, L, _, c = y.shape
    _, merge_idx = _tables(h, w, y.device)
    g = y.reshape(b, L * 4, c).index_select(1, merge_idx).view(b, L, 4, c)
    return g.sum(2).view(b, h, w, c)


class _CrossScanCL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.hw = x.shape[1:3]
        return _scan_cl(x)

    @staticmethod
    def backward(ctx, gy):
        h, w = ctx.hw
        return _merge_cl(gy, h, w)


class _CrossMergeCL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, h, w):
        ctx.hw = (h, w)
        return _merge_cl(y, h, w)

    @staticmethod
    def backward(ctx, gx):
        return _scan_cl(gx), None, None


def _scan_cl_traceable(x: torch.Tensor) -> torch.Tensor:
    """:func:`cross_scan_channels_last` from stack and flip: (b, h, w, c) -> (b, L, 4, c)."""
    b, h, w, c = x.shape
    rows = x.reshape(b, h * w, c)
    cols = x.transpose(1, 2).reshape(b, h * w, c)
    return torch.stack([rows, cols, rows.flip(1), cols.flip(1)], dim=2)


def _merge_cl_traceable(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """:func:`cross_merge_channels_last` from flip and transpose: (b, L, 4, c) -> (b, h, w, c),
    the directions added in the order 0, 1, 2, 3 as in :func:`_merge_cl`."""
    b, _, _, c = y.shape
    rows = y[:, :, 0].reshape(b, h, w, c)
    cols = y[:, :, 1].reshape(b, w, h, c).transpose(1, 2)
    rows_reversed = y[:, :, 2].flip(1).reshape(b, h, w, c)
    cols_reversed = y[:, :, 3].flip(1).reshape(b, w, h, c).transpose(1, 2)
    return rows + cols + rows_reversed + cols_reversed


def cross_scan_channels_last(x: torch.Tensor, impl: str | None = None) -> torch.Tensor:
    """(b, h, w, c) -> (b, L, 4, c) with ``y[:, t, k] = x_flat[:, perm_k[t]]`` (one gather)."""
    if x.dim() != 4:
        raise ValueError(f"cross_scan_channels_last expects (b, h, w, c), got {tuple(x.shape)}")
    if is_capturing():
        return _scan_cl_traceable(x)
    if use_triton(x, impl):
        from contrast_sr.ops.cross_scan_triton import CrossScanChannelsLast

        return CrossScanChannelsLast.apply(x)
    return _CrossScanCL.apply(x)


def cross_merge_channels_last(
    y: torch.Tensor, h: int, w: int, impl: str | None = None
) -> torch.Tensor:
    """(b, L, 4, c) -> (b, h, w, c): sum over the 4 directions, each mapped back to row-major.
    Also accepts (b, L, 4*c)."""
    if y.dim() == 3 and y.shape[2] % 4 == 0:
        y = y.reshape(y.shape[0], y.shape[1], 4, y.shape[2] // 4)
    if y.dim() != 4 or y.shape[2] != 4 or y.shape[1] != h * w:
        raise ValueError(
            f"cross_merge_channels_last expects (b, {h}*{w}, 4, c), got {tuple(y.shape)}"
        )
    if is_capturing():
        return _merge_cl_traceable(y, h, w)
    if use_triton(y, impl):
        from contrast_sr.ops.cross_scan_triton import CrossMergeChannelsLast

        return CrossMergeChannelsLast.apply(y, h, w)
    return _CrossMergeCL.apply(y, h, w)
