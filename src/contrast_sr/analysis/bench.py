"""Model benchmark: time per step, throughput, peak memory, parameters and FLOPs, in one run.

Timing: ``warmup`` untimed steps, then the minimum of ``repeat`` timed steps (the minimum is the
least disturbed by other load). ``infer`` = forward under ``no_grad``; ``train`` = forward, L1
loss, backward and an Adam step. Peak memory: on CUDA ``max_memory_allocated`` over warm-up
and timed steps (weights included); on CPU the increase of the peak resident set size over the
resident size before the first warm-up step, read from ``/proc/self/status`` after resetting
the peak through ``/proc/self/clear_refs`` (Linux; ``None`` elsewhere; memory the allocator
keeps from an earlier model can hide part of the increase, so the command runs each model in
its own process on CPU).

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

    def to_dict(self) -> dict:
        return asdict(self)


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

    with torch.no_grad(), count_scans() as scans, FlopCounterMode(display=False) as counter:
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
) -> BenchResult:
    """Benchmark one model on random (batch, 3, size, size) inputs."""
    from contrast_sr.utils.device import autocast

    if mode not in ("infer", "train"):
        raise ValueError(f"mode must be infer or train, not {mode!r}")
    device = torch.device(device)
    model = model.to(device)
    scale = int(getattr(model, "scale", 1))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=gen).to(device)
    params = sum(p.numel() for p in model.parameters())
    total_flops = scan = None
    if flops:
        model.eval()
        total_flops, scan = count_flops(model, x[:1])
        total_flops, scan = total_flops * batch, scan * batch

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
    best = min(times)
    out_px = batch * (size * scale) ** 2
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
        "| model | params | GFLOPs | ms/step | img/s | MP/s out | peak MB "
        "| time x | mem x | FLOPs x |"
    )
    lines = [head, "|" + "---|" * 10]

    def fmt(v, pattern):
        return "-" if v is None else pattern.format(v)

    for r in results:
        lines.append(
            f"| {r.model} | {r.params:,} | {fmt(r.flops and r.flops / 1e9, '{:.2f}')} "
            f"| {r.time_s * 1e3:.1f} | {r.images_per_s:.2f} | {r.output_mp_per_s:.3f} "
            f"| {fmt(r.peak_mem_bytes and r.peak_mem_bytes / 2**20, '{:.0f}')} "
            f"| {fmt(r.ratios.get('time_s'), '{:.2f}')} "
            f"| {fmt(r.ratios.get('peak_mem_bytes'), '{:.2f}')} "
            f"| {fmt(r.ratios.get('flops'), '{:.2f}')} |"
        )
    return "\n".join(lines)
