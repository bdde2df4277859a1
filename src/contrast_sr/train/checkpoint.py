"""Training checkpoints: ``DIR/checkpoints/iter_<N>.pt``, written atomically, newest loads first.

A checkpoint holds everything needed to continue bit for bit: model and EMA weights, optimizer,
grad scaler, schedule position (the iteration: schedules and data order are pure functions of
it), every RNG state (Python, NumPy, torch CPU and CUDA), the best validation score and the config.
Files appear whole or not at all (temp file + fsync + rename), so a kill at any moment leaves
only complete checkpoints; a file that still fails to load is skipped with a warning.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from contrast_sr.train.ema import EMA
from contrast_sr.utils.fs import atomic_save

_NAME = re.compile(r"^iter_(\d+)\.pt$")


def checkpoint_path(run_dir: Path, iteration: int) -> Path:
    """``run_dir/checkpoints/iter_<iteration>.pt``."""
    return Path(run_dir) / "checkpoints" / f"iter_{iteration}.pt"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of the run's checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (temp file, fsync, rename)."""
    atomic_save(path, lambda tmp: torch.save(state, tmp))


def load_latest(run_dir: Path) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads, or None when there is none."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            return path, torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged file: fall back to the previous one
            print(f"warning: skipping unreadable checkpoint {path}: {exc}", file=sys.stderr)
    return None


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (``keep = 0`` keeps all)."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)


def training_state(
    iteration: int,
    model: nn.Module,
    ema: EMA | None,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    *,
    scheduler: str,
    best: dict | None,
    world_size: int,
    config: dict,
) -> dict:
    """The checkpoint of iteration ``iteration``: everything needed to continue bit for bit."""
    return {
        "iteration": iteration,
        "model": model.state_dict(),
        "ema": None if ema is None else ema.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "scheduler": {"name": scheduler, "iteration": iteration},
        "rng": rng_state(),
        "best": best,
        "world_size": world_size,
        "config": config,
    }


def restore_training_state(
    state: dict,
    model: nn.Module,
    ema: EMA | None,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
) -> tuple[int, dict | None]:
    """Load a :func:`training_state` into the objects and every global RNG; returns the
    iteration it was taken at and the best validation score so far."""
    model.load_state_dict(state["model"])
    if ema is not None and state.get("ema") is not None:
        ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return int(state["iteration"]), state.get("best")


def rng_state() -> dict:
    """Every global RNG state, as tensors/plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the global RNGs from :func:`rng_state`."""
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value
