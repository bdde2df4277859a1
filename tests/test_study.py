"""The claim studies: study files (equal-size arms), the verdict rule, the streak number, and
`study run ... --budget smoke` + `study report` end to end (resumable, finished arms skipped)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from contrast_sr.cli import main
from contrast_sr.study import verdict as V
from contrast_sr.study.measure import streak_ratio
from contrast_sr.study.runner import run_dir, run_study
from contrast_sr.study.spec import Check, load_budget, load_study, study_names

STUDIES = Path(__file__).resolve().parents[1] / "configs" / "studies"


def test_eight_claims_each_with_checks():
    assert study_names(STUDIES) == [f"claim-{i}" for i in range(1, 9)]


@pytest.mark.parametrize("budget", ["cpu", "paper"])
def test_arms_have_equal_parameter_counts_within_two_percent(budget):
    b = load_budget(budget, STUDIES)
    for name in study_names(STUDIES):
        study = load_study(name, b, STUDIES)
        ref = study.arm(study.reference).params
        assert ref > 0 and len(study.arms) >= 2 and study.checks
        for arm in study.arms:
            assert abs(arm.params - ref) / ref <= 0.02, (name, arm.name, arm.params, ref)


def test_arms_differ_only_in_what_the_claim_is_about():
    study = load_study("claim-2", load_budget("cpu", STUDIES), STUDIES)
    a, b = (dict(arm.model) for arm in study.arms)
    changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert changed == {"ocab_bias", "mlp_ratio"}  # the bias, and the width that pays for it


def _check(test, metric="psnr", than=("b",), allowed=()):
    return Check(test, "a", "says", tuple(than), metric, tuple(allowed))


def test_verdict_rule_uses_the_seed_spread():
    per_seed = {"psnr": {"a": [30.0, 30.2], "b": [29.5, 29.6]}}
    assert V.decide(_check("better"), per_seed, {}, {}).verdict == V.SUPPORTED
    assert V.decide(_check("lower"), per_seed, {}, {}).verdict == V.NOT_SUPPORTED
    close = {"psnr": {"a": [30.0, 30.4], "b": [30.1, 30.2]}}  # difference inside the spread
    assert V.decide(_check("better"), close, {}, {}).verdict == V.INCONCLUSIVE
    assert V.decide(_check("not_worse"), close, {}, {}).verdict == V.SUPPORTED
    one_seed = {"psnr": {"a": [31.0], "b": [29.0]}}
    assert V.decide(_check("better"), one_seed, {}, {}).verdict == V.INCONCLUSIVE


def test_best_and_ratio_and_reach_rules():
    per_seed = {"psnr": {"a": [30.0, 30.1], "b": [29.0, 29.1], "c": [30.5, 30.6]}}
    assert V.decide(_check("best", than=("b",)), per_seed, {}, {}).verdict == V.SUPPORTED
    assert V.decide(_check("best", than=("b", "c")), per_seed, {}, {}).verdict == V.NOT_SUPPORTED
    allowed = _check("best", than=("b", "c"), allowed=("c",))
    assert V.decide(allowed, per_seed, {}, {}).verdict == V.INCONCLUSIVE
    single = {"step_s": {"a": 0.8, "b": 1.0}, "recipe_step_s": {"a": 0.1, "b": 0.2}}
    assert V.decide(_check("faster", "step_s"), {}, single, {}).verdict == V.SUPPORTED
    assert V.decide(_check("slower", "step_s"), {}, single, {}).verdict == V.NOT_SUPPORTED
    curves = {"a": [(100, 20.0), (200, 26.0), (300, 27.0)], "b": [(100, 20.0), (300, 25.0)]}
    assert V.first_reach(curves["a"], 25.0) == pytest.approx(100 + 100 * 5 / 6)
    d = V.decide(_check("reaches_sooner", "curve"), {}, single, curves)
    assert d.verdict == V.SUPPORTED and "iteration 183 vs 300" in d.detail
    assert V.claim_verdict([d, d]) == V.SUPPORTED
    assert V.claim_verdict([d, V.Decision(d.check, V.INCONCLUSIVE, "")]) == V.INCONCLUSIVE


def test_streak_ratio_sees_rows_and_columns():
    h = w = 41
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    c = (20.5, 20.5)
    r = torch.sqrt((yy - c[0]) ** 2 + (xx - c[1]) ** 2)
    iso = torch.exp(-r / 6)
    cross = iso + ((yy - c[0]).abs() < 1.5).float() + ((xx - c[1]).abs() < 1.5).float()
    assert streak_ratio(iso, c, 1.5) == pytest.approx(1.0, abs=0.1)
    assert streak_ratio(cross, c, 1.5) > 2.0


def test_smoke_study_and_report_end_to_end(tmp_path, data_dir, capsys):
    """The acceptance command pair: run claim-2 at the smoke budget, then report."""
    out = tmp_path / "study"
    assert main(["study", "run", "claim-2", "--budget", "smoke", "--output", str(out)]) == 0
    assert main(["study", "report", str(out)]) == 0
    text = (out / "report" / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 2 |"))
    assert any(v in row for v in (V.SUPPORTED, V.NOT_SUPPORTED, V.INCONCLUSIVE))
    assert "33,184" in text  # the counts are stated
    assert (out / "report" / "claim-2-curves.png").stat().st_size > 10_000
    speed = json.loads((out / "claims" / "claim-2" / "speed.json").read_text())
    assert all(v["step_s"] > 0 for v in speed.values())


def test_finished_arms_are_skipped_and_interrupted_ones_resume(tmp_path, data_dir):
    budget = load_budget("smoke", STUDIES)
    budget.config["train"]["keep_checkpoints"] = 0  # keep iteration 2 to resume from
    study = load_study("claim-8", budget, STUDIES)
    out = tmp_path / "study"
    run_study(study, budget, out, log=lambda _: None)
    arm = study.arm("clipped")
    folder = run_dir(out, arm, budget, 0)
    final = load_file(folder / "model.safetensors")
    # interrupt after iteration 2: the final files and the last checkpoint are gone
    for f in ("model.safetensors", "eval.json", "best.safetensors"):
        (folder / f).unlink(missing_ok=True)
    (folder / "checkpoints" / "iter_4.pt").unlink()
    shutil.rmtree(out / "claims")
    lines: list[str] = []
    run_study(study, budget, out, log=lines.append)
    trained = [line for line in lines if line.strip().startswith("train")]
    assert trained == [f"  train clipped seed 0 -> {folder}"]  # the softmax arm was skipped
    resumed = load_file(folder / "model.safetensors")
    assert resumed.keys() == final.keys()
    assert all(torch.equal(resumed[k], final[k]) for k in final)  # resumed bit for bit


def test_unknown_claim_and_budget_are_usage_errors(tmp_path, capsys):
    assert main(["study", "run", "claim-9", "--budget", "smoke", "-o", str(tmp_path)]) == 2
    assert "claim-9" in capsys.readouterr().err
    assert main(["study", "list", "--budget", "huge"]) == 2
    assert "huge" in capsys.readouterr().err


def test_list_json_names_every_claim(capsys):
    assert main(["study", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["claim"] for s in data["studies"]] == [f"claim-{i}" for i in range(1, 9)]
