"""Triton kernels of the cross-scan and the cross-merge (imported lazily by ``cross_scan``).

Both kernels see the image as tokens ``x[b, s, c]`` (``s = i*w + j`` row-major; strides given
per axis b, h, w, c, so any layout and any view is read in place) and the scanned sequences as
``y[b, t, k, c]`` (strides per axis b, t, k, c). Direction k's step t visits token ``perm_k[t]``;
its inverse, where token s lands, is computed from (i, j), so no index table and no flip is ever
built:

    t_0 = s,   t_1 = j*h + i,   t_2 = L-1-s,   t_3 = L-1-t_1.

* scan: a program loads one (BLOCK_S tokens, BLOCK_C channels) tile of x once and stores it at
  the four places it occupies in y;
* merge: a program gathers those four tiles of y, sums them (fp32 for 16-bit inputs) and stores
  one tile of x.

The two are each other's adjoint, so each Function's backward is the other kernel. The
channel-major pair (b, c, h, w) <-> (b, 4, c, L) runs the same kernels with permuted strides.
Any float dtype; the output has the input's dtype.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from contrast_sr.ops.triton_select import on_device


@triton.jit
def _tile_coords(h, w, c, BLOCK_S: tl.constexpr, BLOCK_C: tl.constexpr):
    """This program's tile: row-major token indices s (BLOCK_S,), channels ch (BLOCK_C,), the
    batch row, L = h*w, the token's (i, j), its column-major index and the in-bounds mask."""
    s = tl.program_id(0) * BLOCK_S + tl.arange(0, BLOCK_S).to(tl.int64)
    ch = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C).to(tl.int64)
    batch = tl.program_id(2).to(tl.int64)
    L = h * w
    i = s // w
    j = s % w
    t_col = j * h + i
    mask = (s < L)[:, None] & (ch < c)[None, :]
    return s, ch, batch, L, i, j, t_col, mask


