"""The glibc malloc tuning computing commands apply: on where glibc is, off by environment."""

from __future__ import annotations

import platform

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
