"""One arm's training step time and peak memory, measured in a fresh process so that memory
freed by an earlier arm (kept by the allocator) cannot hide this one's peak.

    python -m contrast_sr.study.speed_probe '{"model": {...}, "batch": 8, "patch": 64, ...}'

prints one JSON object: times_s, peak_mem (bytes: CPU peak RSS increase, or CUDA max
allocated), mem_kind, recipe_times_s.
"""

from __future__ import annotations

import json
import sys


def probe(spec: dict) -> dict:
    import torch

    from contrast_sr.analysis.bench import bench_model
    from contrast_sr.models.registry import create_model

    torch.set_num_threads(int(spec.get("threads", 1)))
    model_spec = dict(spec["model"])
    model = create_model(model_spec.pop("name"), 4, **model_spec)
    # a small first step compiles JIT kernels (numba) and fills one-time caches, so neither
    # the compiler's memory nor its time counts as the arm's
    bench_model("arm", model, "train", 1, 16, warmup=1, repeat=1, flops=False)
    main = bench_model(
        "arm",
        model,
        "train",
        spec["batch"],
        spec["patch"],
        warmup=1,
        repeat=spec["repeat"],
        flops=False,
    )
    recipe = bench_model(
        "arm",
        model,
        "train",
        spec["recipe_batch"],
        spec["recipe_patch"],
        warmup=1,
        repeat=max(3, spec["repeat"]),
        flops=False,
    )
    return {
        "times_s": main.times_s,
        "peak_mem": main.peak_mem_bytes,
        "mem_kind": main.mem_kind,
        "recipe_times_s": recipe.times_s,
    }


if __name__ == "__main__":
    print(json.dumps(probe(json.loads(sys.argv[1]))))