@triton.jit
def _cross_scan_kernel(
    x_ptr, y_ptr, h, w, c,
    sxb, sxh, sxw, sxc,
    syb, syt, syk, syc,
    BLOCK_S: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    s, ch, batch, L, i, j, t_col, mask = _tile_coords(h, w, c, BLOCK_S, BLOCK_C)
    x_ofs = batch * sxb + (i * sxh + j * sxw)[:, None] + (ch * sxc)[None, :]
    tile = tl.load(x_ptr + x_ofs, mask=mask)
    y_base = y_ptr + batch * syb + (ch * syc)[None, :]
    tl.store(y_base + (s * syt)[:, None], tile, mask=mask)
    tl.store(y_base + syk + (t_col * syt)[:, None], tile, mask=mask)
    tl.store(y_base + 2 * syk + ((L - 1 - s) * syt)[:, None], tile, mask=mask)
    tl.store(y_base + 3 * syk + ((L - 1 - t_col) * syt)[:, None], tile, mask=mask)


@triton.jit
def _cross_merge_kernel(
    y_ptr, x_ptr, h, w, c,
    syb, syt, syk, syc,
    sxb, sxh, sxw, sxc,
    BLOCK_S: tl.constexpr, BLOCK_C: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    s, ch, batch, L, i, j, t_col, mask = _tile_coords(h, w, c, BLOCK_S, BLOCK_C)
    y_base = y_ptr + batch * syb + (ch * syc)[None, :]
    rows = tl.load(y_base + (s * syt)[:, None], mask=mask)
    cols = tl.load(y_base + syk + (t_col * syt)[:, None], mask=mask)
    rows_rev = tl.load(y_base + 2 * syk + ((L - 1 - s) * syt)[:, None], mask=mask)
    cols_rev = tl.load(y_base + 3 * syk + ((L - 1 - t_col) * syt)[:, None], mask=mask)
    if UPCAST:
        rows = rows.to(tl.float32)
        cols = cols.to(tl.float32)
        rows_rev = rows_rev.to(tl.float32)
        cols_rev = cols_rev.to(tl.float32)
    total = rows + cols + rows_rev + cols_rev
    x_ofs = batch * sxb + (i * sxh + j * sxw)[:, None] + (ch * sxc)[None, :]
    tl.store(x_ptr + x_ofs, total.to(x_ptr.dtype.element_ty), mask=mask)


def _blocks(c: int, channels_contiguous: bool) -> tuple[int, int]:
    """(BLOCK_S, BLOCK_C): about 2048 elements a tile, wide along the contiguous axis."""
    if channels_contiguous:
        block_c = min(triton.next_power_of_2(c), 128)
        return max(2048 // block_c, 1), block_c
    block_c = min(triton.next_power_of_2(c), 8)
    return 2048 // block_c, block_c


def _launch_scan(x: torch.Tensor, y: torch.Tensor, dims, x_strides, y_strides) -> None:
    b, h, w, c = dims
    block_s, block_c = _blocks(c, x_strides[3] == 1)
    grid = (triton.cdiv(h * w, block_s), triton.cdiv(c, block_c), b)
    with on_device(x):
        _cross_scan_kernel[grid](
            x, y, h, w, c, *x_strides, *y_strides, BLOCK_S=block_s, BLOCK_C=block_c
        )


def _launch_merge(y: torch.Tensor, x: torch.Tensor, dims, y_strides, x_strides) -> None:
    b, h, w, c = dims
    block_s, block_c = _blocks(c, y_strides[3] == 1)
    grid = (triton.cdiv(h * w, block_s), triton.cdiv(c, block_c), b)
    upcast = y.dtype in (torch.float16, torch.bfloat16)
    with on_device(y):
        _cross_merge_kernel[grid](
            y, x, h, w, c, *y_strides, *x_strides, BLOCK_S=block_s, BLOCK_C=block_c, UPCAST=upcast
        )


def scan_channels_last(x: torch.Tensor) -> torch.Tensor:
    """(b, h, w, c), any strides -> (b, h*w, 4, c) contiguous."""
    b, h, w, c = x.shape
    y = x.new_empty(b, h * w, 4, c)
    if y.numel():
        _launch_scan(x, y, (b, h, w, c), x.stride(), y.stride())
    return y


def merge_channels_last(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(b, h*w, 4, c), any strides -> (b, h, w, c) contiguous."""
    b, _, _, c = y.shape
    x = y.new_empty(b, h, w, c)
    if x.numel():
        _launch_merge(y, x, (b, h, w, c), y.stride(), x.stride())
    return x


def scan_channel_major(x: torch.Tensor) -> torch.Tensor:
    """(b, c, h, w), any strides -> (b, 4, c, h*w) contiguous."""
    b, c, h, w = x.shape
    y = x.new_empty(b, 4, c, h * w)
    if y.numel():
        sx, sy = x.stride(), y.stride()
        _launch_scan(x, y, (b, h, w, c), (sx[0], sx[2], sx[3], sx[1]), (sy[0], sy[3], sy[1], sy[2]))
    return y


def merge_channel_major(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(b, 4, c, h*w), any strides -> (b, c, h*w) contiguous."""
    b, _, c, L = y.shape
    x = y.new_empty(b, c, L)
    if x.numel():
        sy, sx = y.stride(), x.stride()
        _launch_merge(y, x, (b, h, w, c), (sy[0], sy[3], sy[1], sy[2]), (sx[0], w, 1, sx[1]))
    return x


class CrossScanChannelsLast(torch.autograd.Function):
    """(b, h, w, c) -> (b, L, 4, c); backward: the merge kernel."""

    @staticmethod
    def forward(ctx, x):
        ctx.hw = x.shape[1:3]
        return scan_channels_last(x)

    @staticmethod
    def backward(ctx, gy):
        return merge_channels_last(gy, *ctx.hw)


class CrossMergeChannelsLast(torch.autograd.Function):
    """(b, L, 4, c) -> (b, h, w, c); backward: the scan kernel."""

    @staticmethod
    def forward(ctx, y, h, w):
        return merge_channels_last(y, h, w)

    @staticmethod
    def backward(ctx, gx):
        return scan_channels_last(gx), None, None


class CrossScanChannelMajor(torch.autograd.Function):
    """(b, c, h, w) -> (b, 4, c, L); backward: the merge kernel."""

    @staticmethod
    def forward(ctx, x):
        ctx.hw = x.shape[2:]
        return scan_channel_major(x)

    @staticmethod
    def backward(ctx, gy):
        h, w = ctx.hw
        return merge_channel_major(gy, h, w).view(gy.shape[0], gy.shape[2], h, w)


class CrossMergeChannelMajor(torch.autograd.Function):
    """(b, 4, c, L) -> (b, c, L); backward: the scan kernel."""

    @staticmethod
    def forward(ctx, y, h, w):
        ctx.hw = (h, w)
        return merge_channel_major(y, h, w)

    @staticmethod
    def backward(ctx, gx):
        h, w = ctx.hw
        return scan_channel_major(gx.reshape(gx.shape[0], gx.shape[1], h, w)), None, None
