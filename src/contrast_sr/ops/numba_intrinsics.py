"""LLVM-level helpers for the numba kernels (importing this module needs numba).

numba has no words for these, and LLVM does not derive them from plain loops:

* :func:`as_float32`: an int32's bits as a float32 (the exponent trick of the kernels' ``exp``);
* :func:`transpose16`: a 16 x 16 float32 block transposed in vector registers, 16 row loads,
  64 shuffles and 16 row stores. Written as loops, the same move is one scalar store per
  element: staging a (8, 240, 4096) map in 64-step blocks took 4.1 ms that way, 2.7 ms with
  this (1 thread, AVX-512).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def as_float32(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (vectorisable)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


def _block_swap_masks(h: int) -> tuple[list[int], list[int]]:
    """Shuffle masks of one transpose round: rows a, b (h apart) swap their off-diagonal
    h-wide blocks (``shufflevector`` numbers a's lanes 0-15 and b's 16-31)."""
    first = [j if j & h == 0 else 16 + j - h for j in range(16)]
    second = [j + h if j & h == 0 else 16 + j for j in range(16)]
    return first, second


@intrinsic
def transpose16(typingctx, dst, dst_off, dst_stride, src, src_off, src_stride):
    """``dst[dst_off + j * dst_stride + i] = src[src_off + i * src_stride + j]`` for i, j < 16:
    flat float32 arrays, uint64 offsets and strides, every row in bounds (not checked)."""
    sig = types.void(dst, dst_off, dst_stride, src, src_off, src_stride)

    def codegen(context, builder, signature, args):
        d = context.make_array(signature.args[0])(context, builder, args[0]).data
        s = context.make_array(signature.args[3])(context, builder, args[3]).data
        i64 = ir.IntType(64)
        vec = ir.VectorType(ir.FloatType(), 16)
        mask_type = ir.VectorType(ir.IntType(32), 16)

        def row_ptr(base, off, stride, i):
            index = builder.add(off, builder.mul(stride, ir.Constant(i64, i)))
            return builder.bitcast(builder.gep(base, [index]), vec.as_pointer())

        rows = []
        for i in range(16):
            load = builder.load(row_ptr(s, args[4], args[5], i))
            load.align = 4
            rows.append(load)
        for h in (8, 4, 2, 1):  # swap h x h blocks: after the four rounds row j is column j
            first, second = (ir.Constant(mask_type, m) for m in _block_swap_masks(h))
            for i in range(16):
                if i & h == 0:
                    a, b = rows[i], rows[i + h]
                    rows[i] = builder.shuffle_vector(a, b, first)
                    rows[i + h] = builder.shuffle_vector(a, b, second)
        for j in range(16):
            store = builder.store(rows[j], row_ptr(d, args[1], args[2], j))
            store.align = 4
        return context.get_dummy_value()

    return sig, codegen


__all__ = ["as_float32", "transpose16"]
