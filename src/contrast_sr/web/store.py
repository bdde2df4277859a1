"""The server's private work folder: one sub-folder per job, removed with the job.

Nothing outside it is ever read or written for the page. It is made with ``mkdtemp`` (mode
0700, readable by this user only) and deleted when the server stops (or, failing that, when
the interpreter exits). A job's folder holds the upload (deleted once decoded), the result in
the input's format, the input and the result as 8-bit arrays for the comparison crops
(``.npy``, memory-mapped when read), and a thumbnail.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import weakref
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

_JOB_ID = re.compile(r"[0-9a-f]{32}")


class Store:
    """Files of the jobs under one private temporary folder."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="contrast-sr-serve-"))
        # also at interpreter exit, should the server not be shut down properly
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)

    def folder(self, job_id: str, create: bool = True) -> Path:
        """The job's folder; ``job_id`` must be a job id, never a path."""
        if not _JOB_ID.fullmatch(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        path = self.root / job_id
        if create:
            path.mkdir(mode=0o700, exist_ok=True)
        return path

    def upload_path(self, job_id: str) -> Path:
        return self.folder(job_id) / "upload"

    def result_path(self, job_id: str, extension: str) -> Path:
        return self.folder(job_id) / f"result{extension}"

    def save_array(self, job_id: str, name: str, array: np.ndarray) -> None:
        np.save(self.folder(job_id) / f"{name}.npy", array, allow_pickle=False)

    def load_array(self, job_id: str, name: str) -> np.ndarray:
        """A saved array, memory-mapped (a crop reads only its rows)."""
        path = self.folder(job_id, create=False) / f"{name}.npy"
        return np.load(path, mmap_mode="r", allow_pickle=False)

    def save_bytes(self, job_id: str, name: str, data: bytes) -> None:
        (self.folder(job_id) / name).write_bytes(data)

    def read_bytes(self, job_id: str, name: str) -> bytes:
        return (self.folder(job_id, create=False) / name).read_bytes()

    def zip(self, entries: Iterable[tuple[Path, str]]) -> Path:
        """A zip (stored: images are compressed already) of ``(file, name in the zip)`` pairs,
        names made unique; the caller deletes it."""
        seen: set[str] = set()
        with (
            tempfile.NamedTemporaryFile(dir=self.root, suffix=".zip", delete=False) as handle,
            zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive,
        ):
            for path, name in entries:
                archive.write(path, _unique(name, seen))
        return Path(handle.name)

    def remove(self, job_id: str) -> None:
        if _JOB_ID.fullmatch(job_id):
            shutil.rmtree(self.root / job_id, ignore_errors=True)

    def close(self) -> None:
        self._finalizer()


def _unique(name: str, seen: set[str]) -> str:
    """``name``, or ``stem (2).ext``, ``stem (3).ext``, ... when taken."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate, n = name, 1
    while candidate in seen:
        n += 1
        candidate = f"{stem} ({n}){dot}{ext}"
    seen.add(candidate)
    return candidate
