"""One training step (forward + L1 loss + backward + Adam) per model, CPU, same process.

Reports the minimum step time over repetitions (other jobs may share the CPU, so the minimum is
the least disturbed figure) and each model's ratio to ``hat_light`` measured in the same run.
Rounds are interleaved (A B C D, A B C D, ...) so that load changes hit every model alike.

    python benchmarks/bench_train_step.py [--models ...] [--batch 4] [--patch 48] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from contrast_sr.models import count_parameters, create_model

DEFAULT_MODELS = ["hat_light", "baseline", "baseline_no_pe_no_cab", "contrast_light"]


def make_step(name: str, batch: int, patch: int, scale: int):
    torch.manual_seed(0)
    model = create_model(name, scale).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    lr = torch.rand(batch, 3, patch, patch)
    hr = torch.rand(batch, 3, patch * scale, patch * scale)

    def step() -> float:
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        loss.backward()
        opt.step()
        return time.perf_counter() - start

    return model, step


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--reference", default="hat_light")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = list(dict.fromkeys([args.reference, *args.models]))
    load_before = os.getloadavg()[0]
    steps, params = {}, {}
    for name in names:
        model, step = make_step(name, args.batch, args.patch, args.scale)
        params[name] = count_parameters(model)
        step()  # warm-up
        steps[name] = step
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.reps):
        for name in names:
            times[name].append(steps[name]())
    load_after = os.getloadavg()[0]
    best = {n: min(t) for n, t in times.items()}
    ref = best[args.reference]
    result = {
        "setup": {
            "batch": args.batch,
            "lr_patch": args.patch,
            "scale": args.scale,
            "reps": args.reps,
            "threads": args.threads,
            "torch": torch.__version__,
            "loadavg_1min": [round(load_before, 2), round(load_after, 2)],
        },
        "models": {
            n: {
                "params": params[n],
                "step_s_min": round(best[n], 4),
                "step_s_median": round(sorted(times[n])[len(times[n]) // 2], 4),
                f"time_vs_{args.reference}": round(best[n] / ref, 3),
            }
            for n in names
        },
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"train step, batch {args.batch}, LR {args.patch}x{args.patch}, x{args.scale}, CPU, "
            f"load average {load_before:.1f} -> {load_after:.1f}"
        )
        print(f"{'model':<24}{'params':>10}{'min s':>9}{'median s':>10}  vs {args.reference}")
        for n, r in result["models"].items():
            ratio = r[f"time_vs_{args.reference}"]
            t_min, t_med = r["step_s_min"], r["step_s_median"]
            print(f"{n:<24}{r['params']:>10,}{t_min:>9.3f}{t_med:>10.3f}  {ratio:.2f}x")
    return result


if __name__ == "__main__":
    main()
