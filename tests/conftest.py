"""Shared test fixtures: where the project's shared benchmark/training data lives; Triton's
interpreter on machines without CUDA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():  # Triton kernels run on CPU tensors through its interpreter;
    os.environ.setdefault("TRITON_INTERPRET", "1")  # set before anything imports triton

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$CONTRAST_SR_DATA`` or the ``shared/data`` folder beside the repository."""
    env = os.environ.get("CONTRAST_SR_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def shared_spec_dir() -> Path:
    env = os.environ.get("CONTRAST_SR_SPEC")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "spec"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set CONTRAST_SR_DATA)")
    return path


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    path = shared_spec_dir()
    if not path.is_dir():
        pytest.skip(f"shared spec not found at {path} (set CONTRAST_SR_SPEC)")
    return path


def cli_env() -> dict[str, str]:
    """Environment for ``python -m contrast_sr`` subprocesses: this checkout's sources first."""
    env = dict(os.environ)
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
