"""Study files: one YAML per claim of the research notes, plus the shared ``budgets.yml``.

A claim file names its arms (one model spec per arm and budget kind), the arm whose parameter
count the others match, what to measure and the checks that decide the verdict::

    claim: 2
    title: ...
    statement: ...
    reference: no_bias              # the other arms match its parameter count (within 2%)
    arms:
      no_bias:  {cpu: {base: study}, paper: {name: baseline_no_pe}}
      table:    {cpu: {base: study, ocab_bias: table, match_params: mlp_ratio}, paper: ...}
    measure: []                     # lam | features | attention (speed, curves: always)
    checks:
      - {test: better, metric: psnr_early, arm: table, than: no_bias, says: "..."}

``budgets.yml`` holds the named model ``bases`` and one recipe per budget (smoke, cpu, paper):
which arm spec it uses, the seeds, a training config without its ``model`` section, the
evaluation sets and the measurement sizes. Paths are relative to the studies folder.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from contrast_sr.errors import ArgumentError, ConfigError

MEASURES = ("lam", "features", "attention")  # speed and the curves: always
TESTS = (
    "better",
    "not_worse",
    "lower",
    "higher",
    "faster",
    "slower",
    "less_memory",
    "best",
    "reaches_sooner",
)
BUDGETS = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class Check:
    """One testable sentence of a claim: ``arm`` vs ``than`` on ``metric`` by ``test``."""

    test: str
    arm: str
    says: str
    than: tuple[str, ...] = ()  # one arm, or for ``best`` every arm it must beat
    metric: str = "psnr"
    allowed: tuple[str, ...] = ()  # ``best``: arms that may tie the winner (e.g. 6:1 beside 5:1)


@dataclass
class Arm:
    name: str
    label: str
    model: dict[str, Any]  # resolved: {name: variant, **overrides}
    params: int = 0


@dataclass
class Study:
    name: str  # claim-N
    claim: int
    title: str
    statement: str
    reference: str
    arms: list[Arm]
    measure: tuple[str, ...]
    checks: list[Check]
    path: Path
    notes: str = ""
    x_axis: dict[str, float] = field(default_factory=dict)  # arm -> number (claim 5's ratio)

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)


@dataclass
class Budget:
    name: str
    arms: str  # which arm spec the budget uses: "cpu" or "paper"
    seeds: list[int]
    config: dict[str, Any]  # training config without `model` (paths absolute)
    eval_sets: dict[str, str]  # set name -> HR folder
    eval_limit: dict[str, int]  # set name -> first N images (None: all)
    early_iter: int
    speed: dict[str, int]  # batch, patch, repeat
    lam: dict[str, Any]
    features: dict[str, Any]
    attention: dict[str, Any]


def studies_dir() -> Path:
    """``configs/studies`` of the working folder if present, else of this source checkout."""
    here = Path.cwd() / "configs" / "studies"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[3] / "configs" / "studies"


def study_names(folder: Path | None = None) -> list[str]:
    folder = folder or studies_dir()
    names = [p.stem for p in folder.glob("claim-*.yml")]
    return sorted(names, key=lambda n: int(re.sub(r"\D", "", n) or 0))


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ArgumentError("study", f"{path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError("study", f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError("study", f"{path}: the top level must be a mapping")
    return data


def _absolute(value: str, base: Path) -> str:
    return str((base / value).resolve()) if not Path(value).is_absolute() else value


def load_budget(name: str, folder: Path | None = None) -> Budget:
    """The recipe of budget ``name`` from ``budgets.yml``, with absolute paths."""
    folder = folder or studies_dir()
    data = _read_yaml(folder / "budgets.yml")
    budgets = data.get("budgets", {})
    if name not in budgets:
        raise ArgumentError("budget", f"unknown budget {name!r} (choose from {', '.join(budgets)})")
    b = copy.deepcopy(budgets[name])
    cfg = b["config"]
    train_data = cfg["data"]["train"]
    train_data["hr_dir"] = _absolute(train_data["hr_dir"], folder)
    cfg["data"]["val"] = {"hr_dir": [_absolute(p, folder) for p in cfg["data"]["val"]["hr_dir"]]}
    ev = b["eval"]
    return Budget(
        name=name,
        arms=b["arms"],
        seeds=[int(s) for s in b["seeds"]],
        config=cfg,
        eval_sets={k: _absolute(v, folder) for k, v in ev["sets"].items()},
        eval_limit={k: int(v) for k, v in (ev.get("limit") or {}).items()},
        early_iter=int(b["early_iter"]),
        speed={k: int(v) for k, v in b["speed"].items()},
        lam={**b["lam"], "image": _absolute(b["lam"]["image"], folder)},
        features={**b["features"], "image": _absolute(b["features"]["image"], folder)},
        attention={**b["attention"], "image": _absolute(b["attention"]["image"], folder)},
    )


def bases(folder: Path | None = None) -> dict[str, dict]:
    return _read_yaml((folder or studies_dir()) / "budgets.yml").get("bases", {})


def _arm_model(spec: dict, bases_: dict[str, dict], where: str) -> tuple[dict, str | None]:
    """Merge ``base:`` into an arm spec; returns (model dict, the field to match params by)."""
    spec = dict(spec)
    base = spec.pop("base", None)
    match = spec.pop("match_params", None)
    if base is not None:
        if base not in bases_:
            raise ConfigError(f"{where}.base", f"unknown base {base!r}")
        spec = {**copy.deepcopy(bases_[base]), **spec}
    if "name" not in spec:
        raise ConfigError(f"{where}.name", "each arm needs a variant name or a base")
    return spec, match


def load_study(name: str, budget: Budget, folder: Path | None = None) -> Study:
    """Claim file ``name`` (e.g. ``claim-2``) with its arms for ``budget``, counts matched."""
    from contrast_sr.study.balance import match_params, parameter_count

    folder = folder or studies_dir()
    path = folder / f"{name}.yml"
    if not path.is_file():
        known = ", ".join(study_names(folder))
        raise ArgumentError("claim", f"unknown study {name!r} (known: {known}, all)")
    data = _read_yaml(path)
    bases_ = bases(folder)
    arms, matches = [], {}
    for arm_name, specs in data["arms"].items():
        if budget.arms not in specs:
            raise ConfigError(f"{name}.arms.{arm_name}", f"no {budget.arms!r} spec")
        model, match = _arm_model(specs[budget.arms], bases_, f"{name}.arms.{arm_name}")
        label = specs.get("label", arm_name)
        arms.append(Arm(arm_name, label, model))
        matches[arm_name] = match
    reference = data["reference"]
    ref = next((a for a in arms if a.name == reference), None)
    if ref is None:
        raise ConfigError(f"{name}.reference", f"{reference!r} is not an arm")
    ref.params = parameter_count(ref.model)
    for arm in arms:
        if arm is not ref:
            if matches[arm.name]:
                arm.model = match_params(arm.model, matches[arm.name], ref.params)
            arm.params = parameter_count(arm.model)
    checks = [_check(c, {a.name for a in arms}, name) for c in data.get("checks", [])]
    measure = tuple(data.get("measure", []))
    for m in measure:
        if m not in MEASURES:
            raise ConfigError(f"{name}.measure", f"unknown measurement {m!r}")
    return Study(
        name=name,
        claim=int(data["claim"]),
        title=data["title"],
        statement=" ".join(str(data["statement"]).split()),
        reference=reference,
        arms=arms,
        measure=measure,
        checks=checks,
        path=path,
        notes=" ".join(str(data.get("notes", "")).split()),
        x_axis={k: float(v) for k, v in (data.get("x_axis") or {}).items()},
    )


def _check(raw: dict, arms: set[str], study: str) -> Check:
    where = f"{study}.checks"
    if raw.get("test") not in TESTS:
        raise ConfigError(where, f"unknown test {raw.get('test')!r} (one of {', '.join(TESTS)})")
    than = raw.get("than", [])
    than = tuple([than] if isinstance(than, str) else than)
    allowed = tuple(raw.get("allowed", []))
    for a in (raw["arm"], *than, *allowed):
        if a not in arms:
            raise ConfigError(where, f"unknown arm {a!r}")
    return Check(raw["test"], raw["arm"], raw["says"], than, raw.get("metric", "psnr"), allowed)


def load_study_meta(name: str, folder: Path | None = None) -> Study:
    """Claim file ``name`` without building its arms: title, statement, checks, notes."""
    folder = folder or studies_dir()
    path = folder / f"{name}.yml"
    data = _read_yaml(path)
    arm_names = set(data["arms"])
    return Study(
        name=name,
        claim=int(data["claim"]),
        title=data["title"],
        statement=" ".join(str(data["statement"]).split()),
        reference=data["reference"],
        arms=[],
        measure=tuple(data.get("measure", [])),
        checks=[_check(c, arm_names, name) for c in data.get("checks", [])],
        path=path,
        notes=" ".join(str(data.get("notes", "")).split()),
        x_axis={k: float(v) for k, v in (data.get("x_axis") or {}).items()},
    )
