"""Model benchmark: time per step, throughput, peak memory, parameters and FLOPs, in one run.

Timing: ``warmup`` untimed steps, then the minimum of ``repeat`` timed steps (the minimum is the
least disturbed by other load). ``infer`` = forward under ``no_grad``; ``train`` = forward, L1
loss, backward and an Adam step. Peak memory: on CUDA ``max_memory_allocated`` over warm-up
and timed steps (weights included); on CPU the increase of the peak resident set size over the
resident size before the first warm-up step, read from ``/proc/self/status`` after resetting
the peak through ``/proc/self/clear_refs`` (Linux; ``None`` elsewhere; memory the allocator
keeps from an earlier model can hide part of the increase, so the command runs each model in
its own process on CPU).

Efficiency: ``gflops_per_s`` (the forward's FLOPs over its time; for ``train`` the forward's FLOPs
over the step's time) and ``peak_share``, that as a fraction of this machine's float32 matmul
rate (:func:`matmul_peak_gflops`, measured in the same run at the same threads).
:func:`size_growth` turns rows at several sizes into time per output megapixel and the growth
of time against the growth of pixels (1.0 = linear in image size).

FLOPs (one forward at the input size; multiply + add = 2 FLOPs): matmul, linear, convolution,
and attention through ``torch.utils.flop_counter.FlopCounterMode``, plus the selective scan,
counted explicitly at ``9 * b * L * dim * N + 2 * b * L * dim`` per call (decay exp and
multiply, input drive, state update, output contraction; skip term D). Elementwise ops, norms,
softmax and activations are not counted (as in fvcore/thop tables).
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from contrast_sr.utils.process_memory import peak_rss_bytes, reset_peak_rss, rss_bytes


@dataclass
class BenchResult:
    model: str
    params: int
    flops: int | None
    scan_flops: int | None
    time_s: float
    times_s: list[float]
    images_per_s: float
    output_mp_per_s: float
    peak_mem_bytes: int | None
    mem_kind: str
    ratios: dict = field(default_factory=dict)
    size: int | None = None
    gflops_per_s: float | None = None
    peak_share: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def matmul_peak_gflops(n: int = 1024, repeat: int = 5, device: torch.device | str = "cpu") -> float:
    """This machine's float32 matmul rate at the current thread count: the best of ``repeat``
    (n x n) @ (n x n) products after a warm-up, in GFLOP/s (2 n³ FLOPs each)."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.rand(n, n, generator=gen).to(device) for _ in range(2))
    out = torch.empty(n, n, device=device)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeat):
        _sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def thread_scaling(repeat: int = 5, full_gflops: float | None = None) -> float:
    """How many cores' worth of float32 matmul the current thread count delivers right now:
    :func:`matmul_peak_gflops` at that count (``full_gflops`` if the caller measured it
    already) over its rate at one thread (CPU). On an idle machine it is close to the thread
    count; a shared VM or a busy laptop gives less, and timings from such a moment are not the
    machine's. Reported beside every benchmark."""
    threads = torch.get_num_threads()
    if threads == 1:
        return 1.0
    full = matmul_peak_gflops(repeat=repeat) if full_gflops is None else full_gflops
    torch.set_num_threads(1)
    try:
        one = matmul_peak_gflops(repeat=repeat)
    finally:
        torch.set_num_threads(threads)
    return full / one


def size_growth(results: list[BenchResult]) -> list[dict]:
    """Per model, rows in size order: size, ms, ms per output megapixel, and against the
    previous size the time ratio, the pixel ratio and their quotient (``growth``; 1.0 = linear,
    above 1 = the time grows faster than the pixel count)."""
    rows: list[dict] = []
    for name in dict.fromkeys(r.model for r in results):
        prev = None
        for r in sorted((r for r in results if r.model == name), key=lambda r: r.size or 0):
            row = {"model": name, "size": r.size, "ms": r.time_s * 1e3}
            row["ms_per_mp"] = 1e3 / r.output_mp_per_s
            if prev is not None and prev.size:
                time_ratio, pixel_ratio = r.time_s / prev.time_s, (r.size / prev.size) ** 2
                row.update(time_ratio=time_ratio, pixel_ratio=pixel_ratio)
                row["growth"] = time_ratio / pixel_ratio
            rows.append(row)
            prev = r
    return rows


def format_growth(rows: list[dict]) -> str:
    """A Markdown table of :func:`size_growth`."""
    lines = ["| model | LR size | ms | ms / output MP | time x | pixels x | growth |"]
    lines.append("|" + "---|" * 7)
    for r in rows:
        ratios = "| - | - | - |"
        if "growth" in r:
            ratios = f"| {r['time_ratio']:.2f} | {r['pixel_ratio']:.1f} | {r['growth']:.2f} |"
        lines.append(
            f"| {r['model']} | {r['size']}² | {r['ms']:.1f} | {r['ms_per_mp']:.1f} {ratios}"
        )
    return "\n".join(lines)


def scan_flops(b: int, L: int, dim: int, n: int, with_d: bool) -> int:
    return 9 * b * L * dim * n + (2 * b * L * dim if with_d else 0)


