"""``study report``: the README (per claim: arms, counts, numbers with seed spread, checks and
verdict) and its figures, written from a study folder. No number is typed by hand."""

from __future__ import annotations

import platform
from pathlib import Path
from statistics import mean

import torch

from contrast_sr.study import figures
from contrast_sr.study import verdict as V
from contrast_sr.study.results import ClaimResults, load_claim
from contrast_sr.study.spec import load_study_meta, study_names
from contrast_sr.utils.fs import atomic_write


def _pm(values: list[float], digits: int = 3) -> str:
    """mean ± half the seed range (the spread the verdict rule uses is the full range)."""
    m = mean(values)
    if len(values) < 2:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {V.spread(values) / 2:.{digits}f}"


def _arms_table(r: ClaimResults) -> list[str]:
    ref = next(a for a in r.arms if a["name"] == r.study["reference"])["params"]
    sets = list(r.evals[r.arms[0]["name"]][0]["sets"])
    head = "| arm | params (vs reference) | " + " | ".join(f"{s} PSNR / SSIM" for s in sets)
    head += " | mean PSNR |"
    rows = [head, "|" + "---|" * (len(sets) + 3)]
    for a in r.arms:
        n = a["name"]
        cells = [
            f"{_pm(r.per_seed[f'psnr_{s}'][n])} / {mean(r.per_seed[f'ssim_{s}'][n]):.4f}"
            for s in sets
        ]
        delta = 100 * (a["params"] - ref) / ref
        rows.append(
            f"| {a['label']} (`{n}`) | {a['params']:,} ({delta:+.2f}%) | "
            + " | ".join(cells)
            + f" | {_pm(r.per_seed['psnr'][n])} |"
        )
    return rows


def _speed_table(r: ClaimResults) -> list[str]:
    size = r.study["speed_size"]
    rows = [
        f"| arm | train step, batch {size['batch']}, LR {size['patch']}² | peak memory "
        f"(CPU RSS increase) | step at the recipe's size ({size['recipe_batch']} x "
        f"{size['recipe_patch']}²) |",
        "|---|---|---|---|",
    ]
    for a in r.arms:
        n = a["name"]
        mem = r.single["peak_mem"].get(n)
        mem_text = f"{mem / 2**20:.0f} MB" if mem is not None else "n/a"
        rows.append(
            f"| {a['label']} | {r.single['step_s'][n] * 1000:.0f} ms | {mem_text} | "
            f"{r.single['recipe_step_s'][n] * 1000:.1f} ms |"
        )
    return rows


def _extra_tables(r: ClaimResults) -> list[str]:
    out: list[str] = []
    labels = {a["name"]: a["label"] for a in r.arms}
    if "lam" in r.measure:
        out += [
            "",
            "| arm | LAM DI | streak ratio (rows/columns vs elsewhere, 1 = isotropic) |",
            "|---|---|---|",
        ]
        for n in labels:
            out.append(
                f"| {labels[n]} | {_pm(r.per_seed['lam_di'][n], 2)} | "
                f"{_pm(r.per_seed['lam_streak'][n], 3)} |"
            )
    if "features" in r.measure:
        out += [
            "",
            "| arm | feature growth (last / first block mean norm) | spike (max / mean) "
            "| last block mean norm |",
            "|---|---|---|---|",
        ]
        for n in labels:
            last = [v["last_mean"] for v in r.measure["features"][n].values()]
            out.append(
                f"| {labels[n]} | {_pm(r.per_seed['feat_growth'][n])} | "
                f"{_pm(r.per_seed['feat_spike'][n])} | {_pm(last, 2)} |"
            )
    if "attention" in r.measure:
        out += ["", "| arm | max \\|attention output\\| | kurtosis |", "|---|---|---|"]
        for n in labels:
            out.append(
                f"| {labels[n]} | {_pm(r.per_seed['attn_max'][n])} | "
                f"{_pm(r.per_seed['attn_kurtosis'][n], 2)} |"
            )
    return out


