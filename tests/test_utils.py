"""Atomic writes and device selection."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.errors import UsageError
from contrast_sr.utils.device import autocast, resolve_device
from contrast_sr.utils.fs import atomic_save, atomic_write


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as handle:
        handle.write(b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_save_with_filename_writer(tmp_path):
    target = tmp_path / "sub" / "t.pt"
    atomic_save(target, lambda tmp: torch.save({"a": 1}, tmp))
    assert torch.load(target, weights_only=True) == {"a": 1}


def test_resolve_device_cpu_and_errors():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(UsageError):
            resolve_device("cuda")
    with pytest.raises(UsageError):
        resolve_device("tpu")


def test_autocast_bf16_on_cpu_changes_matmul_dtype():
    x = torch.randn(4, 4)
    with autocast(torch.device("cpu"), "bf16"):
        assert (x @ x).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (x @ x).dtype == torch.float32


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.bin") as handle:
            handle.write(b"x")
        atomic_save(tmp_path / "b.bin", lambda tmp: open(tmp, "wb").close())
    finally:
        os.umask(umask)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o644
