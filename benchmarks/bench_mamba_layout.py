"""The mamba-layout scans as a user's process runs them: ``selective_scan`` and
``selective_scan_fn`` (u, delta (b, dim, L)), forward + ``torch.autograd.grad``, against the
sequential reference ``selective_scan_ref`` in the same process.

    PYTHONPATH=src python benchmarks/bench_mamba_layout.py --threads 2 --rounds 3

A plain process: the script tunes nothing (unlike ``contrast-sr bench scan``); the library's
first fused kernel applies the ``lean`` malloc tuning, as in any user's process. Each round
times every call once after a warm-up (the reference twice in round one); the table shows the
minimum over rounds and the speed-up over the reference. Real A, groups 4, softplus and bias on.
"""

from __future__ import annotations

import argparse
import time

import torch

from contrast_sr.ops import selective_scan, selective_scan_fn, selective_scan_ref
from contrast_sr.utils.threads import set_threads


def make_inputs(b: int, dim: int, N: int, L: int, groups: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    u = torch.randn(b, dim, L, generator=g)
    delta = torch.randn(b, dim, L, generator=g) * 0.5
    A = -torch.arange(1, N + 1, dtype=torch.float32).repeat(dim, 1)
    B = torch.randn(b, groups, N, L, generator=g)
    C = torch.randn(b, groups, N, L, generator=g)
    D = torch.randn(dim, generator=g)
    bias = torch.randn(dim, generator=g) * 0.1
    return [t.requires_grad_() for t in (u, delta, A, B, C, D, bias)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="8,240,1,4096", help="batch,dim,N,L")
    parser.add_argument("--threads", default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    b, dim, N, L = (int(v) for v in args.shape.split(","))
    threads = set_threads(args.threads)
    leaves = make_inputs(b, dim, N, L)
    u, delta, A, B, C, D, bias = leaves
    gy = torch.randn(b, dim, L)
    calls = {
        "selective_scan_ref": lambda: selective_scan_ref(u, delta, A, B, C, D, None, bias, True),
        "selective_scan_fn": lambda: selective_scan_fn(u, delta, A, B, C, D, None, bias, True),
        "selective_scan": lambda: selective_scan(
            u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True
        ),
    }
    best = dict.fromkeys(calls, float("inf"))
    for name, call in calls.items():  # warm-up (numba compiles or loads its cache)
        if name != "selective_scan_ref":
            torch.autograd.grad(call(), leaves, gy)
    for r in range(args.rounds):
        for name, call in calls.items():
            if name == "selective_scan_ref" and r > 0:
                continue  # seconds per call; two timings in round one suffice
            for _ in range(2 if name == "selective_scan_ref" else 1):
                start = time.perf_counter()
                torch.autograd.grad(call(), leaves, gy)
                best[name] = min(best[name], time.perf_counter() - start)
    ref = best["selective_scan_ref"]
    print(f"shape batch={b} dim={dim} N={N} L={L}, {threads} threads, torch {torch.__version__}")
    print("\n| call | fwd+grad ms | vs reference |\n| --- | ---: | ---: |")
    for name, seconds in best.items():
        print(f"| `{name}` | {seconds * 1e3:.1f} | {ref / seconds:.1f}x |")


if __name__ == "__main__":
    main()
