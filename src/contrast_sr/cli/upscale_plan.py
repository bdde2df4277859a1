"""Which files ``contrast-sr upscale`` reads and where it writes them, checked before any work.

Inputs are files, folders (their image files, not recursive) or glob patterns. ``OUT`` is:

- a folder when it ends with a slash or is an existing folder;
- else a file when its extension names an image format: one that can be written (PNG, BMP,
  JPEG, TIFF, WebP) for exactly one input; any other image format (``.gif``, ``.heic``, ...) is
  refused with the list of supported ones;
- else a folder (``out``, ``results.v2``), with one output per input under the input's name
  (same extension when it is a writable image format, else ``.png``).

An input is never written over, not even with ``--overwrite``. An existing output is refused
unless ``overwrite`` (``--overwrite``: replace it) or ``skip_existing`` (``--skip-existing``:
keep it and skip that input, e.g. to continue an interrupted batch).

Not a command itself (it is not in ``COMMAND_MODULES``): the file plan of ``upscale``.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from contrast_sr.errors import InputError, UsageError
from contrast_sr.io import IMAGE_EXTENSIONS, list_images

_GLOB_CHARS = set("*?[")
# Image formats Pillow does not know but people name outputs after.
_OTHER_IMAGE_EXTENSIONS = {".heic", ".heif", ".avif", ".jxl", ".raw", ".dng", ".exr", ".svg"}


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    skip: bool = False  # the target exists and --skip-existing keeps it


def _names_an_image(suffix: str) -> bool:
    """Whether ``suffix`` (lower case, with the dot) is the extension of an image format."""
    return (
        suffix in IMAGE_EXTENSIONS
        or suffix in _OTHER_IMAGE_EXTENSIONS
        or (suffix in Image.registered_extensions())
    )


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


def _is_file_output(files: list[Path], out: str) -> bool:
    """Whether ``OUT`` names one output file (module docstring); raises for a file name that
    cannot be written or does not fit the inputs."""
    if out.endswith(("/", os.sep)) or Path(out).is_dir():
        return False
    suffix = Path(out).suffix.lower()
    if not _names_an_image(suffix):
        return False
    if suffix not in IMAGE_EXTENSIONS:
        supported = ", ".join(IMAGE_EXTENSIONS)
        raise UsageError(
            out, f"cannot write {suffix} images (supported: {supported}; or give a folder)"
        )
    if len(files) != 1:
        raise UsageError(
            out, f"names one image file but there are {len(files)} inputs; give a folder"
        )
    return True


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


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file: the same file under any name (links included)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def plan_jobs(
    specs: list[str], out: str, overwrite: bool = False, skip_existing: bool = False
) -> list[Job]:
    """The (source, target, skip) jobs for ``upscale``; raises before anything is written."""
    if overwrite and skip_existing:
        raise UsageError("--skip-existing", "cannot be combined with --overwrite")
    files = collect_inputs(specs)
    if _is_file_output(files, out):
        jobs = [Job(files[0], Path(out))]
    else:
        folder = Path(out)
        jobs = []
        for f in files:
            suffix = f.suffix if f.suffix.lower() in IMAGE_EXTENSIONS else ".png"
            jobs.append(Job(f, folder / (f.stem + suffix)))
    targets: dict[Path, Path] = {}
    inputs = {f.resolve() for f in files}
    input_ids = {_file_id(f) for f in files} - {None}
    planned = []
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
        if key in inputs or _file_id(job.target) in input_ids:
            raise UsageError(
                str(job.target),
                "output is an input; inputs are never overwritten (not even with --overwrite): "
                "choose another output",
            )
        if job.target.exists() and not overwrite:
            if not skip_existing:
                raise UsageError(
                    str(job.target),
                    "output already exists; refusing to overwrite it (--overwrite replaces it, "
                    "--skip-existing keeps it and continues with the rest)",
                )
            job = Job(job.source, job.target, skip=True)
        planned.append(job)
    for parent in {job.target.parent for job in planned if not job.skip}:
        _check_writable(parent)
    return planned
