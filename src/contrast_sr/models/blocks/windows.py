"""Window helpers shared by the attention blocks: padding to the window size, partition and
reverse (channels-last feature maps), relative-position indices and the shift mask.

Everything here also traces with dynamic height and width (ONNX export): shapes come from the
tensors, and the one loop that depends on the size (:func:`pad_reflect`) has a gather-based
formulation that it takes itself while exporting (:func:`contrast_sr.ops.tracing.is_exporting`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrast_sr.ops.tracing import is_exporting


def pad_reflect(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom/right to multiples of ``multiple`` by mirroring.

    Works for any H, W >= 1: mirrors repeatedly when the pad exceeds the size, and repeats the
    single row/column of a size-1 axis. While exporting, the same pixels are gathered with one
    index per axis, so the graph serves every size.
    """
    if multiple <= 1:
        return x
    if is_exporting():
        return _pad_reflect_gather(x, multiple)
    for dim in (-2, -1):
        need = (-x.shape[dim]) % multiple
        while need > 0:
            size = x.shape[dim]
            step = min(need, size - 1)
            pad = [0, 0, 0, 0]
            pad[1 if dim == -1 else 3] = step if step > 0 else need
            x = F.pad(x, pad, mode="reflect" if step > 0 else "replicate")
            need -= step if step > 0 else need
    return x


def _pad_reflect_gather(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """:func:`pad_reflect` without size-dependent control flow: repeated mirroring of an axis of
    length n is the periodic sequence 0, 1, ..., n-1, n-2, ..., 1 (period 2n - 2; 1 for n = 1)."""
    for dim in (-2, -1):
        n = x.shape[dim]
        ramp = torch.arange(n, device=x.device)
        cycle = torch.cat([ramp, ramp.flip(0)[1:-1]])
        padded = (n + multiple - 1) // multiple * multiple
        index = torch.arange(padded, device=x.device) % cycle.shape[0]
        x = x.index_select(dim, cycle[index])
    return x


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


def _regions(n: int, ws: int, shift: int, device=None) -> torch.Tensor:
    """(n,) region of each position along an axis of a rolled map: 0 for ``[0, n - ws)``,
    1 for ``[n - ws, n - shift)``, 2 for ``[n - shift, n)`` (Swin's three slices)."""
    i = torch.arange(n, device=device)
    return (i >= n - ws).long() + (i >= n - shift).long()


def shift_mask(h: int, w: int, ws: int, shift: int, device=None) -> torch.Tensor:
    """Swin region mask (nW, ws², ws²): 0 inside a region, -100 across regions.

    Built from ``arange`` comparisons (no Python slicing by size), so it traces with dynamic
    ``h``, ``w`` (H, W multiples of ``ws``, 0 < shift < ws)."""
    region = _regions(h, ws, shift, device)[:, None] * 3 + _regions(w, ws, shift, device)
    img = region.to(torch.float32)[None, :, :, None]  # (1, H, W, 1)
    mw = window_partition(img, ws).squeeze(-1)[0]  # (nW, ws²)
    diff = mw[:, None, :] - mw[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)
