"""Window helpers shared by the attention blocks (channels-last feature maps)."""

from __future__ import annotations

import torch


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, nW, ws*ws, C); windows ordered by window row, then window column."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // ws) * (w // ws), ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """(B, nW, ws*ws, C) -> (B, H, W, C); inverse of :func:`window_partition`."""
    b, _, _, c = windows.shape
    x = windows.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def relative_position_index_sa(ws: int) -> torch.Tensor:
    """Swin relative-position index (ws², ws²) into a ((2ws-1)², heads) table."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij"))
    flat = coords.flatten(1)  # (2, ws²)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0)  # (ws², ws², 2)
    rel = rel + (ws - 1)
    return rel[..., 0] * (2 * ws - 1) + rel[..., 1]


def relative_position_index_oca(ws: int, ows: int) -> torch.Tensor:
    """HAT's OCAB index (ws², ows²), kept bit-exact: it is shifted and can be negative.

    Negative entries wrap (Python indexing) to the end of the (ws+ows-1)² table, exactly as the
    original code does; the map is still a bijection, so a learned table is unaffected.
    """
    q = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    k = torch.stack(torch.meshgrid(torch.arange(ows), torch.arange(ows), indexing="ij")).flatten(1)
    rel = (k[:, None, :] - q[:, :, None]).permute(1, 2, 0)  # (ws², ows², 2)
    rel = rel + (ws - ows + 1)
    return rel[..., 0] * (ws + ows - 1) + rel[..., 1]


def shift_mask(h: int, w: int, ws: int, shift: int, device=None) -> torch.Tensor:
    """Swin region mask (nW, ws², ws²): 0 inside a region, -100 across regions."""
    img = torch.zeros(1, h, w, 1, device=device)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    mw = window_partition(img, ws).squeeze(-1)[0]  # (nW, ws²)
    diff = mw[:, None, :] - mw[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)
