"""Pick a tile size from the memory a device has free (``--tile auto``).

The model's memory use is measured, not guessed: two small probe forwards (on CUDA through the
allocator's peak statistics, on Linux CPU through the process's peak resident set size) give a
fit ``peak = fixed + per_pixel * pixels``; the tile is the largest square that fits the budget.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import re
from collections.abc import Callable

import torch
from torch import Tensor

from contrast_sr.utils.process_memory import peak_rss_bytes, reset_peak_rss, rss_bytes

MIN_TILE = 32
MAX_TILE = 1024
TILE_MULTIPLE = 16  # window size of the Contrast models: tiles need no extra padding
# Where nothing can be measured (macOS CPU, MPS): a conservative cost per input pixel.
FALLBACK_BYTES_PER_PIXEL = 96 * 1024
CPU_BUDGET_CAP = 2 * 1024**3  # keeps a 1080p upscale well under 4 GB in total
SAFETY = 1.5
MIN_BYTES_PER_PIXEL = 1024  # floor for the measured cost (allocator caches can hide some)


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
    with contextlib.suppress(OSError, AttributeError):
        with open("/proc/meminfo") as handle:
            match = re.search(r"MemAvailable:\s+(\d+) kB", handle.read())
        if match:
            return int(match.group(1)) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return 4 * 1024**3


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


def auto_tile(
    forward: Callable[[Tensor], Tensor],
    channels: int,
    device: torch.device,
    budget: int | None = None,
    probe_sizes: tuple[int, int] = (48, 96),
) -> int:
    """Largest tile (multiple of 16, in [32, 1024]) whose forward fits in ``budget`` bytes.

    ``budget`` defaults to 60% of the free memory (at most 2 GB on CPU). The fit uses the
    probes' incremental cost, times a safety factor of 1.5.
    """
    if budget is None:
        free = available_memory(device)
        budget = int(0.6 * free)
        if device.type == "cpu":
            budget = min(budget, CPU_BUDGET_CAP)
    small, large = probe_sizes
    peaks = []
    with torch.no_grad():
        forward(torch.rand(1, channels, small, small))  # warm-up (inputs stay on CPU)
        for size in (small, large):
            peaks.append(measure_peak(forward, torch.rand(1, channels, size, size), device))
    if None in peaks:
        per_pixel, fixed = float(FALLBACK_BYTES_PER_PIXEL), 0.0
    else:
        per_pixel = max(
            (peaks[1] - peaks[0]) / (large**2 - small**2), peaks[1] / large**2, MIN_BYTES_PER_PIXEL
        )
        fixed = max(peaks[1] - per_pixel * large**2, 0.0)
    room = max(budget - fixed, 0.0) / (SAFETY * per_pixel)
    tile = int(math.sqrt(room)) // TILE_MULTIPLE * TILE_MULTIPLE
    return max(MIN_TILE, min(MAX_TILE, tile))
