"""Which files ``contrast-sr upscale`` reads and where it writes them, checked before any work.

Inputs are files, folders (their image files, not recursive) or glob patterns. The output is a
file when there is exactly one input file and ``OUT`` has an image extension and is not a
folder; otherwise a folder, with one output per input under the input's name (same extension
when it is a writable image format, else ``.png``). Nothing is ever written over an existing
file (an input included) unless ``overwrite`` is set (``--overwrite``).

Not a command itself (it is not in ``COMMAND_MODULES``): the file plan of ``upscale``.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from contrast_sr.errors import InputError, UsageError
from contrast_sr.io import IMAGE_EXTENSIONS, list_images

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def collect_inputs(specs: list[str]) -> list[Path]:
    """Expand files, folders and globs into a de-duplicated, ordered list of files."""
    files: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_file():
            found = [path]
        elif path.is_dir():
            found = list_images(path)
            if not found:
                raise InputError(
                    spec, "folder has no image files (" + ", ".join(IMAGE_EXTENSIONS) + ")"
                )
        elif _GLOB_CHARS & set(spec):
            found = []
            for match in sorted(glob.glob(spec, recursive=True)):
                m = Path(match)
                found.extend(list_images(m) if m.is_dir() else [m] if m.is_file() else [])
            if not found:
                raise InputError(spec, "pattern matches no files")
        elif path.exists():
            raise InputError(spec, "not a regular file or folder")
        else:
            raise InputError(spec, "no such file or folder")
        files.extend(found)
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _is_file_output(specs: list[str], files: list[Path], out: str) -> bool:
    if len(specs) != 1 or len(files) != 1 or not Path(specs[0]).is_file():
        return False
    if out.endswith(("/", os.sep)) or Path(out).is_dir():
        return False
    return Path(out).suffix.lower() in IMAGE_EXTENSIONS


def _check_writable(folder: Path) -> None:
    """Raise unless ``folder`` exists as a writable folder or can be created."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(str(folder), f"cannot create the output folder: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(str(folder), "output location is not writable (permission denied)")


def plan_jobs(specs: list[str], out: str, overwrite: bool = False) -> list[Job]:
    """The (source, target) pairs for ``upscale``; raises before anything is written."""
    files = collect_inputs(specs)
    if _is_file_output(specs, files, out):
        jobs = [Job(files[0], Path(out))]
    else:
        folder = Path(out)
        jobs = []
        for f in files:
            suffix = f.suffix if f.suffix.lower() in IMAGE_EXTENSIONS else ".png"
            jobs.append(Job(f, folder / (f.stem + suffix)))
    targets: dict[Path, Path] = {}
    inputs = {f.resolve() for f in files}
    for job in jobs:
        key = job.target.resolve()
        if key in targets:
            raise UsageError(
                str(job.target),
                f"both {targets[key]} and {job.source} would be written here; "
                "upscale them into different output folders",
            )
        targets[key] = job.source
        if job.target.is_dir():
            raise UsageError(str(job.target), "output exists and is a folder")
        if job.target.exists() and not overwrite:
            what = "is an input" if key in inputs else "already exists"
            raise UsageError(
                str(job.target), f"output {what}; refusing to overwrite it (use --overwrite)"
            )
    for parent in {job.target.parent for job in jobs}:
        _check_writable(parent)
    return jobs