@contextlib.contextmanager
def count_scans() -> Iterator[list[int]]:
    """Count the FLOPs of every selective scan run inside the block; yields a one-item counter."""
    from contrast_sr.ops.scan import observe_scans

    counter = [0]

    def count(u: torch.Tensor, A: torch.Tensor, D: torch.Tensor | None) -> None:
        b, L, dim = u.shape
        counter[0] += scan_flops(b, L, dim, A.shape[-1], D is not None)

    with observe_scans(count):
        yield counter


def count_flops(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(total FLOPs, of which selective scan) of one forward pass on ``x``."""
    from torch.utils.flop_counter import FlopCounterMode

    # with a gradient, so fused inference-only kernels (which FlopCounterMode cannot see) step
    # aside for the ops it counts; the fused scan reports itself (count_scans)
    x = x.detach().requires_grad_(True)
    with count_scans() as scans, FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops()) + scans[0], scans[0]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_model(
    name: str,
    model: nn.Module,
    mode: str = "infer",
    batch: int = 1,
    size: int = 64,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    warmup: int = 2,
    repeat: int = 5,
    flops: bool = True,
    peak_gflops: float | None = None,
) -> BenchResult:
    """Benchmark one model on random (batch, 3, size, size) inputs; ``peak_gflops`` (from
    :func:`matmul_peak_gflops`) gives ``peak_share``."""
    from contrast_sr.utils.device import autocast

    if mode not in ("infer", "train"):
        raise ValueError(f"mode must be infer or train, not {mode!r}")
    device = torch.device(device)
    model = model.to(device)
    scale = int(getattr(model, "scale", 1))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=gen).to(device)
    params = sum(p.numel() for p in model.parameters())
    if mode == "train":
        model.train()
        target = torch.rand(batch, 3, size * scale, size * scale, generator=gen).to(device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(trainable, lr=1e-6) if trainable else None

        def step():
            with autocast(device, precision):
                loss = F.l1_loss(model(x).float(), target)
            if opt is not None:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad(), autocast(device, precision):
                model(x)

    gc.collect()
    # Memory is measured from before the warm-up: caches filled there count as the step's peak.
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        mem_kind = "cuda_max_allocated"
        rss0 = None
    else:
        mem_kind = "cpu_peak_rss_increase"
        rss0 = rss_bytes() if reset_peak_rss() else None
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(repeat):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = int(torch.cuda.max_memory_allocated(device))
    else:
        hwm = peak_rss_bytes() if rss0 is not None else None
        peak = None if hwm is None else max(0, hwm - rss0)
    # FLOPs last: the counting forward's freed buffers stay in a tuned heap, and counted
    # before the memory measurement they would hide the step's RSS increase on CPU.
    total_flops = scan = None
    if flops:
        model.eval()
        total_flops, scan = count_flops(model, x[:1])
        total_flops, scan = total_flops * batch, scan * batch
    best = min(times)
    out_px = batch * (size * scale) ** 2
    rate = None if total_flops is None else total_flops / best / 1e9
    return BenchResult(
        model=name,
        params=params,
        flops=total_flops,
        scan_flops=scan,
        time_s=best,
        times_s=times,
        images_per_s=batch / best,
        output_mp_per_s=out_px / best / 1e6,
        peak_mem_bytes=peak,
        mem_kind=mem_kind,
        size=size,
        gflops_per_s=rate,
        peak_share=None if rate is None or not peak_gflops else rate / peak_gflops,
    )


def add_ratios(results: list[BenchResult]) -> None:
    """Ratios of time, memory, parameters and FLOPs against the first result (in place)."""
    if not results:
        return
    base = results[0]
    for r in results:
        r.ratios = {
            key: (getattr(r, key) / getattr(base, key))
            if getattr(r, key) is not None and getattr(base, key)
            else None
            for key in ("time_s", "peak_mem_bytes", "params", "flops")
        }


def format_table(results: list[BenchResult]) -> str:
    """A Markdown table (readable in a terminal too)."""
    head = (
        "| model | LR size | params | GFLOPs | ms/step | img/s | MP/s out | GFLOP/s "
        "| % matmul peak | peak MB | time x | mem x | FLOPs x |"
    )
    lines = [head, "|" + "---|" * 13]

    def fmt(v, pattern):
        return "-" if v is None else pattern.format(v)

    for r in results:
        lines.append(
            f"| {r.model} | {fmt(r.size, '{}²')} | {r.params:,} "
            f"| {fmt(r.flops and r.flops / 1e9, '{:.2f}')} "
            f"| {r.time_s * 1e3:.1f} | {r.images_per_s:.2f} | {r.output_mp_per_s:.3f} "
            f"| {fmt(r.gflops_per_s, '{:.1f}')} "
            f"| {fmt(r.peak_share and 100 * r.peak_share, '{:.1f}')} "
            f"| {fmt(r.peak_mem_bytes and r.peak_mem_bytes / 2**20, '{:.0f}')} "
            f"| {fmt(r.ratios.get('time_s'), '{:.2f}')} "
            f"| {fmt(r.ratios.get('peak_mem_bytes'), '{:.2f}')} "
            f"| {fmt(r.ratios.get('flops'), '{:.2f}')} |"
        )
    return "\n".join(lines)
