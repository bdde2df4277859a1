"""The wheel works offline: it holds the bundled weights and configs, and a fresh virtual
environment (torch etc. from the system site) runs ``contrast-sr upscale`` from it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import REPO_ROOT


def test_package_data_is_where_the_wheel_looks_for_it():
    """Fast check of the sources the wheel is built from (the slow test builds it)."""
    package = resources.files("contrast_sr")
    assert (package / "weights" / "contrast_tiny_x4.safetensors").is_file()
    assert (package / "configs" / "default_x4.yml").is_file()  # the link to configs/
    assert (package / "configs" / "research" / "contrast_light_x4.yml").is_file()
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["contrast_sr"]
    for pattern in ("weights/*.safetensors", "configs/*.yml", "configs/research/*.yml"):
        assert pattern in patterns


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_FIND_LINKS")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="1")
    return env


def _source_copy(dest: Path) -> Path:
    """What the wheel is built from, copied (the build writes build/ and *.egg-info beside it)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("src", "configs"):
        shutil.copytree(REPO_ROOT / name, dest / name, symlinks=True, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, dest / name)
    return dest


def test_wheel_installs_and_upscales_offline(tmp_path):
    """About 12 s on the 2-core VM (build, venv, install, one tiny upscale)."""
    env = _offline_env()
    run = lambda *cmd, **kw: subprocess.run(  # noqa: E731
        cmd, capture_output=True, text=True, env=env, timeout=600, **kw
    )
    source = _source_copy(tmp_path / "source")
    built = run(
        sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
        "--no-build-isolation", "-w", str(tmp_path / "dist"),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("contrast_sr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "contrast_sr/weights/contrast_tiny_x4.safetensors" in names
    assert "contrast_sr/configs/default_x4.yml" in names
    assert "contrast_sr/configs/research/hat_light_x4.yml" in names

    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv))
    assert made.returncode == 0, made.stderr
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    installed = run(str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel))
    assert installed.returncode == 0, installed.stderr

    Image.fromarray(np.full((12, 16, 3), 120, np.uint8)).save(tmp_path / "in.png")
    where = run(str(python), "-c", "import contrast_sr; print(contrast_sr.__file__)", cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # not this checkout
    script = python.parent / ("contrast-sr.exe" if os.name == "nt" else "contrast-sr")
    up = run(str(script), "upscale", "in.png", "-o", "out", "--json", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["outputs"][0]["width"] == 64
    assert Image.open(tmp_path / "out" / "in.png").size == (64, 48)
