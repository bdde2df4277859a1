"""The glibc malloc tuning computing commands apply: on where glibc is, off by environment."""

from __future__ import annotations

import platform

import pytest
import torch

from contrast_sr.utils import malloc


def test_tuning_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(malloc.ENV, "0")
    assert malloc.tune_malloc() is False


def test_tuning_applies_on_glibc(monkeypatch):
    monkeypatch.delenv(malloc.ENV, raising=False)
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert malloc.tune_malloc("lean") == glibc
    assert malloc.tune_malloc() == glibc  # "fast"
    assert malloc.tune_malloc("other") is False


def test_the_first_kernel_launch_tunes_once(monkeypatch):
    monkeypatch.delenv(malloc.ENV, raising=False)
    monkeypatch.setattr(malloc, "_settled", False)
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert malloc.tune_malloc_once() == glibc
    assert malloc.tune_malloc_once() is False  # decided: later launches change nothing


def test_a_declined_tuning_stays_declined(monkeypatch):
    monkeypatch.delenv(malloc.ENV, raising=False)
    monkeypatch.setattr(malloc, "_settled", False)
    malloc.keep_malloc_as_is()
    assert malloc.tune_malloc_once() is False


def test_a_fused_scan_settles_the_process(monkeypatch):
    pytest.importorskip("numba")
    from contrast_sr.ops.scan import selective_scan_channels_last

    monkeypatch.setenv(malloc.ENV, "0")  # decide, but leave this test process's malloc alone
    monkeypatch.setattr(malloc, "_settled", False)
    u = torch.randn(1, 8, 4)
    A = -torch.ones(4, 1)
    B, C = torch.randn(1, 8, 1, 1), torch.randn(1, 8, 1, 1)
    selective_scan_channels_last(u, u.clone(), A, B, C, backend="numba")
    assert malloc._settled is True


def test_no_malloc_tune_keeps_the_kernels_from_tuning(monkeypatch, capsys):
    from contrast_sr.cli import main

    monkeypatch.delenv(malloc.ENV, raising=False)
    monkeypatch.setattr(malloc, "_settled", False)
    calls = []
    monkeypatch.setattr(malloc, "tune_malloc", lambda mode="fast": calls.append(mode) or True)
    code = main(
        ["bench", "scan", "--shape", "1,8,1,16", "--backends", "torch", "--no-reference",
         "--reps", "1", "--threads", "1", "--no-malloc-tune"]
    )  # fmt: skip
    assert code == 0
    assert calls == []
    assert malloc.tune_malloc_once() is False
