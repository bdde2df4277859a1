"""Selective-scan benchmark: fast backends vs the sequential reference, in one process.

Backend "ss2d" is SS2D's fused CPU op (cross-scan, projections, scan and merge,
:mod:`contrast_sr.ops.cross_selective_scan`) on the map a shape stands for (4 groups = the
directions, dim / 4 channels, sqrt(L) x sqrt(L) tokens): what SS2D runs instead of the
channels-last entry; its bandwidth fraction is of its own floor (the map in, the output out).

For each shape (batch, dim, N, L) in the SS2D layout (channels last, ``groups`` directions):
forward and forward+backward wall time (minimum over repetitions after a warm-up; the
backends' repetitions are taken in turn, so all see the same stretch of time), the speedup
over the sequential reference measured in the same run, and the achieved bytes/s of the
unavoidable traffic (read u, delta, B, C, write y; plus gy, gu, gdelta, gB, gC for the backward)
as a fraction of this machine's memory-copy bandwidth, also measured in the same run.

Shared machines are noisy: every repetition records how much CPU time other processes used
while it ran (``/proc/stat``, Linux), and the reported time is the minimum over the clean
repetitions when there are any.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from contrast_sr.ops.scan import resolve_scan_backend, selective_scan_channels_last

DEFAULT_SHAPES: tuple[tuple[int, int, int, int], ...] = (
    (8, 240, 1, 4096),
    (8, 240, 16, 4096),
    (1, 240, 1, 65536),
)


def _busy_seconds() -> float | None:
    """CPU seconds all processes spent busy since boot (Linux), or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class Timing:
    ms: float  # minimum over the clean repetitions (over all if none was clean)
    reps: int
    clean: int


def _timed_once(fn: Callable[[], object]) -> tuple[float, bool]:
    """One call's wall time in seconds, and whether it was clean: other processes used at most
    a quarter of a core's time while it ran."""
    busy0, own0 = _busy_seconds(), sum(os.times()[:2])
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    busy1, own1 = _busy_seconds(), sum(os.times()[:2])
    clean = True
    if busy0 is not None and busy1 is not None:
        other = (busy1 - busy0) - (own1 - own0)
        clean = other <= 0.25 * dt + 0.02
    return dt, clean


def _best(times: list[tuple[float, bool]]) -> Timing:
    clean_times = [t for t, c in times if c]
    best = min(clean_times) if clean_times else min(t for t, _ in times)
    return Timing(best * 1e3, len(times), len(clean_times))


def time_call(fn: Callable[[], object], reps: int, warmup: int = 1) -> Timing:
    """Minimum wall time of ``fn`` in ms over ``reps`` calls after ``warmup``; calls where
    other processes used more than a quarter of a core's time count as not clean."""
    for _ in range(warmup):
        fn()
    return _best([_timed_once(fn) for _ in range(max(1, reps))])


def time_interleaved(
    calls: dict[str, tuple[Callable[[], object], int, int]],
) -> dict[str, Timing]:
    """:func:`time_call` for several ``name: (fn, reps, warmup)`` at once, their repetitions
    taken in turn (round r times every fn with more than r reps), so every fn is measured over
    the same stretch of time: a shared machine's speed drifts over seconds, and a fast kernel
    timed in a 0.1 s window after a slow reference would see one moment only."""
    for fn, _, warmup in calls.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[tuple[float, bool]]] = {name: [] for name in calls}
    for r in range(max((max(1, reps) for _, reps, _ in calls.values()), default=0)):
        for name, (fn, reps, _) in calls.items():
            if r < max(1, reps):
                times[name].append(_timed_once(fn))
    return {name: _best(t) for name, t in times.items()}


def copy_bandwidth(mbytes: int = 256, reps: int = 5) -> float:
    """Measured memory-copy bandwidth in bytes/s (read + write counted) of an fp32 copy."""
    n = mbytes * (1 << 20) // 4
    src = torch.rand(n)
    dst = torch.empty_like(src)
    timing = time_call(lambda: dst.copy_(src), reps)
    return 2 * src.numel() * 4 / (timing.ms / 1e3)


