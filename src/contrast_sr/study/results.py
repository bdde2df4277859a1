"""Read a study folder back: per claim its arms, per-seed numbers, single measurements and
validation curves, in the form :func:`contrast_sr.study.verdict.decide` takes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np

from contrast_sr.errors import InputError
from contrast_sr.train.plot import read_metrics


@dataclass
class ClaimResults:
    name: str
    study: dict[str, Any]  # study.json
    measure: dict[str, Any]  # measure.json
    evals: dict[str, list[dict]]  # arm -> eval.json per seed
    curves: dict[str, dict[str, list[tuple[int, float]]]]  # arm -> seed -> [(iter, Set5 dB)]
    per_seed: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # metric->arm->v
    single: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> arm -> value
    folder: Path = Path()

    @property
    def arms(self) -> list[dict]:
        return self.study["arms"]

    def mean_curve(self, arm: str) -> list[tuple[int, float]]:
        """Seed-mean validation curve over the iterations every seed has."""
        by_seed = list(self.curves[arm].values())
        iters = sorted(set.intersection(*(set(i for i, _ in c) for c in by_seed)))
        return [(i, mean(dict(c)[i] for c in by_seed)) for i in iters]

    def arrays(self, what: str) -> dict[str, np.ndarray]:
        path = self.folder / f"{what}.npz"
        if not path.is_file():
            return {}
        with np.load(path) as data:
            return {k: data[k].astype(np.float32) for k in data.files}


def _curve(run: Path) -> list[tuple[int, float]]:
    _, val = read_metrics(run)
    points = {}
    for rec in val:
        first = next(iter(rec["val"].values()))
        points[int(rec["iter"])] = float(first["psnr"])
    return sorted(points.items())


def load_claim(out: Path, name: str) -> ClaimResults:
    """The results of claim ``name`` in study folder ``out`` (InputError if not finished)."""
    folder = out / "claims" / name
    for f in ("study.json", "measure.json"):
        if not (folder / f).is_file():
            raise InputError(f"{folder}", f"no {f}: run 'contrast-sr study run {name}' first")
    study = json.loads((folder / "study.json").read_text())
    measure = json.loads((folder / "measure.json").read_text())
    evals: dict[str, list[dict]] = {}
    curves: dict[str, dict] = {}
    for arm, seeds in study["runs"].items():
        evals[arm] = [json.loads((out / run / "eval.json").read_text()) for run in seeds.values()]
        curves[arm] = {seed: _curve(out / run) for seed, run in seeds.items()}
    r = ClaimResults(name, study, measure, evals, curves, folder=folder)
    _metrics(r)
    return r


def _metrics(r: ClaimResults) -> None:
    """Fill ``per_seed`` and ``single`` with every metric the checks may name."""
    seeds = [str(s) for s in r.study["seeds"]]
    early = int(r.study["early_iter"])
    ps: dict[str, dict[str, list[float]]] = {"psnr": {}, "psnr_early": {}}
    for arm, evs in r.evals.items():
        ps["psnr"][arm] = [mean(s["psnr"] for s in e["sets"].values()) for e in evs]
        for set_name in evs[0]["sets"]:
            ps.setdefault(f"psnr_{set_name}", {})[arm] = [e["sets"][set_name]["psnr"] for e in evs]
            ps.setdefault(f"ssim_{set_name}", {})[arm] = [e["sets"][set_name]["ssim"] for e in evs]
        ps["psnr_early"][arm] = [dict(r.curves[arm][s]).get(early, float("nan")) for s in seeds]
    sources = {
        "lam": {"lam_streak": "streak", "lam_di": "di"},
        "features": {"feat_growth": "growth", "feat_spike": "spike"},
        "attention": {"attn_max": "max", "attn_kurtosis": "kurtosis"},
    }
    for what, names in sources.items():
        for metric, key in names.items():
            if what in r.measure:
                ps[metric] = {a: [v[s][key] for s in seeds] for a, v in r.measure[what].items()}
    r.per_seed = ps
    speed_file = r.folder / "speed.json"
    speed = json.loads(speed_file.read_text()) if speed_file.is_file() else r.measure["speed"]
    r.single = {
        k: {a: float(v[k]) for a, v in speed.items() if v.get(k) is not None}
        for k in ("step_s", "recipe_step_s", "peak_mem")
    }
