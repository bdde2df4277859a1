"""``study run``: train every arm x seed of a study with the project trainer, evaluate it with
the paper protocol, then measure what the claim needs. Everything lands in one output folder:

    OUT/runs/<key>-s<seed>/   one training run (trainer files + eval.json); <key> hashes the
                              arm's model and the budget's recipe, so claims that share an arm
                              train it once; finished runs are skipped, interrupted ones resume
    OUT/claims/<claim>/       study.json (arms, counts, runs), speed.json, measure.json and
                              arrays (*.npz) of the claim's measurements
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from contrast_sr.study.spec import Arm, Budget, Study
from contrast_sr.utils.fs import atomic_write

Log = Callable[[str], None]


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_key(arm: Arm, budget: Budget) -> str:
    """Ten hex digits naming an arm trained with a budget's recipe (equal arms, equal key)."""
    blob = json.dumps(
        {
            "model": arm.model,
            "config": budget.config,
            "eval": [budget.eval_sets, budget.eval_limit],
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def run_dir(out: Path, arm: Arm, budget: Budget, seed: int) -> Path:
    return out / "runs" / f"{run_key(arm, budget)}-s{seed}"


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=1)


def training_config(arm: Arm, budget: Budget, seed: int):
    """The trainer's :class:`~contrast_sr.train.config.Config` for one arm and seed."""
    from contrast_sr.train.config import load_config

    raw = copy.deepcopy(budget.config)
    raw["model"] = {**arm.model, "scale": 4}
    raw.setdefault("train", {})["seed"] = seed
    return load_config(None, raw=raw)


def _finished_training(folder: Path, iters: int) -> bool:
    from contrast_sr.train.checkpoint import list_checkpoints

    done = list_checkpoints(folder)
    return (folder / "model.safetensors").is_file() and bool(done) and done[-1][0] >= iters


def train_and_evaluate(arm: Arm, budget: Budget, seed: int, folder: Path, log: Log) -> dict:
    """Train (or resume, or skip) one arm x seed, then evaluate it; returns eval.json's data."""
    from contrast_sr.train.loop import train

    result_path = folder / "eval.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    cfg = training_config(arm, budget, seed)
    _write_json(folder / "arm.json", {"arm": arm.name, "model": arm.model, "seed": seed})
    if not _finished_training(folder, cfg.train.iters):
        log(f"  train {arm.name} seed {seed} -> {folder}")
        train(cfg, folder, resume=True)
    scores = evaluate_sets(folder / "model.safetensors", budget)
    data = {"arm": arm.name, "seed": seed, "params": arm.params, "sets": scores}
    _write_json(result_path, data)
    text = ", ".join(f"{k} {v['psnr']:.3f}" for k, v in scores.items())
    log(f"  eval  {arm.name} seed {seed}: {text}")
    return data


def evaluate_sets(weights: Path, budget: Budget) -> dict[str, dict[str, float]]:
    """Y PSNR/SSIM (x4, border cropped) of a trained arm on the budget's sets."""
    import torch

    from contrast_sr.evaluate import evaluate, model_sr
    from contrast_sr.models.checkpoint import load_model

    model = load_model(weights)
    sr_fn = model_sr(model, torch.device("cpu"), "fp32")
    out = {}
    for name, folder in budget.eval_sets.items():
        r = evaluate(sr_fn, folder, 4, progress=False, limit=budget.eval_limit.get(name))
        out[name] = {"psnr": r.psnr_y, "ssim": r.ssim_y, "images": len(r.images)}
    return out


def run_study(
    study: Study, budget: Budget, out: Path, log: Log = _stderr, remeasure: str | None = None
) -> Path:
    """Train, evaluate and measure ``study`` at ``budget`` under ``out``; returns its folder.

    Finished steps are skipped; ``remeasure`` ("speed" or "all") redoes those measurements
    (e.g. on an idle machine) from the trained weights."""
    claim_dir = out / "claims" / study.name
    log(f"{study.name}: {study.title} ({len(study.arms)} arms x {len(budget.seeds)} seeds)")
    runs: dict[str, dict[str, str]] = {}
    for arm in study.arms:
        runs[arm.name] = {}
        for seed in budget.seeds:
            folder = run_dir(out, arm, budget, seed)
            train_and_evaluate(arm, budget, seed, folder, log)
            runs[arm.name][str(seed)] = str(folder.relative_to(out))
    _write_json(
        claim_dir / "study.json",
        {
            "name": study.name,
            "budget": budget.name,
            "seeds": budget.seeds,
            "reference": study.reference,
            "iters": budget.config["train"]["iters"],
            "early_iter": budget.early_iter,
            "speed_size": budget.speed,
            "eval_limit": budget.eval_limit,
            "arms": [
                {"name": a.name, "label": a.label, "params": a.params, "model": a.model}
                for a in study.arms
            ],
            "runs": runs,
        },
    )
    if remeasure or not (claim_dir / "speed.json").is_file():
        log(f"  speed of the {len(study.arms)} arms (fresh process each)")
        speed = measure_speed(study, budget)
        _write_json(claim_dir / "speed.json", speed)
    if remeasure == "all" or not (claim_dir / "measure.json").is_file():
        if study.measure:
            log(f"  measure {', '.join(study.measure)} on the trained arms")
        measure_study(study, budget, out, runs, claim_dir)
    return claim_dir


def measure_speed(study: Study, budget: Budget) -> dict[str, dict]:
    """Step time and peak memory of every arm (:func:`contrast_sr.study.measure.speed`)."""
    from contrast_sr.study import measure

    return measure.speed({a.name: a.model for a in study.arms}, budget.speed)


def measure_study(
    study: Study, budget: Budget, out: Path, runs: dict[str, dict[str, str]], claim_dir: Path
) -> None:
    """The claim's own measurements (lam, features, attention) on each trained arm x seed;
    numbers to ``measure.json``, arrays to ``<what>.npz``."""
    from contrast_sr.models.checkpoint import load_model
    from contrast_sr.study import measure

    result: dict[str, Any] = {}
    functions = {
        "lam": (measure.lam, budget.lam),
        "features": (measure.features, budget.features),
        "attention": (measure.attention_outliers, budget.attention),
    }
    for what in study.measure:
        if what not in functions:
            continue
        fn, cfg = functions[what]
        values: dict[str, dict[str, Any]] = {}
        arrays: dict[str, np.ndarray] = {}
        for arm_name, seeds in runs.items():
            values[arm_name] = {}
            for seed, folder in seeds.items():
                model = load_model(out / folder / "model.safetensors")
                v = fn(model, cfg)
                for k, arr in v.pop("arrays", {}).items():
                    arrays[f"{arm_name}/s{seed}/{k}"] = arr
                values[arm_name][seed] = v
        result[what] = values
        if arrays:
            with atomic_write(claim_dir / f"{what}.npz", "wb") as f:
                np.savez_compressed(f, **arrays)
    _write_json(claim_dir / "measure.json", result)
