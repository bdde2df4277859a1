"""What the claims measure on trained (or fresh) arms: step time and memory, LAM with a streak
number, per-layer feature norms, attention-output outliers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from contrast_sr.analysis.common import hr_and_lr, load_image
from contrast_sr.models.blocks.ocab import OCAB
from contrast_sr.models.blocks.window_attention import WindowAttention


def speed(models: dict[str, dict], size: dict[str, int], passes: int = 2) -> dict[str, dict]:
    """Training step time (min over repeats and ``passes`` interleaved passes) and peak memory
    of each model spec ``{name: variant, **overrides}`` at batch ``size["batch"]`` x LR
    ``size["patch"]``, and the step time at the training recipe's size (``recipe_batch`` x
    ``recipe_patch``: the seconds axis of the curves). Each measurement runs in a fresh process
    (:mod:`contrast_sr.study.speed_probe`) with this process's torch thread count."""
    import json
    import subprocess
    import sys

    threads = torch.get_num_threads()
    out: dict[str, dict] = {name: {"times_s": [], "recipe_times_s": []} for name in models}
    for _ in range(passes):
        for name, model in models.items():
            spec = json.dumps({"model": model, "threads": threads, **size})
            done = subprocess.run(
                [sys.executable, "-m", "contrast_sr.study.speed_probe", spec],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(done.stdout.strip().splitlines()[-1])
            o = out[name]
            o["times_s"] += r["times_s"]
            o["recipe_times_s"] += r["recipe_times_s"]
            if r["peak_mem"] is not None:
                o["peak_mem"] = min(o.get("peak_mem", r["peak_mem"]), r["peak_mem"])
            o["mem_kind"] = r["mem_kind"]
    for o in out.values():
        o["step_s"] = min(o["times_s"])
        o["recipe_step_s"] = min(o["recipe_times_s"])
    return out


def _crop_lr(image: str | Path, x: int, y: int, lr_size: int, scale: int = 4) -> torch.Tensor:
    """An LR crop (1, 3, lr_size, lr_size) made from the HR crop at (x, y) of side lr·scale."""
    hr = load_image(image)
    side = lr_size * scale
    hr = hr[:, y : y + side, x : x + side]
    return hr_and_lr(hr, scale)[1]


def streak_ratio(amap: torch.Tensor, center: tuple[float, float], band: float) -> float:
    """Attribution density on the target's rows and columns over that elsewhere at equal
    distance: pixels are binned into rings of Euclidean distance from ``center`` (y, x); in each
    ring the "axis" pixels lie within ``band`` of the centre row or column. Returns
    sum over rings of the axis mean / sum of the off-axis mean (1: isotropic, > 1: streaks),
    over rings outside the target (distance > 2·band)."""
    h, w = amap.shape
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    dy, dx = (yy - center[0]).abs(), (xx - center[1]).abs()
    ring = torch.sqrt(dy**2 + dx**2).round().long()
    axis = (dy <= band) | (dx <= band)
    on, off = 0.0, 0.0
    for r in range(int(2 * band) + 1, int(ring.max()) + 1):
        in_ring = ring == r
        a, o = in_ring & axis, in_ring & ~axis
        if a.any() and o.any():
            on += float(amap[a].mean())
            off += float(amap[o].mean())
    return on / off if off > 0 else float("nan")


def lam(model: nn.Module, cfg: dict[str, Any], scale: int = 4) -> dict[str, Any]:
    """LAM of ``model`` on ``cfg["crops"]`` of ``cfg["image"]``: DI, streak ratio and the maps."""
    from contrast_sr.analysis.lam import local_attribution_map

    size, box = int(cfg["lr_size"]), int(cfg["box"])
    crops, maps, dis, streaks = [], [], [], []
    for x, y in cfg["crops"]:
        lr = _crop_lr(cfg["image"], x, y, size, scale)
        sr_side = size * scale
        top = (sr_side - box) // 2
        result = local_attribution_map(model, lr, (top, top, box), steps=int(cfg["steps"]))
        center = ((top + box / 2) / scale, (top + box / 2) / scale)
        streaks.append(streak_ratio(result.map, center, band=box / scale / 2 + 0.5))
        dis.append(result.di)
        maps.append(result.map.numpy().astype(np.float16))
        crops.append(lr[0].numpy().astype(np.float16))
    return {
        "di": float(np.mean(dis)),
        "streak": float(np.mean(streaks)),
        "di_per_crop": dis,
        "streak_per_crop": streaks,
        "arrays": {"maps": np.stack(maps), "crops": np.stack(crops)},
    }


def features(model: nn.Module, cfg: dict[str, Any], scale: int = 4) -> dict[str, Any]:
    """Per-block L2 feature-norm maps on a centre LR crop: growth (last / first mean norm) and
    spike (largest max/mean over the body's blocks); the final norm's own output is left out."""
    from contrast_sr.analysis.features import feature_norms

    image = load_image(cfg["image"])
    side = int(cfg["lr_size"]) * scale
    y0, x0 = (image.shape[1] - side) // 2, (image.shape[2] - side) // 2
    lr = _crop_lr(cfg["image"], max(0, x0), max(0, y0), int(cfg["lr_size"]), scale)
    with torch.no_grad():
        layers = [n for n in feature_norms(model, lr, level="block") if n.name != "norm"]
    means = [n.mean for n in layers]
    spikes = [n.max / n.mean if n.mean > 0 else float("nan") for n in layers]
    return {
        "layers": [{"name": n.name, "max": n.max, "mean": n.mean} for n in layers],
        "growth": means[-1] / means[0],
        "spike": max(spikes),
        "last_mean": means[-1],
        "arrays": {"maps": np.stack([n.map.numpy().astype(np.float16) for n in layers])},
    }


def _kurtosis(x: torch.Tensor) -> float:
    x = x.double().flatten()
    c = x - x.mean()
    var = (c**2).mean()
    return float((c**4).mean() / (var**2)) if var > 0 else float("nan")


def attention_outliers(model: nn.Module, cfg: dict[str, Any], scale: int = 4) -> dict[str, Any]:
    """Largest |activation| and kurtosis of each attention's output (the input of its output
    projection, softmax·V), on a centre LR crop; means over the attention modules."""
    modules = [m for m in model.modules() if isinstance(m, (OCAB, WindowAttention))]
    seen: list[torch.Tensor] = []
    hooks = [
        m.proj.register_forward_pre_hook(lambda _m, a: seen.append(a[0].detach())) for m in modules
    ]
    image = load_image(cfg["image"])
    side = int(cfg["lr_size"]) * scale
    y0, x0 = (image.shape[1] - side) // 2, (image.shape[2] - side) // 2
    lr = _crop_lr(cfg["image"], max(0, x0), max(0, y0), int(cfg["lr_size"]), scale)
    try:
        with torch.no_grad():
            model(lr)
    finally:
        for h in hooks:
            h.remove()
    maxima = [float(t.abs().max()) for t in seen]
    kurt = [_kurtosis(t) for t in seen]
    return {
        "max": float(np.mean(maxima)),
        "kurtosis": float(np.mean(kurt)),
        "per_module": [{"max": m, "kurtosis": k} for m, k in zip(maxima, kurt, strict=True)],
    }
