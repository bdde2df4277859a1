"""Training throughput on this machine: models and data pipeline, measured in the same run.

    python benchmarks/bench_train.py [--models contrast_light hat_light] [--batch 8] [--patch 48]
                                     [--scale 4] [--iters 5] [--workers 2] [--json]

Reports training iterations/s (forward + L1 loss + backward + Adam step, fp32) of each model at
the same batch and LR patch (timed iterations alternate between the models), the ratio to the
first model, and how many batches/s the data
pipeline (HR-only T91 patches with on-the-fly MATLAB-bicubic LR, the DataLoader of
``contrast-sr train``) delivers with ``--workers`` worker processes, so you can see that data
loading is not the bottleneck (``data_headroom`` = pipeline batches/s / fastest model it/s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from contrast_sr import create_model  # noqa: E402
from contrast_sr.data.paired import PairedPatches, TrainSampler, seed_worker  # noqa: E402


def make_step(name: str, scale: int, batch: int, patch: int):
    """A closure running one training iteration of ``name`` on fixed random data."""
    torch.manual_seed(0)
    model = create_model(name, scale=scale).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.99))
    lr = torch.rand(batch, 3, patch, patch)
    hr = torch.rand(batch, 3, patch * scale, patch * scale)

    def step() -> None:
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench_models(names: list[str], scale: int, batch: int, patch: int, iters: int) -> dict:
    """it/s of each model; timed iterations alternate between the models (A B A B ...) so that
    load changes on a shared machine hit them alike."""
    steps = {n: make_step(n, scale, batch, patch) for n in names}
    for step in steps.values():
        step()  # warm-up (allocations, kernel selection)
    spent = dict.fromkeys(names, 0.0)
    for _ in range(iters):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            spent[name] += time.perf_counter() - t0
    return {n: iters / spent[n] for n in names}


def bench_data(hr_dir: Path, scale: int, batch: int, patch: int, workers: int, n: int) -> float:
    ds = PairedPatches(hr_dir, scale, patch, seed=0, cache=True)
    loader = DataLoader(
        ds,
        batch_size=batch,
        sampler=TrainSampler(0, n + 2, batch),
        num_workers=workers,
        worker_init_fn=seed_worker,
        prefetch_factor=4 if workers else None,
    )
    it = iter(loader)
    next(it), next(it)  # start-up of the workers
    t0 = time.perf_counter()
    count = sum(1 for _ in it)
    return count / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["contrast_light", "hat_light"])
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=48, help="LR patch side")
    p.add_argument("--iters", type=int, default=5, help="timed training iterations per model")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data-batches", type=int, default=40)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--hr-dir",
        default=os.environ.get("CONTRAST_SR_DATA", str(REPO.parent / "shared" / "data"))
        + "/train/T91",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    result = {
        "batch": args.batch,
        "lr_patch": args.patch,
        "scale": args.scale,
        "threads": torch.get_num_threads(),
        "models": {},
    }
    speeds = bench_models(args.models, args.scale, args.batch, args.patch, args.iters)
    for name, ips in speeds.items():
        result["models"][name] = {"it_per_s": ips, "samples_per_s": ips * args.batch}
        print(f"{name:>16}: {ips:.4g} it/s ({ips * args.batch:.4g} patches/s)", file=sys.stderr)
    first = result["models"][args.models[0]]["it_per_s"]
    for name in args.models:
        result["models"][name]["speed_vs_first"] = result["models"][name]["it_per_s"] / first
    data = bench_data(
        Path(args.hr_dir), args.scale, args.batch, args.patch, args.workers, args.data_batches
    )
    fastest = max(m["it_per_s"] for m in result["models"].values())
    result["data"] = {
        "workers": args.workers,
        "batches_per_s": data,
        "data_headroom": data / fastest,
    }
    print(
        f"data pipeline ({args.workers} workers): {data:.1f} batches/s = "
        f"{data / fastest:.1f}x the fastest model's it/s",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
