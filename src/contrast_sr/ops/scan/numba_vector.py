"""One step of the N = 1 scan forward in explicit AVX-512-width vectors (importing this module
needs numba).

Per lane: dt = softplus(delta + bias), a = exp(dt * A), h = a * h + dt * u * B, y = D * u + C * h.
Written as numba loops over a step's lanes, LLVM vectorises each loop one 16-lane vector per
iteration; every vector then waits on its own long chain (two exps, a division, two series,
~150 cycles), and the core has too few independent instructions in its window to hide that:
the forward at (8, 240, 1, 4096) took 7.5-9 ms at one thread. :func:`forward_step_n1` emits the
whole step for ``GROUP`` vectors at a time with their instructions interleaved (each operation for
all of them before the next), the group's last vectors masked at the end of the lanes: 4.5-5.3 ms
at one thread. The arithmetic is that of ``_exp`` and ``_softplus`` in
:mod:`~contrast_sr.ops.scan.numba_kernels` (same constants and order; results differ by float32
rounding only, as LLVM fuses the plain loops' multiply-adds where it sees fit).

numba's cache keys the kernels on the source of :mod:`~contrast_sr.ops.scan.numba_kernels`
alone, so a change here must come with one there (its ``VECTOR_STEP_REVISION``), or processes
keep loading kernels compiled from the old code.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

GROUP = 4  # vectors per interleaved group (64 lanes); 3-5 measured alike at 240 lanes

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VEC = ir.VectorType(_F32, 16)
_IVEC = ir.VectorType(_I32, 16)
_MASK = ir.VectorType(ir.IntType(1), 16)
_LANES = ir.Constant(_IVEC, list(range(16)))


def _const(x: float) -> ir.Constant:
    return ir.Constant(_VEC, [float(np.float32(x))] * 16)


def _intrinsic_fn(builder: ir.IRBuilder, name: str, ret: ir.Type, args: list) -> ir.Function:
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)


def _each(f: Callable, *columns: list) -> list:
    """``f`` over the group's vectors, one operation for all of them before the next."""
    return [f(*args) for args in zip(*columns, strict=True)]


def _splat(builder: ir.IRBuilder, scalar: ir.Value, vec_type: ir.VectorType) -> ir.Value:
    one = builder.insert_element(ir.Constant(vec_type, ir.Undefined), scalar, _I32(0))
    return builder.shuffle_vector(
        one, ir.Constant(vec_type, ir.Undefined), ir.Constant(_IVEC, [0] * 16)
    )


def emit_exp(builder: ir.IRBuilder, xs: list) -> list:
    """exp of each vector: ``_exp``'s clamp, Cody-Waite reduction and degree-7 polynomial."""
    b = builder
    fma = _intrinsic_fn(b, "llvm.fma.v16f32", _VEC, [_VEC] * 3)
    vmax = _intrinsic_fn(b, "llvm.maxnum.v16f32", _VEC, [_VEC] * 2)
    vmin = _intrinsic_fn(b, "llvm.minnum.v16f32", _VEC, [_VEC] * 2)
    floor = _intrinsic_fn(b, "llvm.floor.v16f32", _VEC, [_VEC])
    xs = _each(lambda x: b.call(vmin, [b.call(vmax, [x, _const(-87.0)]), _const(88.0)]), xs)
    ks = _each(
        lambda x: b.call(floor, [b.call(fma, [x, _const(1.4426950408889634), _const(0.5)])]), xs
    )
    rs = _each(lambda x, k: b.call(fma, [k, _const(-0.693145751953125), x]), xs, ks)
    rs = _each(lambda r, k: b.call(fma, [k, _const(-1.428606765330187e-06), r]), rs, ks)
    ps = [_const(1 / 5040)] * len(xs)
    for c in (1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1.0, 1.0):
        ps = _each(lambda p, r, c=c: b.call(fma, [p, r, _const(c)]), ps, rs)

    def scale(k):
        biased = b.add(b.fptosi(k, _IVEC), ir.Constant(_IVEC, [127] * 16))
        return b.bitcast(b.shl(biased, ir.Constant(_IVEC, [23] * 16)), _VEC)

    return _each(lambda p, k: b.fmul(p, scale(k)), ps, ks)


