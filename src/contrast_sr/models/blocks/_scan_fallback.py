"""TEMPORARY stand-in for contrast_sr.ops channels-last scan helpers (removed once they land)."""

from __future__ import annotations

import torch

from contrast_sr.ops.scan_reference import selective_scan_ref


def cross_scan_channels_last(x: torch.Tensor) -> torch.Tensor:
    b, h, w, c = x.shape
    row = x.reshape(b, h * w, c)
    col = x.transpose(1, 2).reshape(b, h * w, c)
    return torch.stack([row, col, row.flip(1), col.flip(1)], dim=2)


def cross_merge_channels_last(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b, _, _, c = y.shape
    row = y[:, :, 0] + y[:, :, 2].flip(1)
    col = y[:, :, 1] + y[:, :, 3].flip(1)
    return row.view(b, h, w, c) + col.view(b, w, h, c).transpose(1, 2)


def selective_scan_channels_last(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
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
    return y.transpose(1, 2)
