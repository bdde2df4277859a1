"""Triton kernels of the fused depthwise 3x3 convolution + exact GELU (imported lazily).

x is read as (B, C, H, W) through its four strides (channels-first or channels-last memory, or a
channel slice, all in place). A program covers a tile of BLOCK_P consecutive pixels (row-major,
so a tile may wrap rows) by BLOCK_C channels, wide along whichever axis is contiguous; the nine
taps are loaded as shifted tiles, fp32 accumulation. Padding "zeros" masks the taps outside the
image; "reflect" mirrors their index (m -> -m, m -> 2(H-1)-m), as ``F.pad(mode="reflect")`` does.

* forward: z = conv(x) + bias, y = z * Phi(z) (erf form), written in x's dtype; nothing but x is
  kept for the backward.
* backward, kernel 1: recompute z, gz = gy * (Phi(z) + z phi(z)) (stored fp32), and per program
  the nine tap sums of gz * x and the sum of gz (weight and bias gradients, reduced in torch:
  deterministic, no atomics);
* backward, kernel 2: gx, the adjoint convolution of gz. Per axis, source q = p + e contributes
  through tap d = 1 - e, and with reflect padding also through the mirrored tap where the
  padded index -1 or H folds back onto p = 1 or p = H - 2.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from contrast_sr.ops.triton_select import on_device

TILES_PER_PROGRAM = 4  # pixel tiles a backward program covers (fewer weight-gradient partials)


@triton.jit
def _tap_index(idx, size, REFLECT: tl.constexpr):
    """The source index of padded index ``idx`` and whether it is inside [0, size)."""
    if REFLECT:
        idx = tl.where(idx < 0, -idx, idx)
        idx = tl.where(idx >= size, 2 * size - 2 - idx, idx)
    return idx, (idx >= 0) & (idx < size)


@triton.jit
def _load_tap(
    x_base, rows, cols, inside, chs, C, H, W, sxc, sxh, sxw, di, dj, REFLECT: tl.constexpr
):  # fmt: skip
    """fp32 tile (BLOCK_P, BLOCK_C) of x under tap (di, dj) of the output pixels (rows, cols)
    (``inside``: the pixel exists)."""
    r, r_ok = _tap_index(rows + di - 1, H, REFLECT)
    q, q_ok = _tap_index(cols + dj - 1, W, REFLECT)
    mask = (r_ok & q_ok & inside)[:, None] & (chs < C)[None, :]
    ptrs = x_base + (r * sxh + q * sxw)[:, None] + (chs * sxc)[None, :]
    return tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _conv_row(
    x_base, w_ptr, b_ptr, rows, cols, inside, chs, C, H, W, sxc, sxh, sxw,
    HAS_BIAS: tl.constexpr, REFLECT: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    """z = conv(x) + bias on one tile, fp32 (BLOCK_P, BLOCK_C)."""
    cmask = chs < C
    z = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.float32)
    for di in tl.static_range(3):
        for dj in tl.static_range(3):
            xv = _load_tap(x_base, rows, cols, inside, chs, C, H, W, sxc, sxh, sxw, di, dj, REFLECT)
            wv = tl.load(w_ptr + chs * 9 + (di * 3 + dj), mask=cmask, other=0.0)
            z += xv * wv.to(tl.float32)[None, :]
    if HAS_BIAS:
        z += tl.load(b_ptr + chs, mask=cmask, other=0.0).to(tl.float32)[None, :]
    return z


@triton.jit
def _tile_coords(tile, H, W, BLOCK_P: tl.constexpr):
    """Pixel tile index -> (rows, cols, inside), each (BLOCK_P,)."""
    pix = tile * BLOCK_P + tl.arange(0, BLOCK_P)
    return pix // W, pix % W, pix < H * W


@triton.jit
def _dwconv_gelu_fwd_kernel(
    x_ptr, w_ptr, b_ptr, y_ptr, C, H, W,
    sxb, sxc, sxh, sxw, syb, syc, syh, syw,
    HAS_BIAS: tl.constexpr, REFLECT: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    rows, cols, inside = _tile_coords(tl.program_id(0), H, W, BLOCK_P)
    chs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    batch = tl.program_id(2).to(tl.int64)
    z = _conv_row(
        x_ptr + batch * sxb, w_ptr, b_ptr, rows, cols, inside, chs, C, H, W, sxc, sxh, sxw,
        HAS_BIAS, REFLECT, BLOCK_P, BLOCK_C,
    )  # fmt: skip
    y = 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))
    mask = inside[:, None] & (chs < C)[None, :]
    ptrs = y_ptr + batch * syb + (rows * syh + cols * syw)[:, None] + (chs * syc)[None, :]
    tl.store(ptrs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _dwconv_gelu_bwd_gz_kernel(
    x_ptr, w_ptr, b_ptr, gy_ptr, gz_ptr, part_ptr, C, H, W,
    sxb, sxc, sxh, sxw, sgb, sgc, sgh, sgw, szb, szc, szh, szw,
    HAS_BIAS: tl.constexpr, REFLECT: tl.constexpr, TILES: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    group = tl.program_id(0)  # pixel tiles group*TILES .. group*TILES + TILES-1
    chs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    batch = tl.program_id(2).to(tl.int64)
    x_base = x_ptr + batch * sxb
    taps = tl.arange(0, 16)[:, None]  # rows 0-8: weight taps, row 9: bias
    sums = tl.zeros((16, BLOCK_C), dtype=tl.float32)
    for k in range(TILES):
        rows, cols, inside = _tile_coords(group * TILES + k, H, W, BLOCK_P)
        z = _conv_row(
            x_base, w_ptr, b_ptr, rows, cols, inside, chs, C, H, W, sxc, sxh, sxw,
            HAS_BIAS, REFLECT, BLOCK_P, BLOCK_C,
        )  # fmt: skip
        mask = inside[:, None] & (chs < C)[None, :]
        gy_ptrs = gy_ptr + batch * sgb + (rows * sgh + cols * sgw)[:, None] + (chs * sgc)[None, :]
        gy = tl.load(gy_ptrs, mask=mask, other=0.0).to(tl.float32)
        cdf = 0.5 * (1.0 + tl.math.erf(z * 0.7071067811865476))
        pdf = tl.exp(-0.5 * z * z) * 0.3989422804014327
        gz = gy * (cdf + z * pdf)
        gz_ptrs = gz_ptr + batch * szb + (rows * szh + cols * szw)[:, None] + (chs * szc)[None, :]
        tl.store(gz_ptrs, gz, mask=mask)
        for di in tl.static_range(3):
            for dj in tl.static_range(3):
                xv = _load_tap(
                    x_base, rows, cols, inside, chs, C, H, W, sxc, sxh, sxw, di, dj, REFLECT
                )  # fmt: skip
                tap_sum = tl.sum(gz * xv, axis=0)[None, :]
                sums += tl.where(taps == di * 3 + dj, tap_sum, 0.0)
        sums += tl.where(taps == 9, tl.sum(gz, axis=0)[None, :], 0.0)
    program = batch * tl.num_programs(0) + group
    ptrs = part_ptr + program * 10 * C + taps * C + chs[None, :]
    tl.store(ptrs, sums, mask=(taps < 10) & (chs < C)[None, :])


@triton.jit
def _dwconv_bwd_input_kernel(
    gz_ptr, w_ptr, gx_ptr, C, H, W,
    szb, szc, szh, szw, sxb, sxc, sxh, sxw,
    REFLECT: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    rows, cols, inside = _tile_coords(tl.program_id(0), H, W, BLOCK_P)
    chs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    batch = tl.program_id(2).to(tl.int64)
    cmask = chs < C
    w_row = w_ptr + chs * 9
    acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.float32)
    for ei in tl.static_range(3):  # source row = row + ei - 1, main tap di = 2 - ei
        src_r = rows + ei - 1
        r_ok = (src_r >= 0) & (src_r < H)
        row_fold = (rows == 1) if ei == 0 else (rows == H - 2)  # mirrored tap di = ei
        for ej in tl.static_range(3):
            src_c = cols + ej - 1
            col_fold = (cols == 1) if ej == 0 else (cols == W - 2)
            w_main = tl.load(w_row + (2 - ei) * 3 + (2 - ej), mask=cmask, other=0.0)
            w_eff = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.float32) + w_main.to(tl.float32)[None, :]
            if REFLECT:
                if ei != 1:
                    w_r = tl.load(w_row + ei * 3 + (2 - ej), mask=cmask, other=0.0)
                    w_eff += tl.where(row_fold[:, None], w_r.to(tl.float32)[None, :], 0.0)
                if ej != 1:
                    w_c = tl.load(w_row + (2 - ei) * 3 + ej, mask=cmask, other=0.0)
                    w_eff += tl.where(col_fold[:, None], w_c.to(tl.float32)[None, :], 0.0)
                if ei != 1 and ej != 1:
                    w_rc = tl.load(w_row + ei * 3 + ej, mask=cmask, other=0.0)
                    both = (col_fold & row_fold)[:, None]
                    w_eff += tl.where(both, w_rc.to(tl.float32)[None, :], 0.0)
            mask = (r_ok & (src_c >= 0) & (src_c < W) & inside)[:, None] & cmask[None, :]
            ofs = batch * szb + (src_r * szh + src_c * szw)[:, None] + (chs * szc)[None, :]
            ptrs = gz_ptr + ofs
            acc += tl.load(ptrs, mask=mask, other=0.0) * w_eff
    mask = inside[:, None] & cmask[None, :]
    ptrs = gx_ptr + batch * sxb + (rows * sxh + cols * sxw)[:, None] + (chs * sxc)[None, :]
    tl.store(ptrs, acc.to(gx_ptr.dtype.element_ty), mask=mask)


def _blocks(c: int, pixels: int, channels_contiguous: bool) -> tuple[int, int]:
    """(BLOCK_P, BLOCK_C): up to 1024 elements a tile, wide along the contiguous axis."""
    if channels_contiguous:
        block_c = min(triton.next_power_of_2(c), 64)
        return min(triton.next_power_of_2(pixels), max(1024 // block_c, 1)), block_c
    block_p = min(triton.next_power_of_2(pixels), 128)
    return block_p, min(triton.next_power_of_2(c), max(1024 // block_p, 1))


def _check(x: torch.Tensor, reflect: bool) -> None:
    if reflect and min(x.shape[2:]) < 2:
        raise ValueError(f"reflect padding needs H, W >= 2, got {tuple(x.shape[2:])}")


def dwconv3x3_gelu_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, reflect: bool
) -> torch.Tensor:
    """GELU(dwconv3x3(x) + bias): x (B, C, H, W) any strides -> y (B, C, H, W), x's layout."""
    _check(x, reflect)
    b, c, h, w = x.shape
    y = torch.empty_like(x)
    if y.numel() == 0:
        return y
    block_p, block_c = _blocks(c, h * w, x.stride(1) == 1)
    grid = (triton.cdiv(h * w, block_p), triton.cdiv(c, block_c), b)
    _dwconv_gelu_fwd_kernel[grid](
        x, weight, weight if bias is None else bias, y, c, h, w, *x.stride(), *y.stride(),
        HAS_BIAS=bias is not None, REFLECT=reflect, BLOCK_P=block_p, BLOCK_C=block_c,
    )  # fmt: skip
    return y