def emit_softplus(builder: ir.IRBuilder, zs: list) -> list:
    """softplus of each vector: ``_softplus``'s max(z, 0) + log1p(exp(-|z|)) by the atanh series."""
    b = builder
    fma = _intrinsic_fn(b, "llvm.fma.v16f32", _VEC, [_VEC] * 3)
    fabs = _intrinsic_fn(b, "llvm.fabs.v16f32", _VEC, [_VEC])
    vmax = _intrinsic_fn(b, "llvm.maxnum.v16f32", _VEC, [_VEC] * 2)
    es = emit_exp(b, _each(lambda z: b.fneg(b.call(fabs, [z])), zs))
    ss = _each(lambda e: b.fdiv(e, b.fadd(_const(2.0), e)), es)
    s2 = _each(lambda s: b.fmul(s, s), ss)
    ps = [_const(1 / 13)] * len(zs)
    for c in (1 / 11, 1 / 9, 1 / 7, 1 / 5, 1 / 3, 1.0):
        ps = _each(lambda p, q, c=c: b.call(fma, [p, q, _const(c)]), ps, s2)
    return _each(
        lambda z, s, p: b.fadd(b.call(vmax, [z, _const(0.0)]), b.fmul(b.fmul(_const(2.0), s), p)),
        zs,
        ss,
        ps,
    )


class _Vectors:
    """Vector loads and stores (masked where a mask is given) and the B/C spread, for one
    intrinsic's codegen."""

    def __init__(self, builder: ir.IRBuilder, split_arrays: tuple, brow: ir.Value) -> None:
        b = self.b = builder
        self.first_group, self.next_group, self.split = split_arrays
        self.brow = brow
        self.masked_load = _intrinsic_fn(
            b, "llvm.masked.load.v16f32.p0v16f32", _VEC, [_VEC.as_pointer(), _I32, _MASK, _VEC]
        )
        self.masked_store = _intrinsic_fn(
            b, "llvm.masked.store.v16f32.p0v16f32", ir.VoidType(),
            [_VEC, _VEC.as_pointer(), _I32, _MASK],
        )  # fmt: skip
        self.fma = _intrinsic_fn(b, "llvm.fma.v16f32", _VEC, [_VEC] * 3)

    def at(self, base: ir.Value, index: ir.Value) -> ir.Value:
        return self.b.bitcast(self.b.gep(base, [index]), _VEC.as_pointer())

    def load(self, base: ir.Value, index: ir.Value, mask: ir.Value | None) -> ir.Value:
        if mask is None:
            value = self.b.load(self.at(base, index))
            value.align = 4
            return value
        return self.b.call(self.masked_load, [self.at(base, index), _I32(4), mask, _const(0.0)])

    def store(
        self, value: ir.Value, base: ir.Value, index: ir.Value, mask: ir.Value | None
    ) -> None:
        if mask is None:
            self.b.store(value, self.at(base, index)).align = 4
        else:
            self.b.call(self.masked_store, [value, self.at(base, index), _I32(4), mask])

    def spread(self, source: ir.Value, vector: ir.Value) -> ir.Value:
        """B or C over a vector's lanes: two groups, split at ``split[vector]``."""
        b = self.b

        def value(groups):
            return b.load(b.gep(source, [b.add(self.brow, b.load(b.gep(groups, [vector])))]))

        count = b.trunc(b.load(b.gep(self.split, [vector])), _I32)
        below = b.icmp_signed("<", _LANES, _splat(b, count, _IVEC))
        return b.select(
            below, _splat(b, value(self.first_group), _VEC), _splat(b, value(self.next_group), _VEC)
        )


def _lane_loop(builder: ir.IRBuilder, w: ir.Value, group: Callable) -> None:
    """``group(first_lane, masks)`` over lanes [0, w) in groups of ``GROUP`` vectors: whole
    groups unmasked, then one masked group for the rest (if any)."""
    b = builder
    width = 16 * GROUP
    full = b.udiv(w, _I64(width))
    entry = b.block
    loop = b.append_basic_block("lanes.loop")
    body = b.append_basic_block("lanes.body")
    tail = b.append_basic_block("lanes.tail")
    tail_work = b.append_basic_block("lanes.tail_work")
    done = b.append_basic_block("lanes.done")
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(_I64)
    i.add_incoming(_I64(0), entry)
    b.cbranch(b.icmp_unsigned("<", i, full), body, tail)
    b.position_at_end(body)
    group(b.mul(i, _I64(width)), [None] * GROUP)
    i.add_incoming(b.add(i, _I64(1)), b.block)
    b.branch(loop)
    b.position_at_end(tail)
    start = b.mul(full, _I64(width))
    left = b.trunc(b.sub(w, start), _I32)
    b.cbranch(b.icmp_unsigned("!=", left, _I32(0)), tail_work, done)
    b.position_at_end(tail_work)
    masks = [
        b.icmp_signed("<", _LANES, _splat(b, b.sub(left, _I32(16 * k)), _IVEC))
        for k in range(GROUP)
    ]
    group(start, masks)
    b.branch(done)
    b.position_at_end(done)


