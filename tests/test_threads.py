"""The --threads policy: explicit counts, $OMP_NUM_THREADS, and fewer threads on a busy machine."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.cli import main
from contrast_sr.errors import ArgumentError
from contrast_sr.utils import threads


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_explicit_count_and_bad_values():
    assert threads.set_threads(1) == 1 and torch.get_num_threads() == 1
    assert threads.set_threads("2") == 2 and torch.get_num_threads() == 2
    for bad in ("0", "-1", "many"):
        with pytest.raises(ArgumentError, match="positive integer"):
            threads.parse_threads(bad)


def test_auto_takes_omp_num_threads_else_idle_physical_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.auto_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "physical_cores", lambda: 4)
    for busy, expected in [(0.0, 4), (0.2, 4), (1.0, 3), (2.6, 1), (9.0, 1)]:
        monkeypatch.setattr(threads, "busy_cores", lambda b=busy: b)
        assert threads.auto_threads() == expected


def test_machine_facts_are_sane():
    cpus = threads.usable_cpus()
    assert 1 <= threads.physical_cores(cpus) <= len(cpus)
    assert 0.0 <= threads.busy_cores(0.01) <= (len(cpus) + 64)


def test_cli_applies_and_rejects_threads(capsys, tmp_path):
    code = main(["bench", "--threads", "0", "--models", "contrast_tiny"])
    assert code == 2
    assert "--threads" in capsys.readouterr().err


def test_train_threads_ignore_the_load(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "physical_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda: 3.0)
    assert threads.auto_threads() == 1
    assert threads.auto_threads(load_aware=False) == 4
