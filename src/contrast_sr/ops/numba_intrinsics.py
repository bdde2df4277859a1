"""LLVM-level helpers for the numba kernels (importing this module needs numba).

numba has no words for these, and LLVM does not derive them from plain loops:

* :func:`as_float32`: an int32's bits as a float32 (the exponent trick of the kernels' ``exp``);
* :func:`transpose16`: a 16 x 16 float32 block transposed in vector registers, 16 row loads,
  64 shuffles and 16 row stores. Written as loops, the same move is one scalar store per
  element: staging a (8, 240, 4096) map in 64-step blocks took 4.1 ms that way, 2.7 ms with
  this (1 thread, AVX-512);
* :func:`gemm_tile`: an (MR rows x 16 NV columns) block of ``x @ wt + bias`` with its MR * NV
  accumulators in vector registers across the K loop (numba's loops keep them in memory, and
  took 4.3 ms for a (65536, 32) x (32, 64) product that this does in 1.3 ms, 2 threads);
* :func:`claim`: an atomic fetch-and-add on a job counter. numba's ``prange`` gives every
  thread a fixed, equal share of the iterations, so when one core is slower (a busy laptop,
  a shared VM) the others wait for it. The kernels run ``for _ in prange(jobs)`` around
  ``job = claim(counter); while job < jobs: ...; job = claim(counter)``: the first iteration
  on each thread works until no job is left (the rest find none), so a fast thread takes
  more jobs. (numba's own ``get_num_threads`` would make the kernels uncacheable.)
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def as_float32(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (vectorisable)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def claim(typingctx, counter):
    """Atomically ``job = counter[0]; counter[0] += 1``; returns job (counter: a 1-element
    int64 array shared by the threads)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        one = ir.Constant(ir.IntType(64), 1)
        return builder.atomic_rmw("add", data, one, "monotonic")

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


@intrinsic
def gemm_tile(typingctx, out, ooff, ostride, x, xoff, xstride, wt, woff, wstride, bias, K, MR, NV):
    """``out[ooff + i * ostride + j] = bias[woff + j] + sum_k x[xoff + i * xstride + k] *
    wt[woff + k * wstride + j]`` for i < MR, j < 16 * NV: flat float32 arrays, uint64 offsets,
    strides and K >= 1, MR and NV literal ints, every index in bounds (not checked)."""
    if not (isinstance(MR, types.IntegerLiteral) and isinstance(NV, types.IntegerLiteral)):
        return None
    rows, vectors = MR.literal_value, NV.literal_value
    sig = types.void(out, ooff, ostride, x, xoff, xstride, wt, woff, wstride, bias, K, MR, NV)

    def codegen(context, builder, signature, args):
        def data(i):
            return context.make_array(signature.args[i])(context, builder, args[i]).data

        o, xs, w, b = data(0), data(3), data(6), data(9)
        ooff_, ostride_, xoff_, xstride_, woff_, wstride_, k_end = (
            args[i] for i in (1, 2, 4, 5, 7, 8, 10)
        )
        i64 = ir.IntType(64)
        vec = ir.VectorType(ir.FloatType(), 16)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec]), "llvm.fma.v16f32"
        )
        splat = ir.Constant(ir.VectorType(ir.IntType(32), 16), [0] * 16)

        def at(base, index):
            return builder.gep(base, [index])

        def load_vector(base, index):
            load = builder.load(builder.bitcast(at(base, index), vec.as_pointer()))
            load.align = 4
            return load

        def column(v):
            return ir.Constant(i64, 16 * v)

        start = [load_vector(b, builder.add(woff_, column(v))) for v in range(vectors)]
        entry = builder.block
        loop = builder.append_basic_block("gemm_tile.k")
        done = builder.append_basic_block("gemm_tile.done")
        builder.branch(loop)
        builder.position_at_end(loop)
        k = builder.phi(i64)
        k.add_incoming(ir.Constant(i64, 0), entry)
        acc = [[builder.phi(vec) for _ in range(vectors)] for _ in range(rows)]
        for row in acc:
            for v, phi in enumerate(row):
                phi.add_incoming(start[v], entry)
        w_row = builder.add(woff_, builder.mul(k, wstride_))
        w_vecs = [load_vector(w, builder.add(w_row, column(v))) for v in range(vectors)]
        summed = []
        for i in range(rows):
            x_index = builder.add(xoff_, builder.add(builder.mul(ir.Constant(i64, i), xstride_), k))
            one = builder.insert_element(
                ir.Constant(vec, ir.Undefined),
                builder.load(at(xs, x_index)),
                ir.Constant(ir.IntType(32), 0),
            )
            x_vec = builder.shuffle_vector(one, ir.Constant(vec, ir.Undefined), splat)
            summed.append(
                [builder.call(fma, [x_vec, w_vecs[v], acc[i][v]]) for v in range(vectors)]
            )
        k_next = builder.add(k, ir.Constant(i64, 1))
        k.add_incoming(k_next, builder.block)
        for i in range(rows):
            for v in range(vectors):
                acc[i][v].add_incoming(summed[i][v], builder.block)
        builder.cbranch(builder.icmp_unsigned("<", k_next, k_end), loop, done)
        builder.position_at_end(done)
        for i in range(rows):
            o_row = builder.add(ooff_, builder.mul(ir.Constant(i64, i), ostride_))
            for v in range(vectors):
                pointer = builder.bitcast(at(o, builder.add(o_row, column(v))), vec.as_pointer())
                store = builder.store(summed[i][v], pointer)
                store.align = 4
        return context.get_dummy_value()

    return sig, codegen


__all__ = ["as_float32", "gemm_tile", "transpose16"]
