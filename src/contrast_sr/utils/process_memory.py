"""This process's memory on Linux (``/proc/self``), for the benchmark and ``--tile auto``.

``VmRSS`` is the resident set now, ``VmHWM`` its peak since the start or since the last
:func:`reset_peak_rss`, ``VmSize`` the virtual address space in use (what ``ulimit -v``
limits). Elsewhere the readers return ``None`` and the reset returns ``False``.
"""

from __future__ import annotations


def _status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024  # the value is in kB
    except OSError:
        return None
    return None


def rss_bytes() -> int | None:
    """The resident set size now, in bytes."""
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int | None:
    """The peak resident set size, in bytes."""
    return _status_bytes("VmHWM")


def virtual_bytes() -> int | None:
    """The virtual memory size now, in bytes."""
    return _status_bytes("VmSize")


def reset_peak_rss() -> bool:
    """Set the peak back to the current resident size; False where that is not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True
