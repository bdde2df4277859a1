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
(``lean``). In any other process the first fused CPU kernel applies ``lean``
(:func:`tune_malloc_once`): a plain process calling the scan in a loop otherwise paid 8-38
thousand page faults per call ((8, 240, 1, 4096) forward + gradient) and ran up to 1.6x
slower. ``CONTRAST_SR_MALLOC_TUNE`` = ``fast``, ``lean`` or ``0`` (off) overrides both; library
users may call :func:`tune_malloc` themselves, or :func:`keep_malloc_as_is` to decline.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -2, -3, -4
ENV = "CONTRAST_SR_MALLOC_TUNE"
MODES = ("fast", "lean")


_settled = False  # whether this process's tuning is decided (applied, or declined)


def tune_malloc(mode: str = "fast") -> bool:
    """Apply the tuning ``mode`` (see the module docstring; ``$CONTRAST_SR_MALLOC_TUNE`` wins);
    True where it was applied (glibc only)."""
    global _settled
    _settled = True
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


def keep_malloc_as_is() -> None:
    """Decline the tuning for this process: :func:`tune_malloc_once` then changes nothing."""
    global _settled
    _settled = True


def tune_malloc_once(mode: str = "lean") -> bool:
    """:func:`tune_malloc` unless this process has decided already (a command, the user or an
    earlier call); the fused CPU kernels call it at every launch, so only the first counts."""
    return False if _settled else tune_malloc(mode)


__all__ = ["ENV", "MODES", "keep_malloc_as_is", "tune_malloc", "tune_malloc_once"]
