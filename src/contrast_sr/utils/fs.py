"""Atomic file writes: a file appears whole under its name or not at all.

Write to a temporary file in the destination folder, flush and fsync it, then ``os.replace``
it onto the final name (atomic on POSIX and Windows). A crash at any moment leaves either the old
file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


def _default_mode() -> int:
    """Permissions a plain ``open(path, "w")`` would give (mkstemp makes files 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def _temporary_sibling(path: Path) -> Iterator[str]:
    """A temporary file name beside ``path``; renamed onto ``path`` (fsynced, ordinary
    permissions) when the block succeeds, removed when it fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on success rename it onto ``path``."""
    with _temporary_sibling(Path(path)) as tmp, open(tmp, mode) as handle:
        yield handle


def atomic_save(path: str | os.PathLike, write_to: Callable[[str], object]) -> None:
    """Call ``write_to(tmp_path)`` (for libraries that want a file name), then rename atomically."""
    with _temporary_sibling(Path(path)) as tmp:
        write_to(tmp)