def _lanes(b: ir.IRBuilder, start: ir.Value) -> tuple[list, list]:
    """A group's first lane of each vector and each vector's index."""
    lanes = [b.add(start, _I64(16 * k)) for k in range(GROUP)]
    return lanes, [b.lshr(lane, _I64(4)) for lane in lanes]


@intrinsic
def forward_step_n1(
    typingctx, ua, da, ya, ir_off, row, brow, bias, At, B, C, D, dt_out, save_dt, c0, w, h,
    first_group, next_group, split,
):  # fmt: skip
    """One forward step (N = 1, softplus) on a job's lanes [0, w), lane c being channel c0 + c:
    u, delta, y at ``ua``, ``da``, ``ya`` [ir_off + c]; bias, At, D at [c0 + c]; the state h[c];
    dt_out[row + c] when ``save_dt``; B, C at [brow + group]. Vector j (lanes 16j..16j+15) takes
    its lanes below ``split[j]`` from group ``first_group[j]`` and the others from
    ``next_group[j]`` (int64 arrays with room for ``GROUP`` vectors past the last). Flat float32
    arrays, uint64 offsets, every index in bounds (not checked)."""
    sig = types.void(
        ua, da, ya, ir_off, row, brow, bias, At, B, C, D, dt_out, save_dt, c0, w, h,
        first_group, next_group, split,
    )  # fmt: skip

    def codegen(context, builder, signature, args):
        b = builder

        def data(i):
            return context.make_array(signature.args[i])(context, b, args[i]).data

        pu, pd, py, pbias, pA, pB, pC, pD, pdt, ph = (
            data(i) for i in (0, 1, 2, 6, 7, 8, 9, 10, 11, 15)
        )
        off, row_, brow_, save, c0_, w_ = (args[i] for i in (3, 4, 5, 12, 13, 14))
        v = _Vectors(b, tuple(data(i) for i in (16, 17, 18)), brow_)

        def group(start, masks):
            lanes, vectors = _lanes(b, start)
            at_off = [(b.add(off, c), m) for c, m in zip(lanes, masks, strict=True)]
            at_ch = [(b.add(c0_, c), m) for c, m in zip(lanes, masks, strict=True)]
            us = [v.load(pu, i, m) for i, m in at_off]
            zs = [
                b.fadd(v.load(pd, i, m), v.load(pbias, j, m))
                for (i, m), (j, _) in zip(at_off, at_ch, strict=True)
            ]
            dts = emit_softplus(b, zs)
            decay = emit_exp(
                b, [b.fmul(dt, v.load(pA, i, m)) for dt, (i, m) in zip(dts, at_ch, strict=True)]
            )
            hs = [v.load(ph, c, m) for c, m in zip(lanes, masks, strict=True)]
            bs = [v.spread(pB, j) for j in vectors]
            cs = [v.spread(pC, j) for j in vectors]
            new_h = _each(
                lambda a, hv, dt, u, bv: b.call(v.fma, [a, hv, b.fmul(b.fmul(dt, u), bv)]),
                decay, hs, dts, us, bs,
            )  # fmt: skip
            ds = [v.load(pD, i, m) for i, m in at_ch]
            ys = _each(
                lambda cv, hv, d, u: b.call(v.fma, [cv, hv, b.fmul(d, u)]), cs, new_h, ds, us
            )
            for c, m, hv in zip(lanes, masks, new_h, strict=True):
                v.store(hv, ph, c, m)
            for (i, m), yv in zip(at_off, ys, strict=True):
                v.store(yv, py, i, m)
            with b.if_then(save):
                for c, m, dt in zip(lanes, masks, dts, strict=True):
                    v.store(dt, pdt, b.add(row_, c), m)

        _lane_loop(b, w_, group)
        return context.get_dummy_value()

    return sig, codegen


__all__ = ["GROUP", "emit_exp", "emit_softplus", "forward_step_n1"]
