"""Mamba-2 SSD scan benchmark at a light model's shapes, in one process.

For each (batch, L) it times, forward and forward+backward (minimum of clean repetitions, see
:func:`~contrast_sr.analysis.bench_scan.time_call`):

* ``ssd reference``: the sequential loop :func:`~contrast_sr.ops.ssd.ssd_scan_ref`;
* ``ssd chunked``: :func:`~contrast_sr.ops.ssd.ssd_scan` (what ``ss2d_m2`` blocks run);
* ``mamba-1 <backend>``: the Mamba-1 selective scan on the same tokens (SS2D's layout: the
  4 directions' channels side by side, N = 1, the auto-selected backend).

Shapes follow ``ss2d_m2`` in a C-wide model: 4 directions x R = ceil(C / 16) heads of C / R
channels, one B/C group per direction, state N, chunk T.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from contrast_sr.analysis.bench_scan import time_call
from contrast_sr.ops.scan import resolve_scan_backend, selective_scan_channels_last
from contrast_sr.ops.ssd import ssd_scan, ssd_scan_ref

DEFAULT_SSD_SHAPES: tuple[tuple[int, int], ...] = ((8, 1024), (8, 4096))  # LR patch 32 / 64
K = 4  # scan directions


@dataclass
class SsdRow:
    batch: int
    length: int
    kernel: str
    fwd_ms: float
    fwdbwd_ms: float
    fwd_vs_reference: float | None = None
    fwdbwd_vs_reference: float | None = None
    fwd_vs_mamba1: float | None = None
    fwdbwd_vs_mamba1: float | None = None


def _ssd_inputs(b: int, L: int, dim: int, N: int, gen: torch.Generator) -> list[torch.Tensor]:
    R = math.ceil(dim / 16)
    heads, head_dim = K * R, dim // R
    return [
        torch.randn(b, L, heads, head_dim, generator=gen),
        torch.randn(b, L, heads, generator=gen) - 2.0,
        -torch.ones(heads),  # the "v2" init: A = -1
        torch.randn(b, L, K, N, generator=gen),
        torch.randn(b, L, K, N, generator=gen),
        torch.ones(heads, head_dim),
        torch.rand(heads, generator=gen) * 0.1,
    ]


def _mamba1_inputs(b: int, L: int, dim: int, gen: torch.Generator) -> list[torch.Tensor]:
    channels = K * dim
    return [
        torch.randn(b, L, channels, generator=gen),
        torch.randn(b, L, channels, generator=gen) - 2.0,
        -torch.ones(channels, 1),
        torch.randn(b, L, K, 1, generator=gen),
        torch.randn(b, L, K, 1, generator=gen),
        torch.ones(channels),
        torch.rand(channels, generator=gen) * 0.1,
    ]


def _timings(fn: Callable, inputs: list[torch.Tensor], reps: int, warmup: int) -> tuple:
    """(forward ms, forward+backward ms) of ``fn(*inputs)`` (softplus on dt)."""

    def fwd() -> None:
        with torch.no_grad():
            fn(*inputs)

    leaves = [t.detach().clone().requires_grad_() for t in inputs]

    def fwdbwd() -> None:
        for t in leaves:
            t.grad = None
        fn(*leaves).sum().backward()

    return time_call(fwd, reps, warmup).ms, time_call(fwdbwd, reps, warmup).ms


def run_ssd_benchmark(
    shapes: list[tuple[int, int]],
    dim: int = 48,
    d_state: int = 4,
    chunk: int = 16,
    reps: int = 5,
    ref_reps: int = 1,
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """The SSD benchmark as one JSON-able dict (rows per shape, ratios within each shape)."""
    rows: list[SsdRow] = []
    backend = resolve_scan_backend(torch.empty(1))
    for b, L in shapes:
        gen = torch.Generator().manual_seed(0)
        ssd_in, m1_in = _ssd_inputs(b, L, dim, d_state, gen), _mamba1_inputs(b, L, dim, gen)
        kernels = {
            "ssd reference": (lambda *a: ssd_scan_ref(*a, dt_softplus=True), ssd_in, ref_reps),
            "ssd chunked": (lambda *a: ssd_scan(*a, dt_softplus=True, chunk=chunk), ssd_in, reps),
            f"mamba-1 {backend}": (
                lambda *a: selective_scan_channels_last(*a, delta_softplus=True),
                m1_in,
                reps,
            ),
        }
        shape_rows = []
        for name, (fn, inputs, n) in kernels.items():
            log(f"  batch {b}, L {L}: {name} x{n}")
            fwd, fwdbwd = _timings(fn, inputs, n, 0 if name == "ssd reference" else 1)
            shape_rows.append(SsdRow(b, L, name, fwd, fwdbwd))
        ref, mamba1 = shape_rows[0], shape_rows[2]
        for row in shape_rows:
            row.fwd_vs_reference, row.fwdbwd_vs_reference = (
                ref.fwd_ms / row.fwd_ms,
                ref.fwdbwd_ms / row.fwdbwd_ms,
            )
            row.fwd_vs_mamba1, row.fwdbwd_vs_mamba1 = (
                mamba1.fwd_ms / row.fwd_ms,
                mamba1.fwdbwd_ms / row.fwdbwd_ms,
            )
        rows += shape_rows
    R = math.ceil(dim / 16)
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "dim": dim,
        "heads": K * R,
        "head_dim": dim // R,
        "d_state": d_state,
        "chunk": chunk,
        "rows": [asdict(r) for r in rows],
    }


def format_ssd_table(result: dict) -> str:
    """Markdown table of a :func:`run_ssd_benchmark` result (speedups: higher is faster)."""
    lines = [
        f"SSD: {result['heads']} heads x {result['head_dim']} channels, N {result['d_state']}, "
        f"chunk {result['chunk']} (C {result['dim']}); {result['threads']} threads",
        "",
        "| batch, L | kernel | fwd ms | fwd+bwd ms | fwd x ref | fwd+bwd x ref "
        "| fwd x mamba-1 | fwd+bwd x mamba-1 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['batch']}, {r['length']} | {r['kernel']} | {r['fwd_ms']:.1f} "
            f"| {r['fwdbwd_ms']:.1f} | {r['fwd_vs_reference']:.1f}x "
            f"| {r['fwdbwd_vs_reference']:.1f}x | {r['fwd_vs_mamba1']:.2f}x "
            f"| {r['fwdbwd_vs_mamba1']:.2f}x |"
        )
    return "\n".join(lines)