def _claim_section(r: ClaimResults, meta, decisions, target: Path) -> list[str]:
    budget = r.study["budget"]
    lines = [
        f"## Claim {meta.claim}: {meta.title} — **{V.claim_verdict(decisions)}**",
        "",
        f"> {meta.statement}",
        "",
        f"Run: `contrast-sr study run {r.name} --budget {budget} --output DIR` "
        f"(arms in `configs/studies/{r.name}.yml`; {len(r.study['seeds'])} seeds).",
        "",
    ]
    if meta.notes:
        lines += [meta.notes, ""]
    lines += [*_arms_table(r), "", *_speed_table(r), *_extra_tables(r)]
    lines += ["", "| check | test | numbers | verdict |", "|---|---|---|---|"]
    for d in decisions:
        than = ", ".join(d.check.than)
        lines.append(
            f"| {d.check.says} | `{d.check.arm}` {d.check.test} `{than}` | "
            f"{d.detail} | {d.verdict} |"
        )
    lines.append("")
    figs = _figures(r, meta, target)
    lines += [f"![{name}]({name})" for name in figs]
    return [*lines, ""]


def _figures(r: ClaimResults, meta, target: Path) -> list[str]:
    names = [f"{r.name}-curves.png"]
    figures.curves(r, target / names[0])
    if "lam" in r.measure:
        names.append(f"{r.name}-lam.png")
        figures.lam_grid(r, target / names[-1])
    if "features" in r.measure:
        names.append(f"{r.name}-feature-norms.png")
        figures.feature_norms(r, target / names[-1])
    if meta.x_axis:
        names.append(f"{r.name}-ratio.png")
        figures.ratio_plot(r, meta.x_axis, target / names[-1])
    return names


def write_report(out: Path, target: Path | None = None, studies: Path | None = None) -> Path:
    """Write ``target/README.md`` (default ``out/report``) and the figures; returns the file."""
    target = target or out / "report"
    target.mkdir(parents=True, exist_ok=True)
    done = [n for n in study_names(studies) if (out / "claims" / n / "measure.json").is_file()]
    if not done:
        from contrast_sr.errors import InputError

        raise InputError(f"{out}", "holds no finished claim (run 'contrast-sr study run' first)")
    sections, summary = [], []
    budgets = set()
    for name in done:
        r = load_claim(out, name)
        meta = load_study_meta(name, studies)
        decisions = [
            V.decide(c, r.per_seed, r.single, {a: r.mean_curve(a) for a in r.curves})
            for c in meta.checks
        ]
        budgets.add(r.study["budget"])
        summary.append(
            f"| {meta.claim} | {meta.title} | {V.claim_verdict(decisions)} | "
            f"`contrast-sr study run {name} --budget {r.study['budget']}` |"
        )
        sections += _claim_section(r, meta, decisions, target)
    header = [
        "# The research claims, re-run",
        "",
        "Written by `contrast-sr study report` from the study folder; every number comes from "
        "the runs (do not edit by hand). Re-create with "
        f"`contrast-sr study run all --budget {'/'.join(sorted(budgets))} --output DIR` then "
        "`contrast-sr study report DIR -o docs/science`.",
        "",
        f"Budget: {', '.join(sorted(budgets))}. Evaluation: the paper protocol (x4, Y channel, "
        "border of 4 px cropped, MATLAB bicubic LR) on the sets in each table; curves are Set5 "
        "during training. Speed: each arm in a fresh process, minimum over repeats; "
        f"machine: {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s) in the report process.",
        "",
        "**Verdict rule.** " + " ".join(V.__doc__.split("\n\n", 1)[1].split()),
        "",
        "| claim | what | verdict | command |",
        "|---|---|---|---|",
        *summary,
        "",
    ]
    path = target / "README.md"
    with atomic_write(path, "w") as f:
        f.write("\n".join(header + sections))
    return path
