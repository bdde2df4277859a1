"""Time ``contrast-sr eval --model bicubic`` on a benchmark set (default Urban100 x4).

Usage::

    python benchmarks/bench_eval.py [--data DIR] [--scale 4] [--threads 2] [--cli]

Reports the in-process wall time of the whole protocol (read, crop, LR, bicubic SR, quantise,
PSNR/SSIM), its stages, the CPU time it used (all threads) and the machine's load average (on a
shared machine the wall time grows with the load; ``--threads 1`` CPU time is what one idle core
would need); with ``--cli`` also the wall time of the real command in a fresh process
(interpreter and torch start-up included). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def time_stages(paths, scale, sr_fn, make_lr, metrics) -> dict[str, float]:
    """Seconds per stage of the protocol, each run on its own over the whole set."""
    import torch

    from contrast_sr import evaluate as ev

    stages = {"read": 0.0, "make_lr": 0.0, "sr": 0.0, "metrics": 0.0}
    for path in paths:
        t0 = time.perf_counter()
        hr = ev._color_uint8(path)
        h, w = hr.shape[-2:]
        hr = hr[..., : h - h % scale, : w - w % scale]
        t1 = time.perf_counter()
        lr = make_lr(hr, scale)
        t2 = time.perf_counter()
        sr = sr_fn(lr.float().div(255.0)[None]).clamp(0, 1)
        sr = torch.round(sr[0] * 255.0).to(torch.uint8)
        t3 = time.perf_counter()
        for metric in metrics:
            metric(sr, hr, crop_border=scale)
        t4 = time.perf_counter()
        for name, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[name] += dt
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ROOT.parent / "shared" / "data" / "benchmark" / "Urban100" / "HR"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cli", action="store_true", help="also time the command end to end")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from contrast_sr import evaluate as ev
    from contrast_sr.data.degrade import bicubic_lr
    from contrast_sr.io import list_images
    from contrast_sr.metrics import calculate_psnr_y, calculate_ssim_y

    sr_fn = ev.bicubic_sr(args.scale)
    stages = time_stages(list_images(args.data), args.scale, sr_fn, bicubic_lr,
                         (calculate_psnr_y, calculate_ssim_y))  # fmt: skip

    start, cpu_start = time.perf_counter(), time.process_time()
    result = ev.evaluate(sr_fn, args.data, args.scale, model_name="bicubic", progress=False)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    report = {
        "dataset": result.dataset,
        "scale": args.scale,
        "images": len(result.images),
        "threads": args.threads,
        "psnr_y": round(result.psnr_y, 4),
        "ssim_y": round(result.ssim_y, 4),
        "seconds_in_process": round(total, 2),
        "cpu_seconds_in_process": round(cpu, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
    }
    if args.cli:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS=str(args.threads))
        cmd = [sys.executable, "-m", "contrast_sr", "eval", "--model", "bicubic"]
        cmd += ["--data", str(args.data), "--scale", str(args.scale), "--json", "--no-progress"]
        cmd += ["--device", "cpu"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        report["seconds_cli"] = round(time.perf_counter() - t, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
