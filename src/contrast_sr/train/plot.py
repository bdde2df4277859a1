"""Training curves of one or more runs on one figure: loss (left) and validation PSNR (right)."""

from __future__ import annotations

import json
from pathlib import Path

from contrast_sr.errors import ContrastError, InputError, UsageError
from contrast_sr.utils.fs import atomic_save


def read_metrics(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """``(train records, validation records)`` from ``run_dir/metrics.jsonl``."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise InputError(f"{run_dir}", "no metrics.jsonl (is it a training output folder?)")
    train, val = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path}", f"line {n} is not JSON") from None
        (val if "val" in rec else train).append(rec)
    return train, val


def plot_runs(
    runs: list[str], output: str | Path, val_set: str | None = None, smooth: int = 1
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ContrastError(
            "plot", "matplotlib is not installed (pip install 'contrast-sr[plot]')"
        ) from None
    output = Path(output)
    if output.suffix.lower() != ".png":
        raise UsageError(f"-o {output}", "the figure is written as PNG; use a .png name")
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(12, 4.5))
    any_val = False
    for run in runs:
        train, val = read_metrics(run)
        label = Path(run).resolve().name
        if train:
            its = [r["iter"] for r in train]
            loss = [r["loss"] for r in train]
            if smooth > 1:
                loss = [
                    sum(loss[max(0, i - smooth + 1) : i + 1])
                    / len(loss[max(0, i - smooth + 1) : i + 1])
                    for i in range(len(loss))
                ]
            ax_loss.plot(its, loss, label=label)
        if val:
            name = val_set or next(iter(val[0]["val"]))
            pts = [(r["iter"], r["val"][name]["psnr"]) for r in val if name in r["val"]]
            if pts:
                any_val = True
                ax_psnr.plot(*zip(*pts, strict=True), marker="o", ms=3, label=f"{label} ({name})")
    ax_loss.set(xlabel="iteration", ylabel="training loss", title="loss")
    ax_loss.set_yscale("log")
    ax_psnr.set(xlabel="iteration", ylabel="PSNR (dB, Y)", title="validation PSNR")
    for ax in (ax_loss, ax_psnr):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if not any_val:
        ax_psnr.text(0.5, 0.5, "no validation records", ha="center", transform=ax_psnr.transAxes)
    fig.tight_layout()
    atomic_save(output, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
