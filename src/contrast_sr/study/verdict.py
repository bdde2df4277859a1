"""Verdicts: each check of a claim is decided from the measured numbers by one stated rule.

Per-seed numbers (PSNR, LAM, feature norms, attention statistics): d = mean(arm) - mean(than);
the noise is the larger seed range (max - min) of the two arms. ``better``/``higher``:
supported if d > noise, not supported if d < -noise, else inconclusive; ``lower`` mirrors it;
``not_worse``: supported if d > -noise, else not supported; ``best``: supported if the arm beats
every other arm by more than that pair's noise, not supported if one beats it so (arms in
``allowed`` may), else inconclusive. Fewer than two seeds: inconclusive (no spread known).
Single measurements (step time, memory): r = arm / than; ``faster``/``less_memory``: supported
if r < 1 - 5%, not supported if r > 1 + 5%, else inconclusive; ``slower`` mirrors it.
``reaches_sooner``: the iteration at which the arm's seed-mean Set5 curve first reaches the
reference's final seed-mean PSNR, over the iteration at which the reference itself first does:
supported below 1 - 5%, not supported above 1 + 5% or if never reached, else inconclusive.
A claim is supported if all its checks are, not supported if any is not, else inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean

from contrast_sr.study.spec import Check

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive at this budget"
TOLERANCE = 0.05  # relative margin for single measurements (time, memory, iterations)


@dataclass
class Decision:
    check: Check
    verdict: str
    detail: str  # the numbers behind it, one line


def spread(values: list[float]) -> float:
    return max(values) - min(values) if len(values) > 1 else 0.0


def _compare(a: list[float], b: list[float], sign: float) -> tuple[str, float, float]:
    """(verdict of "a beats b in direction sign", d, noise)."""
    d = sign * (mean(a) - mean(b))
    noise = max(spread(a), spread(b))
    if min(len(a), len(b)) < 2:
        return INCONCLUSIVE, d, noise
    if d > noise:
        return SUPPORTED, d, noise
    return (NOT_SUPPORTED if d < -noise else INCONCLUSIVE), d, noise


def _ratio_verdict(r: float, want_below: bool) -> str:
    if want_below:
        return (
            SUPPORTED if r < 1 - TOLERANCE else NOT_SUPPORTED if r > 1 + TOLERANCE else INCONCLUSIVE
        )
    return SUPPORTED if r > 1 + TOLERANCE else NOT_SUPPORTED if r < 1 - TOLERANCE else INCONCLUSIVE


def first_reach(curve: list[tuple[int, float]], level: float) -> float | None:
    """Iteration (linear between validation points) where ``curve`` first reaches ``level``."""
    prev = None
    for it, v in curve:
        if v >= level:
            if prev is None or prev[1] >= level:
                return float(it)
            (i0, v0) = prev
            return i0 + (it - i0) * (level - v0) / (v - v0)
        prev = (it, v)
    return None


def decide(
    check: Check, per_seed: dict, single: dict, curves: dict, fmt: str = "{:.3f}"
) -> Decision:
    """Apply the rule for ``check``; ``per_seed[metric][arm]`` lists, ``single[metric][arm]``
    numbers, ``curves[arm]`` the seed-mean Set5 curve [(iteration, dB)]."""
    t, m, arm = check.test, check.metric, check.arm
    if t in ("better", "higher", "lower", "not_worse"):
        a, b = per_seed[m][arm], per_seed[m][check.than[0]]
        verdict, d, noise = _compare(a, b, -1.0 if t == "lower" else 1.0)
        if t == "not_worse":
            verdict = (
                INCONCLUSIVE
                if min(len(a), len(b)) < 2
                else (SUPPORTED if d > -noise else NOT_SUPPORTED)
            )
        detail = (
            f"{m}: {fmt.format(mean(a))} vs {fmt.format(mean(b))}, "
            f"difference {fmt.format(mean(a) - mean(b))}, seed spread {fmt.format(noise)}"
        )
        return Decision(check, verdict, detail)
    if t == "best":
        a = per_seed[m][arm]
        verdicts, parts = [], []
        for other in check.than:
            v, d, noise = _compare(a, per_seed[m][other], 1.0)
            if other in check.allowed and v == NOT_SUPPORTED:
                v = INCONCLUSIVE
            verdicts.append(v)
            parts.append(f"{other} {d:+.3f} (spread {noise:.3f})")
        verdict = (
            NOT_SUPPORTED
            if NOT_SUPPORTED in verdicts
            else SUPPORTED
            if all(v == SUPPORTED for v in verdicts)
            else INCONCLUSIVE
        )
        return Decision(check, verdict, f"{m} {mean(a):.3f}; lead over " + ", ".join(parts))
    if t in ("faster", "slower", "less_memory"):
        a, b = single[m][arm], single[m][check.than[0]]
        r = a / b if b else float("nan")
        verdict = _ratio_verdict(r, want_below=t != "slower")
        unit = "s" if m == "step_s" else " MB"
        scale = 1.0 if m == "step_s" else 1 / 2**20
        detail = f"{m}: {a * scale:.3f}{unit} vs {b * scale:.3f}{unit}, ratio {r:.3f}"
        return Decision(check, verdict, detail)
    if t == "reaches_sooner":
        ref = check.than[0]
        level = curves[ref][-1][1]
        it_arm, it_ref = first_reach(curves[arm], level), first_reach(curves[ref], level)
        if it_arm is None:
            return Decision(check, NOT_SUPPORTED, f"never reaches {level:.3f} dB (Set5)")
        r = it_arm / it_ref
        sec = single["recipe_step_s"]
        s_arm, s_ref = it_arm * sec[arm], it_ref * sec[ref]
        detail = (
            f"reaches {level:.3f} dB (Set5) at iteration {it_arm:.0f} vs {it_ref:.0f} "
            f"(ratio {r:.2f}; {s_arm:.0f} s vs {s_ref:.0f} s of training, ratio "
            f"{s_arm / s_ref:.2f})"
        )
        return Decision(check, _ratio_verdict(r, want_below=True), detail)
    raise ValueError(f"unknown test {t!r}")


def claim_verdict(decisions: list[Decision]) -> str:
    verdicts = [d.verdict for d in decisions]
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return NOT_SUPPORTED if NOT_SUPPORTED in verdicts else INCONCLUSIVE
