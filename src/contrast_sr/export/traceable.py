"""Trace-friendly stand-ins for ops that export cannot see through (custom autograd.Functions).

:func:`traceable_ops` makes a model exportable without changing it: selective scans go through
the loop-free chunked backend, and SS2D's cross scan / merge (gather-table autograd.Functions)
become plain reshape / transpose / flip ops with the same results.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import torch

from contrast_sr.ops.scan import chunked as scan_chunked


def cross_scan_plain(x: torch.Tensor) -> torch.Tensor:
    """(b, c, h, w) -> (b, 4, c, h*w): row-major, column-major, and both reversed."""
    b, c, h, w = x.shape
    rows = x.reshape(b, c, h * w)
    cols = x.transpose(2, 3).reshape(b, c, h * w)
    return torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], dim=1)


def cross_merge_plain(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(b, 4, c, h*w) -> (b, c, h*w): each direction mapped back to row-major, summed."""
    b, _, c, L = y.shape
    rows = y[:, 0] + y[:, 2].flip(-1)
    cols = (y[:, 1] + y[:, 3].flip(-1)).reshape(b, c, w, h).transpose(2, 3).reshape(b, c, L)
    return rows + cols


def cross_scan_channels_last_plain(x: torch.Tensor) -> torch.Tensor:
    """(b, h, w, c) -> (b, L, 4, c)."""
    b, h, w, c = x.shape
    rows = x.reshape(b, h * w, c)
    cols = x.transpose(1, 2).reshape(b, h * w, c)
    return torch.stack([rows, cols, rows.flip(1), cols.flip(1)], dim=2)


def cross_merge_channels_last_plain(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(b, L, 4, c) (or (b, L, 4*c)) -> (b, h, w, c)."""
    if y.dim() == 3:
        y = y.reshape(y.shape[0], y.shape[1], 4, -1)
    b, _, _, c = y.shape
    rows = (y[:, :, 0] + y[:, :, 2].flip(1)).reshape(b, h, w, c)
    cols = (y[:, :, 1] + y[:, :, 3].flip(1)).reshape(b, w, h, c).transpose(1, 2)
    return rows + cols


def block_diag_plain(*blocks: torch.Tensor) -> torch.Tensor:
    """``torch.block_diag`` of 2-D tensors from pad + cat (aten::block_diag has no ONNX op)."""
    width = sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        rows.append(torch.nn.functional.pad(b, (left, width - left - b.shape[1])))
        left += b.shape[1]
    return torch.cat(rows, dim=0)


def _chunked_mamba_layout(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """The chunked scan behind the mamba layout (u, delta (b, dim, L); B, C (b, g, N, L))."""
    if B.dim() == 3:
        B, C = B.unsqueeze(1), C.unsqueeze(1)
    y = scan_chunked.selective_scan_chunked(
        u.transpose(1, 2),
        delta.transpose(1, 2),
        A,
        B.permute(0, 3, 1, 2),
        C.permute(0, 3, 1, 2),
        D,
        delta_bias,
        delta_softplus,
    )
    return y.transpose(1, 2)


def _chunked_channels_last(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    return scan_chunked.selective_scan_chunked(u, delta, A, B, C, D, delta_bias, delta_softplus)


_CROSS = {
    "cross_scan": cross_scan_plain,
    "cross_merge": cross_merge_plain,
    "cross_scan_channels_last": cross_scan_channels_last_plain,
    "cross_merge_channels_last": cross_merge_channels_last_plain,
}
_SCANS = {
    "selective_scan": _chunked_mamba_layout,
    "selective_scan_channels_last": _chunked_channels_last,
}


@contextlib.contextmanager
def _rebind(replacements: dict) -> Iterator[None]:
    """Temporarily rebind these names in every loaded ``contrast_sr`` module (not in ops)."""
    patched = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("contrast_sr") or module is None:
            continue
        if name.startswith(("contrast_sr.ops", "contrast_sr.export")):
            continue  # the definitions themselves and the dispatchers stay intact
        for attr, new in replacements.items():
            old = getattr(module, attr, None)
            if callable(old) and not isinstance(old, type):
                patched.append((module, attr, old))
                setattr(module, attr, new)
    try:
        yield
    finally:
        for module, attr, old in reversed(patched):
            setattr(module, attr, old)


@contextlib.contextmanager
def chunked_scan() -> Iterator[None]:
    """Route every selective scan through the chunked formulation (scan backend "chunked")."""
    from contrast_sr.ops import scan_backend

    with scan_backend("chunked"), _rebind(_SCANS):
        yield


@contextlib.contextmanager
def traceable_ops() -> Iterator[None]:
    """Chunked scan, plain cross scan / merge and ``torch.block_diag``, for tracing/export."""
    original = torch.block_diag
    torch.block_diag = block_diag_plain
    try:
        with chunked_scan(), _rebind(_CROSS):
            yield
    finally:
        torch.block_diag = original
