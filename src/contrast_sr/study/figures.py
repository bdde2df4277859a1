"""The report's PNG figures (matplotlib, Agg): curves, LAM grid, feature norms, ratio plot."""

from __future__ import annotations

from pathlib import Path
from statistics import mean

import numpy as np

from contrast_sr.errors import ContrastError
from contrast_sr.study.results import ClaimResults
from contrast_sr.utils.fs import atomic_save


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ContrastError(
            "study report", "matplotlib is not installed (pip install 'contrast-sr[plot]')"
        ) from None
    return plt


def _save(fig, path: Path) -> None:
    atomic_save(path, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))
    _plt().close(fig)


def _labels(r: ClaimResults) -> dict[str, str]:
    return {a["name"]: a["label"] for a in r.arms}


def curves(r: ClaimResults, path: Path) -> None:
    """Set5 Y-PSNR against iterations (whole run, then zoomed on the last three quarters) and
    against training seconds (zoomed): seed mean, min-max band. Seconds = iterations x the
    arm's measured step time at the recipe's size."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    step = r.single["recipe_step_s"]
    start = int(r.study.get("iters", 0)) // 4
    zoom_values: list[float] = []
    for arm, label in _labels(r).items():
        seeds = list(r.curves[arm].values())
        m = r.mean_curve(arm)
        if not m:
            continue
        its = np.array([i for i, _ in m], dtype=float)
        lo = [min(dict(c)[i] for c in seeds) for i, _ in m]
        hi = [max(dict(c)[i] for c in seeds) for i, _ in m]
        zoom_values += [v for (i, _), v in zip(m, lo, strict=True) if i >= start]
        zoom_values += [v for (i, _), v in zip(m, hi, strict=True) if i >= start]
        for ax, x in ((axes[0], its), (axes[1], its), (axes[2], its * step[arm])):
            (line,) = ax.plot(x, [v for _, v in m], marker="o", ms=3, label=label)
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)
    axes[0].set_xlabel("training iteration")
    axes[1].set_xlabel(f"training iteration (zoom: from {start})")
    axes[2].set_xlabel("training time (s, from the measured step time, 1 thread; zoom)")
    if zoom_values:
        low, high = min(zoom_values), max(zoom_values)
        pad = max(0.02, 0.1 * (high - low))
        for ax in axes[1:]:
            ax.set_ylim(low - pad, high + pad)
        axes[1].set_xlim(left=start * 0.95)
        axes[2].set_xlim(left=start * min(step.values()) * 0.95)
    for ax in axes:
        ax.set_ylabel("Set5 x4 Y-PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{r.name}: validation curves (seed mean; band: min-max over seeds)")
    _save(fig, path)


def lam_grid(r: ClaimResults, path: Path) -> None:
    """Rows: arms (seed 0); columns: crops. LAM map over the LR crop, target box in cyan."""
    plt = _plt()
    arrays = r.arrays("lam")
    arms = list(_labels(r).items())
    seed = str(r.study["seeds"][0])
    n_crops = arrays[f"{arms[0][0]}/s{seed}/maps"].shape[0]
    fig, axes = plt.subplots(
        len(arms), n_crops, figsize=(3 * n_crops, 3.1 * len(arms)), squeeze=False
    )
    lam = r.measure["lam"]
    for row, (arm, label) in enumerate(arms):
        maps, crops = arrays[f"{arm}/s{seed}/maps"], arrays[f"{arm}/s{seed}/crops"]
        for col in range(n_crops):
            ax = axes[row][col]
            gray = crops[col].mean(0)
            ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
            ax.imshow(maps[col] ** 0.5, cmap="inferno", alpha=0.65, vmin=0, vmax=1)
            h = gray.shape[0]
            ax.plot([h / 2], [h / 2], "c+", ms=10)
            di = lam[arm][seed]["di_per_crop"][col]
            st = lam[arm][seed]["streak_per_crop"][col]
            ax.set_title(f"{label}\nDI {di:.1f}, streak {st:.2f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("LAM (sqrt of |attribution|, LR pixels; + = target) — Urban100 img_004 crops")
    _save(fig, path)


def feature_norms(r: ClaimResults, path: Path) -> None:
    """Left: per-block mean and max L2 feature norm per arm (seed 0); right: the last block's
    norm map of each arm."""
    plt = _plt()
    arms = list(_labels(r).items())
    seed = str(r.study["seeds"][0])
    arrays = r.arrays("features")
    fig = plt.figure(figsize=(4 + 3 * len(arms), 3.6))
    grid = fig.add_gridspec(1, 1 + len(arms), width_ratios=[2.2] + [1] * len(arms))
    ax = fig.add_subplot(grid[0])
    for arm, label in arms:
        layers = r.measure["features"][arm][seed]["layers"]
        x = range(1, len(layers) + 1)
        (line,) = ax.plot(x, [lay["mean"] for lay in layers], marker="o", label=f"{label} mean")
        ax.plot(
            x, [lay["max"] for lay in layers], ls="--", color=line.get_color(), label=f"{label} max"
        )
    ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("body block (in order)")
    ax.set_ylabel("L2 norm of the features (per pixel)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    for i, (arm, label) in enumerate(arms, start=1):
        maps = arrays[f"{arm}/s{seed}/maps"]
        axm = fig.add_subplot(grid[i])
        im = axm.imshow(maps[-1], cmap="inferno")
        axm.set_title(f"{label}\nlast block", fontsize=8)
        axm.set_xticks([])
        axm.set_yticks([])
        fig.colorbar(im, ax=axm, fraction=0.046)
    fig.suptitle("Per-layer feature norms (Set14 zebra, centre crop)")
    _save(fig, path)


def ratio_plot(r: ClaimResults, x_axis: dict[str, float], path: Path) -> None:
    """PSNR (mean over sets; seed min-max bars) and step time against the Mamba:attention ratio."""
    plt = _plt()
    arms = [a for a in _labels(r) if a in x_axis]
    arms.sort(key=lambda a: x_axis[a])
    xs = [x_axis[a] for a in arms]
    psnr = r.per_seed["psnr"]
    ys = [mean(psnr[a]) for a in arms]
    err = [
        [ys[i] - min(psnr[a]) for i, a in enumerate(arms)],
        [max(psnr[a]) - ys[i] for i, a in enumerate(arms)],
    ]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.errorbar(xs, ys, yerr=err, marker="o", capsize=4, label="Y-PSNR (mean of the sets)")
    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{x:g}:1" for x in xs])
    ax.set_xlabel("SS2D : window-attention blocks")
    ax.set_ylabel("Y-PSNR x4 (dB, mean of Set5/Set14/Urban100)")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(
        xs, [r.single["step_s"][a] * 1000 for a in arms], "s--", color="gray", label="step time"
    )
    ax2.set_ylabel("training step (ms, batch 8, LR 64², 1 thread)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(
        lines[0] + lines2[0],
        lines[1] + lines2[1],
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.15),
        ncol=2,
    )
    fig.suptitle(f"{r.name}: Mamba to attention ratio (equal parameters)")
    _save(fig, path)
