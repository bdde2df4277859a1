"""How much memory a model needs per input pixel, and how much it may use (``--max-memory``).

Cost: measured, not guessed. Two small probe forwards (on CUDA through the allocator's peak
statistics, on Linux CPU through the process's peak resident set size) give a fit
``peak = fixed + per_pixel * pixels`` (:func:`measure_cost`); where nothing can be measured
(macOS CPU, MPS) a conservative 96 KB per input pixel is assumed. Predictions carry a safety
factor of 1.5.

Budget (:func:`memory_budget`): ``max_memory`` when given, else 60% of the free GPU memory, or
on CPU half the available RAM (the least of ``MemAvailable``, the cgroup limit and the
address-space limit of ``ulimit -v``), at most 1.5 GiB: on a CPU the time per pixel does not
fall with larger forwards (docs/upscale.md), only the memory grows.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from contrast_sr.errors import ArgumentError
from contrast_sr.utils.process_memory import (
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
    virtual_bytes,
)

PROBE_SIZES = (48, 96)
SAFETY = 1.5
FALLBACK_BYTES_PER_PIXEL = 96 * 1024  # where nothing can be measured
MIN_BYTES_PER_PIXEL = 1024  # floor for the measured cost (allocator caches can hide some)
CPU_SHARE, GPU_SHARE = 0.5, 0.6
CPU_BUDGET_CAP = 3 * 1024**3 // 2  # 1.5 GiB
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
# What allocators say when they run out: torch's CPU allocator raises a plain RuntimeError
# ("DefaultCPUAllocator: can't allocate memory"), MPS "out of memory", Windows "not enough memory".
_OOM_TEXTS = ("out of memory", "can't allocate memory", "not enough memory")


@dataclass(frozen=True)
class MemoryCost:
    """``fixed + per_pixel * pixels`` bytes for one forward of ``pixels`` input pixels."""

    fixed: float
    per_pixel: float
    measured: bool = True

    def peak(self, pixels: int) -> float:
        """Predicted peak bytes of a forward of ``pixels`` input pixels, with the safety factor."""
        return SAFETY * (self.fixed + self.per_pixel * pixels)

    def max_pixels(self, budget: int) -> int:
        """Most input pixels one forward may have to stay within ``budget`` bytes."""
        return int(max(budget / SAFETY - self.fixed, 0.0) / self.per_pixel)


def parse_memory(value: int | str | None) -> int | None:
    """``None`` (default budget), bytes, or text such as ``"2G"``, ``"512M"``, ``"1.5GB"``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ArgumentError("max_memory", f"expected a size such as 2G or 512M, got {value!r}")
    if isinstance(value, int | float):
        size = int(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(value).lower())
        if match is None:
            raise ArgumentError(
                "max_memory", f"expected a size such as 2G, 512M or 800MB, got {value!r}"
            )
        size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size <= 0:
        raise ArgumentError("max_memory", f"must be positive, got {value!r}")
    return size


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an out-of-memory failure of any device.

    Decided by type where there is one (``torch.OutOfMemoryError``, ``MemoryError``); torch's
    CPU and MPS allocators raise a plain ``RuntimeError`` whose text is the only sign.
    """
    types = (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), MemoryError)
    if isinstance(exc, types):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(t in text for t in _OOM_TEXTS)


# ------------------------------------------------------------------------- what there is


def _read_int(path: str) -> int | None:
    with contextlib.suppress(OSError, ValueError), open(path) as handle:
        return int(handle.read().split()[0])
    return None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2, else v1); None if unlimited."""
    for limit_file, usage_file, stat_file in (
        ("memory.max", "memory.current", "memory.stat"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes", "memory/memory.stat"),
    ):
        limit = _read_int(f"/sys/fs/cgroup/{limit_file}")
        usage = _read_int(f"/sys/fs/cgroup/{usage_file}")
        if limit is None or usage is None or limit >= 1 << 60:
            continue
        reclaimable = 0  # page cache the kernel drops before it kills anything
        with contextlib.suppress(OSError), open(f"/sys/fs/cgroup/{stat_file}") as handle:
            match = re.search(r"^(?:total_)?inactive_file (\d+)", handle.read(), re.M)
            reclaimable = int(match.group(1)) if match else 0
        return max(limit - usage + reclaimable, 0)
    return None


def _address_space_room() -> int | None:
    """Bytes left under ``ulimit -v`` (RLIMIT_AS); None when unlimited or unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    used = virtual_bytes()
    if soft == resource.RLIM_INFINITY or used is None:
        return None
    return max(soft - used, 0)


def _ram_available() -> int:
    with contextlib.suppress(OSError, AttributeError):
        with open("/proc/meminfo") as handle:
            match = re.search(r"MemAvailable:\s+(\d+) kB", handle.read())
        if match:
            return int(match.group(1)) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return 4 * 1024**3


def available_memory(device: torch.device) -> int:
    """Bytes that a new allocation on ``device`` can use now (best effort)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "mps":
        with contextlib.suppress(Exception):
            return int(
                torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()  # type: ignore[attr-defined]
            )
        return 4 * 1024**3
    rooms = [_ram_available(), _cgroup_room(), _address_space_room()]
    return min(r for r in rooms if r is not None)


def memory_budget(device: torch.device, max_memory: int | None = None) -> int:
    """Bytes one forward may use: ``max_memory``, else the default share (module docstring)."""
    if max_memory is not None:
        return int(max_memory)
    free = available_memory(device)
    if device.type == "cpu":
        return int(min(CPU_SHARE * free, CPU_BUDGET_CAP))
    return int(GPU_SHARE * free)


# ------------------------------------------------------------------------- what it takes


def _trim_heap() -> None:
    """Give cached free heap memory back to the OS (glibc), so new allocations show in RSS."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure_peak(
    forward: Callable[[Tensor], Tensor], x: Tensor, device: torch.device
) -> int | None:
    """Extra bytes at the peak of ``forward(x)`` on ``device``; None if it cannot be measured."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        forward(x)
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    if device.type == "cpu":
        if not reset_peak_rss() or peak_rss_bytes() is None:
            return None
        _trim_heap()
        reset_peak_rss()
        base = rss_bytes()
        forward(x)
        return max(peak_rss_bytes() - base, 0)
    return None


def measure_cost(
    forward: Callable[[Tensor], Tensor],
    channels: int,
    device: torch.device,
    probe_sizes: tuple[int, int] = PROBE_SIZES,
) -> MemoryCost:
    """Fit ``fixed + per_pixel * pixels`` to two probe forwards of ``forward``.

    ``forward`` takes a (1, ``channels``, s, s) CPU tensor (it moves it to its device). The
    per-pixel cost is the larger of the probes' slope and the larger probe's average, so the
    fit errs on the high side (default model: 4.7 to 6.0 KB/pixel predicted, depending on the
    allocator's state, vs 3.0 KB/pixel measured for a 640x480 forward).
    """
    small, large = probe_sizes
    peaks = []
    with torch.no_grad():
        forward(torch.rand(1, channels, small, small))  # warm-up (lazy inits, kernel caches)
        for size in (small, large):
            peaks.append(measure_peak(forward, torch.rand(1, channels, size, size), device))
    if None in peaks:
        return MemoryCost(0.0, float(FALLBACK_BYTES_PER_PIXEL), measured=False)
    slope = (peaks[1] - peaks[0]) / (large**2 - small**2)
    per_pixel = max(slope, peaks[1] / large**2, MIN_BYTES_PER_PIXEL)
    return MemoryCost(max(peaks[1] - per_pixel * large**2, 0.0), float(per_pixel))
