"""Keep freed large blocks in the process heap (glibc on Linux), for compute-heavy processes.

By default glibc returns every freed block above a few MB to the kernel and maps a fresh one on
the next allocation, so each large temporary of a forward pass (feature maps of 8-128 MB at
256²-512² inputs) pays page faults and the kernel's zeroing again, every layer, every tile.
:func:`tune_malloc` changes that for the whole process:

* ``"fast"``: every block comes from the heap (no mmap), freed blocks are reused and the heap is
  not trimmed. contrast_tiny at 512² input: 2.5 s instead of 4.9 s (1 thread). The heap keeps
  its peak, and maps of changing sizes leave holes: one untiled 1000x750 upscale peaked at
  3.4 GB instead of 2.0 GB. Same-size work (tiles, training steps, benchmarks) reuses blocks.
* ``"lean"``: blocks under 32 MB (glibc's limit for this setting) from the heap, larger ones
  mapped as before: memory as untuned, a smaller gain.

The ``contrast-sr`` commands that compute call it: ``fast``, except an untiled ``upscale``
(``lean``). ``CONTRAST_SR_MALLOC_TUNE`` = ``fast``, ``lean`` or ``0`` (off) overrides; library
users may call it once at start-up.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -2, -3, -4
ENV = "CONTRAST_SR_MALLOC_TUNE"
MODES = ("fast", "lean")


def tune_malloc(mode: str = "fast") -> bool:
    """Apply the tuning ``mode`` (see the module docstring; ``$CONTRAST_SR_MALLOC_TUNE`` wins);
    True where it was applied (glibc only)."""
    mode = os.environ.get(ENV, mode)
    if platform.system() != "Linux" or mode not in MODES:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
        ok &= libc.mallopt(_M_TOP_PAD, 256 * 1024 * 1024)
        if mode == "fast":
            ok &= libc.mallopt(_M_MMAP_MAX, 0)  # larger blocks from the heap too, reused alike
        return bool(ok)
    except (OSError, AttributeError):
        return False


__all__ = ["ENV", "MODES", "tune_malloc"]