def dwconv3x3_gelu_backward(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    reflect: bool,
    gy: torch.Tensor,
    need_input_grad: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """(gx or None, g_weight (C, 1, 3, 3) fp32, g_bias (C,) fp32) for output gradient gy."""
    b, c, h, w = x.shape
    block_p, block_c = _blocks(c, h * w, x.stride(1) == 1)
    n_tiles, n_cb = triton.cdiv(h * w, block_p), triton.cdiv(c, block_c)
    tiles = min(TILES_PER_PROGRAM, n_tiles)
    n_groups = triton.cdiv(n_tiles, tiles)
    gz = torch.empty_like(x, dtype=torch.float32)
    partials = x.new_empty(b * n_groups, 10, c, dtype=torch.float32)
    _dwconv_gelu_bwd_gz_kernel[(n_groups, n_cb, b)](
        x, weight, weight if bias is None else bias, gy, gz, partials, c, h, w,
        *x.stride(), *gy.stride(), *gz.stride(),
        HAS_BIAS=bias is not None, REFLECT=reflect, TILES=tiles,
        BLOCK_P=block_p, BLOCK_C=block_c,
    )  # fmt: skip
    sums = partials.sum(0)  # (10, C)
    g_weight = sums[:9].t().reshape(c, 1, 3, 3)
    gx = None
    if need_input_grad:
        gx = torch.empty_like(x)
        _dwconv_bwd_input_kernel[(n_tiles, n_cb, b)](
            gz, weight, gx, c, h, w, *gz.stride(), *gx.stride(),
            REFLECT=reflect, BLOCK_P=block_p, BLOCK_C=block_c,
        )  # fmt: skip
    return gx, g_weight, sums[9]


class DwConv3x3Gelu(torch.autograd.Function):
    """GELU(dwconv3x3(x)) with the kernels above; saves only x (z is recomputed)."""

    @staticmethod
    def forward(ctx, x, weight, bias, reflect):
        weight = weight.contiguous()
        ctx.save_for_backward(x, weight, bias)
        ctx.reflect = reflect
        with on_device(x):
            return dwconv3x3_gelu_forward(x, weight, bias, reflect)

    @staticmethod
    def backward(ctx, gy):
        x, weight, bias = ctx.saved_tensors
        if x.numel() == 0:
            g_bias = None if bias is None else torch.zeros_like(bias)
            return torch.zeros_like(x), torch.zeros_like(weight), g_bias, None
        with on_device(x):
            gx, g_weight, g_bias = dwconv3x3_gelu_backward(
                x, weight, bias, ctx.reflect, gy, ctx.needs_input_grad[0]
            )
        g_bias = None if bias is None else g_bias.to(bias.dtype)
        return gx, g_weight.to(weight.dtype), g_bias, None
