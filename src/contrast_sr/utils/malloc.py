"""Keep freed large blocks in the process heap (glibc on Linux), for compute-heavy processes.

By default glibc returns every freed block above a few MB to the kernel and maps a fresh one on
the next allocation, so each large temporary of a forward pass (feature maps of 8-128 MB at
256²-512² inputs) pays page faults and the kernel's zeroing again, every layer, every tile: at a
512² input that made contrast_tiny's time grow 6.6x for 4x the pixels. With :func:`tune_malloc`
every block comes from the heap (no mmap), freed blocks are reused and the heap is not trimmed:
faster, at the price of the process keeping its peak heap until it exits. The ``contrast-sr``
commands that compute call it (``CONTRAST_SR_MALLOC_TUNE=0`` turns it off); library users may
call it once at start-up.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -2, -3, -4
ENV = "CONTRAST_SR_MALLOC_TUNE"


def tune_malloc() -> bool:
    """Apply the tuning (see the module docstring); True where it was applied (glibc only)."""
    if platform.system() != "Linux" or os.environ.get(ENV, "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
        ok &= libc.mallopt(_M_TOP_PAD, 256 * 1024 * 1024)
        ok &= libc.mallopt(_M_MMAP_MAX, 0)  # larger blocks from the heap too, reused alike
        return bool(ok)
    except (OSError, AttributeError):
        return False


__all__ = ["ENV", "tune_malloc"]
