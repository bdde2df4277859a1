"""gpu_check: the measurements (scan kernels, training step and memory, upscaling throughput).

Every function takes ``budget`` (``budget.allows(seconds)``): a sub-measurement that would not
fit is recorded as ``{"skipped": "over budget"}`` instead of run.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from _gpu_kernels import KERNELS, scan_inputs, unavailable
from _gpu_setup import (
    CLAIM_SLACK,
    CLAIMS,
    TRAIN_MODELS,
    Setup,
    peak_memory_mib,
    reset_peak_memory,
    synchronize,
    time_ms,
)

SKIPPED = {"skipped": "over budget"}


def _time_scan(setup: Setup, path: str, args: list, kwargs: dict) -> dict:
    """Forward (no grad) and forward+backward times of one scan path."""
    from contrast_sr.ops import selective_scan_channels_last as scan

    def forward() -> None:
        with torch.no_grad():
            scan(*args, **kwargs, backend=path)

    leaves = [a.detach().requires_grad_(True) for a in args]
    grad_out = torch.ones_like(args[0])

    def forward_backward() -> None:
        scan(*leaves, **kwargs, backend=path).backward(grad_out)

    return {
        f"{path}_fwd": time_ms(forward, setup.device, setup.warmup, setup.reps),
        f"{path}_fwd_bwd": time_ms(forward_backward, setup.device, setup.warmup, setup.reps),
    }


def bench_scan(setup: Setup, budget) -> dict:
    """Scan forward and forward+backward, Triton vs the PyTorch path, at the training shape."""
    why = unavailable(KERNELS[0], setup)
    paths = ["torch"] if why else ["triton", "torch"]
    result: dict = {"shape_b_L_dim": list(setup.scan_shape), "triton": why or "available"}
    for n in setup.scan_states:
        for dtype in (torch.float32, torch.bfloat16):
            key = f"N={n} {str(dtype).removeprefix('torch.')}"
            if not budget.allows(10 if n == 1 else 20):
                result[key] = SKIPPED
                continue
            args, kwargs, _ = scan_inputs(setup, n, setup.scan_shape, dtype)
            row = {}
            for path in paths:
                row.update(_time_scan(setup, path, args, kwargs))
            if "triton" in paths:
                for mode in ("fwd", "fwd_bwd"):
                    t_torch = row[f"torch_{mode}"]["median_ms"]
                    row[f"speedup_{mode}"] = round(t_torch / row[f"triton_{mode}"]["median_ms"], 3)
            result[key] = row
    return result


def _train_step(setup: Setup, name: str, precision: str):
    model = setup.model(name)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    gen = torch.Generator().manual_seed(0)
    b, p, s = setup.batch, setup.patch, setup.scale
    lr = torch.rand(b, 3, p, p, generator=gen).to(setup.device)
    hr = torch.rand(b, 3, p * s, p * s, generator=gen).to(setup.device)
    enabled = precision == "bf16"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(setup.device.type, dtype=torch.bfloat16, enabled=enabled):
            out = model(lr)
        F.l1_loss(out.float(), hr).backward()
        opt.step()

    return model, step


def bench_train(setup: Setup, budget) -> dict:
    """Step time and peak memory per model and precision, ratios to hat_light, the seed's claims."""
    rows: dict = {}
    for precision in ("bf16", "fp32"):
        for name in TRAIN_MODELS:
            key = f"{name} {precision}"
            if not budget.allows(25):
                rows[key] = SKIPPED
                continue
            reset_peak_memory(setup.device)
            model, step = _train_step(setup, name, precision)
            for _ in range(setup.warmup):
                step()
            reset_peak_memory(setup.device)
            timing = time_ms(step, setup.device, 1 if setup.warmup else 0, setup.reps)
            rows[key] = {**timing, "peak_mib": peak_memory_mib(setup.device)}
            del model, step
            reset_peak_memory(setup.device)
    return {
        "setup": {"batch": setup.batch, "lr_patch": setup.patch, "scale": setup.scale},
        "steps": rows,
        "claims": claims(rows),
    }


def claims(rows: dict) -> dict:
    """Per hybrid and precision: speedup = t_hat / t - 1, memory saving = 1 - m / m_hat."""
    out = {}
    reference = TRAIN_MODELS[0]
    for precision in ("bf16", "fp32"):
        ref = rows.get(f"{reference} {precision}", {})
        for name in TRAIN_MODELS[1:]:
            row = rows.get(f"{name} {precision}", {})
            if "median_ms" not in row or "median_ms" not in ref:
                out[f"{name} {precision}"] = {"skipped": "step not measured"}
                continue
            speedup = ref["median_ms"] / row["median_ms"] - 1.0
            entry = {
                "step_speedup": round(speedup, 3),
                "speed_claim_holds": speedup >= CLAIMS["step_speedup"] - CLAIM_SLACK,
            }
            if row["peak_mib"] is not None and ref["peak_mib"]:
                saving = 1.0 - row["peak_mib"] / ref["peak_mib"]
                entry["memory_saving"] = round(saving, 3)
                entry["memory_claim_holds"] = saving >= CLAIMS["memory_saving"] - CLAIM_SLACK
            out[f"{name} {precision}"] = entry
    return out


def bench_inference(setup: Setup, budget) -> dict:
    """x4 upscaling throughput (output megapixels per second) through the Upscaler."""
    from contrast_sr.infer import Upscaler

    rows: dict = {}
    plans = [(setup.infer_sizes[0], None, p, TRAIN_MODELS) for p in ("fp32", "bf16")]
    plans += [(setup.infer_sizes[1], setup.tile, p, TRAIN_MODELS) for p in ("bf16", "fp32")]
    for (h, w), tile, precision, names in plans:
        for name in names:
            key = f"{name} {h}x{w} {precision}" + (f" tile {tile}" if tile else "")
            if not budget.allows(8 if tile is None else 30):
                rows[key] = SKIPPED
                continue
            model = setup.model(name).eval()
            overlap = min(32, tile // 4) if tile else 32  # the default, or below half a tiny tile
            up = Upscaler(
                model, device=setup.device, precision=precision, tile=tile, tile_overlap=overlap
            )
            image = torch.rand(1, 3, h, w)
            up(image[..., : min(h, tile or h), : min(w, tile or w)])  # warm-up at the tile size
            synchronize(setup.device)
            reps = 1 if tile else max(setup.reps // 3, 1)
            start = time.perf_counter()
            for _ in range(reps):
                up(image)
            seconds = (time.perf_counter() - start) / reps
            megapixels = h * w * setup.scale**2 / 1e6
            rows[key] = {
                "seconds": round(seconds, 4),
                "output_mp": round(megapixels, 3),
                "mp_per_s": round(megapixels / seconds, 3),
            }
            del model, up
            reset_peak_memory(setup.device)
    return rows
