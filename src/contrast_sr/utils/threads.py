"""How many CPU threads a command computes with (``--threads``): the policy and its inputs.

Default (``auto``): ``$OMP_NUM_THREADS`` when set; else the physical cores this process may run
on, minus the cores other processes keep busy right now (sampled from ``/proc/stat`` over
50 ms), at least 1. Oversubscribing a core costs far more than leaving one idle: on a 2-core
machine with other work running, two threads made contrast_tiny up to 20x slower than one
(docs/performance.md), because every parallel op waits for its slowest thread. ``train`` and
``study`` ignore the load (all physical cores): float sums depend on the thread count, and a
run must give the same bits whatever else the machine did meanwhile.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from contrast_sr.errors import ArgumentError


def usable_cpus() -> list[int]:
    """Logical CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def physical_cores(cpus: list[int] | None = None) -> int:
    """Distinct physical cores among ``cpus`` (SMT siblings count once; Linux sysfs, else the
    number of logical CPUs)."""
    cpus = usable_cpus() if cpus is None else cpus
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topo / "physical_package_id").read_text().strip()
            core = (topo / "core_id").read_text().strip()
        except OSError:
            return len(cpus)
        cores.add((package, core))
    return max(1, len(cores))


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    values = [float(v) for v in fields[:8]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_cores(sample_s: float = 0.05) -> float:
    """Cores other processes keep busy now: the machine's busy fraction over ``sample_s``
    seconds times its logical CPUs (this process sleeps meanwhile). 1-minute load average where
    /proc/stat is missing; 0 where neither exists."""
    first = _cpu_times()
    if first is None:
        try:
            return float(os.getloadavg()[0])
        except (AttributeError, OSError):
            return 0.0
    time.sleep(sample_s)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return 0.0
    share = (second[0] - first[0]) / (second[1] - first[1])
    return share * (os.cpu_count() or 1)


def auto_threads(load_aware: bool = True) -> int:
    """The default thread count (see the module docstring); ``load_aware=False`` ignores other
    processes (training: the same thread count on every run keeps results bit-identical)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    cores = physical_cores()
    if not load_aware:
        return cores
    return max(1, min(cores, round(cores - busy_cores())))


def parse_threads(value: str | int | None) -> int | None:
    """``--threads`` text: a positive integer, or ``auto`` / None (the policy)."""
    if value is None or value == "auto":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise ArgumentError("threads", f"expected a positive integer or 'auto', got {value!r}")
    return n


def set_threads(value: str | int | None = "auto", load_aware: bool = True) -> int:
    """Apply ``--threads`` (an integer, or ``auto``/None for :func:`auto_threads`) to torch
    (the numba kernels follow torch's count); returns the count."""
    import torch

    n = parse_threads(value)
    n = auto_threads(load_aware) if n is None else n
    torch.set_num_threads(n)
    return n


__all__ = ["auto_threads", "busy_cores", "parse_threads", "physical_cores", "set_threads"]