def make_inputs(b: int, dim: int, N: int, L: int, groups: int, seed: int = 0) -> list[torch.Tensor]:
    """SS2D-like fp32 inputs (channels last): u, delta, A, B, C, D, delta_bias."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, L, dim, generator=g)
    delta = torch.randn(b, L, dim, generator=g) - 2.0
    A = -torch.arange(1, N + 1, dtype=torch.float32).repeat(dim, 1)  # mamba's S4D-real init
    B = torch.randn(b, L, groups, N, generator=g)
    C = torch.randn(b, L, groups, N, generator=g)
    D = torch.ones(dim)
    bias = torch.rand(dim, generator=g) * 2.0 - 4.0
    return [u, delta, A, B, C, D, bias]


def floor_bytes(b: int, dim: int, N: int, L: int, groups: int, backward: bool) -> int:
    """Bytes that any implementation must move (fp32): u, delta, B, C in, y out; backward adds
    gy in and gu, gdelta, gB, gC out."""
    big, small = b * L * dim * 4, b * L * groups * N * 4
    fwd = 3 * big + 2 * small
    return fwd + (3 * big + 2 * small if backward else 0)


SS2D = "ss2d"  # pseudo-backend: SS2D's fused CPU op (cross-scan, projections, scan, merge)


def ss2d_fits(shape: tuple[int, int, int, int], groups: int) -> bool:
    """Whether a shape reads as an SS2D scan: 4 groups (directions), dim % 4 == 0, L square."""
    _, dim, _, L = shape
    return groups == 4 and dim % 4 == 0 and math.isqrt(L) ** 2 == L


def ss2d_inputs(b: int, dim: int, N: int, L: int, seed: int = 0) -> list:
    """Inputs of :func:`contrast_sr.ops.cross_selective_scan.cross_selective_scan` for the
    channels-last shape (b, dim, N, L): a sqrt(L) x sqrt(L) map of dim / 4 channels."""
    g = torch.Generator().manual_seed(seed)
    D, side = dim // 4, math.isqrt(L)
    R = math.ceil(D / 16)
    x = torch.randn(b, L, D, generator=g)
    x_proj = torch.randn(4, R + 2 * N, D, generator=g) * D**-0.5
    dt_w = torch.rand(4, D, R, generator=g) * 0.1
    dt_b = torch.rand(4, D, generator=g) * 2.0 - 4.0
    A = -torch.arange(1, N + 1, dtype=torch.float32).repeat(dim, 1)
    return [x, x_proj, dt_w, dt_b, A, torch.ones(dim), side, side]


def ss2d_floor_bytes(b: int, dim: int, L: int, backward: bool) -> int:
    """SS2D's unavoidable traffic: the map x in, y out (backward: gy in, gx out)."""
    return (4 if backward else 2) * b * L * (dim // 4) * 4


@dataclass
class Row:
    shape: tuple[int, int, int, int]
    backend: str
    fwd_ms: float | None = None
    fwdbwd_ms: float | None = None
    fwd_speedup: float | None = None
    fwdbwd_speedup: float | None = None
    fwd_bw_fraction: float | None = None
    fwdbwd_bw_fraction: float | None = None
    clean_reps: dict[str, str] = field(default_factory=dict)


def bench_shape(
    shape: tuple[int, int, int, int],
    backends: list[str],
    groups: int,
    reps: int,
    ref_reps: int,
    modes: tuple[str, ...],
    bandwidth: float,
    log: Callable[[str], None] = lambda s: None,
) -> list[Row]:
    """Time every backend (and "reference", if listed) on one shape, their repetitions
    interleaved (:func:`time_interleaved`); speedups vs reference."""
    b, dim, _, L = shape
    calls: dict[tuple[str, str], tuple[Callable[[], object], int, int]] = {}
    floors: dict[str, Callable[[bool], int]] = {}
    inputs = make_inputs(*shape, groups) if set(backends) - {SS2D} else []
    leaves = [x.detach().clone().requires_grad_() for x in inputs]  # shared: grads reset per call
    gy = torch.randn(b, L, dim)
    for name in backends:
        if name == SS2D:
            if ss2d_fits(shape, groups):
                calls.update(_ss2d_calls(shape, reps, modes))
                floors[SS2D] = functools.partial(ss2d_floor_bytes, b, dim, L)
            continue
        n_reps, warmup = (ref_reps, 0) if name == "reference" else (reps, 1)
        for mode, fn in _scan_calls(name, inputs, leaves, gy, modes).items():
            calls[(name, mode)] = (fn, n_reps, warmup)
        floors[name] = functools.partial(floor_bytes, *shape, groups)
    log(f"  {', '.join(floors)}: {' and '.join(modes)}, repetitions interleaved")
    timings = time_interleaved(calls)
    rows = []
    for name, floor in floors.items():
        row = Row(shape, name)
        for mode in modes:
            t = timings[(name, mode)]
            row.clean_reps[mode] = f"{t.clean}/{t.reps}"
            fraction = floor(mode == "fwdbwd") / (t.ms / 1e3) / bandwidth
            if mode == "fwd":
                row.fwd_ms, row.fwd_bw_fraction = t.ms, fraction
            else:
                row.fwdbwd_ms, row.fwdbwd_bw_fraction = t.ms, fraction
        rows.append(row)
    ref = next((r for r in rows if r.backend == "reference"), None)
    if ref is not None:
        for r in rows:
            if r.fwd_ms and ref.fwd_ms:
                r.fwd_speedup = ref.fwd_ms / r.fwd_ms
            if r.fwdbwd_ms and ref.fwdbwd_ms:
                r.fwdbwd_speedup = ref.fwdbwd_ms / r.fwdbwd_ms
    return rows


def _scan_calls(name, inputs, leaves, gy, modes) -> dict[str, Callable[[], object]]:
    """``mode: fn`` of the channels-last entry on ``backend=name``: forward without gradients
    on ``inputs``, forward + backward of ``gy`` into ``leaves``."""
    fn = functools.partial(selective_scan_channels_last, backend=name)
    calls = {}
    if "fwd" in modes:

        def fwd():
            with torch.no_grad():
                fn(*inputs, True)

        calls["fwd"] = fwd
    if "fwdbwd" in modes:

        def fwdbwd():
            for x in leaves:
                x.grad = None
            fn(*leaves, True).backward(gy)

        calls["fwdbwd"] = fwdbwd
    return calls


def _ss2d_calls(shape, reps, modes) -> dict:
    """The fused SS2D op on the map the shape stands for (fraction of its own, smaller floor)."""
    from contrast_sr.ops.cross_selective_scan import cross_selective_scan

    b, dim, N, L = shape
    args = ss2d_inputs(b, dim, N, L)
    calls = {}
    if "fwd" in modes:

        def fwd():
            with torch.no_grad():
                cross_selective_scan(*args)

        calls[(SS2D, "fwd")] = (fwd, reps, 1)
    if "fwdbwd" in modes:
        leaves = [a.detach().clone().requires_grad_() for a in args[:6]]
        gy = torch.randn(b, L, dim // 4)

        def fwdbwd():
            for x in leaves:
                x.grad = None
            cross_selective_scan(*leaves, *args[6:]).backward(gy)

        calls[(SS2D, "fwdbwd")] = (fwdbwd, reps, 1)
    return calls


def default_backends() -> list[str]:
    """The reference, the torch path, the auto-selected fused CPU backend (if any) and, with
    numba, SS2D's fused op ("ss2d")."""
    names = ["reference", "torch"]
    auto = resolve_scan_backend(torch.empty(1), None)
    if auto not in names:
        names.append(auto)
    if auto == "numba":
        names.append(SS2D)
    return names


def run_benchmark(
    shapes: list[tuple[int, int, int, int]],
    backends: list[str],
    groups: int = 4,
    reps: int = 5,
    ref_reps: int = 2,
    modes: tuple[str, ...] = ("fwd", "fwdbwd"),
    malloc_tuned: bool = False,
    log: Callable[[str], None] = lambda s: None,
    bandwidth_mb: int = 256,
) -> dict:
    """The whole benchmark as one JSON-able dict."""
    from contrast_sr.analysis.bench import thread_scaling

    log("measuring memory-copy bandwidth and thread scaling")
    bandwidth = copy_bandwidth(bandwidth_mb)
    scaling = thread_scaling()
    rows: list[Row] = []
    for shape in shapes:
        log(f"shape batch={shape[0]} dim={shape[1]} N={shape[2]} L={shape[3]}")
        rows += bench_shape(shape, backends, groups, reps, ref_reps, modes, bandwidth, log)
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "malloc_tuned": malloc_tuned,
        "groups": groups,
        "copy_bandwidth_gbs": bandwidth / 1e9,
        "thread_scaling": scaling,
        "rows": [asdict(r) for r in rows],
    }


def format_table(result: dict) -> str:
    """Markdown table of a :func:`run_benchmark` result."""

    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    def pct(v):
        return None if v is None else 100 * v

    scaling = result.get("thread_scaling")
    delivered = "" if scaling is None else f" (matmul {scaling:.2f}x one thread's)"
    lines = [
        f"copy bandwidth {result['copy_bandwidth_gbs']:.1f} GB/s, {result['threads']} threads"
        f"{delivered}, torch {result['torch']}, malloc tuned: {result['malloc_tuned']}, "
        f"groups {result['groups']}",
        "",
        "| batch, dim, N, L | backend | fwd ms | fwd+bwd ms | fwd speedup | fwd+bwd speedup "
        "| fwd % of bw | fwd+bwd % of bw |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        b, dim, N, L = r["shape"]
        lines.append(
            f"| {b}, {dim}, {N}, {L} | {r['backend']} | {f(r['fwd_ms'], '.1f')} "
            f"| {f(r['fwdbwd_ms'], '.1f')} | {f(r['fwd_speedup'], '.1f')}x "
            f"| {f(r['fwdbwd_speedup'], '.1f')}x | {f(pct(r['fwd_bw_fraction']), '.1f')}% "
            f"| {f(pct(r['fwdbwd_bw_fraction']), '.1f')}% |"
        )
    return "\n".join(lines)
