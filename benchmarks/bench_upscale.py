"""Benchmark ``contrast-sr upscale`` on CPU: throughput and peak memory.

1. Throughput: output megapixels per second of the default model (or ``--model``) on a 256x256
   input, with MATLAB-bicubic upscaling timed in the same run as the baseline (ratio).
2. Peak memory: ``contrast-sr upscale`` of a 1920x1080 image with the default flags (memory-
   bounded ``--tile auto``), run as a child process; its peak resident set size (whole
   process: Python, torch, model, buffers) must stay under 4 GB.

    python benchmarks/bench_upscale.py [--model M] [--threads 2] [--reps 3] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
LIMIT_BYTES = 4 * 1024**3


def _timed(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def throughput(model_spec: str | None, reps: int, size: int = 256) -> dict:
    from contrast_sr.infer import Upscaler, get_model
    from contrast_sr.ops.imresize import imresize

    model = get_model(model_spec, None)
    scale = int(model.scale)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    upscaler = Upscaler(model, device="cpu")
    seconds = _timed(lambda: upscaler(x), reps)
    bicubic = _timed(lambda: imresize(x, scale=scale), reps)
    out_mp = (size * scale) ** 2 / 1e6
    return {
        "input": f"{size}x{size}",
        "scale": scale,
        "seconds": round(seconds, 4),
        "output_mp_per_s": round(out_mp / seconds, 4),
        "bicubic_output_mp_per_s": round(out_mp / bicubic, 2),
        "bicubic_speedup_over_model": round(seconds / bicubic, 1),
    }


def peak_memory(model_spec: str | None, threads: int) -> dict:
    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in_1920x1080.png"
        rng = np.random.default_rng(0)
        base = rng.integers(0, 256, (270, 480, 3), dtype=np.uint8)  # smooth-ish content
        Image.fromarray(base).resize((1920, 1080), Image.BICUBIC).save(src)
        out = Path(tmp) / "out.png"
        cmd = [sys.executable, "-m", "contrast_sr", "upscale", str(src), "-o", str(out)]
        cmd += ["--device", "cpu", "--json"]
        if model_spec:
            cmd += ["--model", model_spec]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"upscale failed: {proc.stderr.strip().splitlines()[-1:]}")
        report = json.loads(proc.stdout)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
        size = Image.open(out).size
    return {
        "input": "1920x1080",
        "output": f"{size[0]}x{size[1]}",
        "tile": report["outputs"][0]["tile"],
        "tiles": report["outputs"][0]["tiles"],
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(peak / 1024**3, 3),
        "under_4gb": peak < LIMIT_BYTES,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the bundled model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "torch": torch.__version__}
    result["throughput"] = throughput(args.model, args.reps)
    print(json.dumps(result["throughput"]), file=sys.stderr)
    if not args.skip_memory:
        result["memory"] = peak_memory(args.model, args.threads)
    print(json.dumps(result, indent=2))
    return 0 if args.skip_memory or result["memory"]["under_4gb"] else 1


if __name__ == "__main__":
    sys.exit(main())
