"""What the thread count does on a busy machine: contrast_tiny x4 with 1, 2, ... threads and
``--threads auto``, each with 0..B other processes keeping a core busy (a pure-Python loop each).

    PYTHONPATH=src python benchmarks/bench_threads_load.py --size 128 --busy 0 1 --repeat 3

Each (busy, threads) cell is the minimum over ``--repeat`` forward passes (after a warm-up) in a
fresh process, so numba and torch thread pools start as a user's would. Prints a Markdown table
and, with --json, one JSON object. The machine should otherwise be idle.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

CHILD = """
import time, torch
from contrast_sr.models.registry import create_model
from contrast_sr.utils.malloc import tune_malloc
from contrast_sr.utils.threads import set_threads
tune_malloc()
n = set_threads({threads!r})
m = create_model("contrast_tiny", scale=4).eval()
x = torch.rand(1, 3, {size}, {size})
with torch.no_grad():
    m(x)
    times = []
    for _ in range({repeat}):
        t = time.perf_counter(); m(x); times.append(time.perf_counter() - t)
print(n, min(times))
"""


def _spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def _run(threads: str, size: int, repeat: int) -> tuple[int, float]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # auto decides
    code = CHILD.format(threads=threads, size=size, repeat=repeat)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1])
    n, best = out.stdout.split()
    return int(n), float(best)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="LR height = width")
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="busy processes")
    parser.add_argument("--threads", nargs="+", default=["1", "2", "auto"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for busy in args.busy:
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for p in spinners:
            p.start()
        time.sleep(1.5 if busy else 0)  # let the load show in /proc/stat
        try:
            for threads in args.threads:
                n, best = _run(threads, args.size, args.repeat)
                rows.append({"busy": busy, "threads": threads, "used": n, "ms": best * 1e3})
                print(f"busy {busy} threads {threads} ({n}): {best * 1e3:.0f} ms", file=sys.stderr)
        finally:
            stop.set()
            for p in spinners:
                p.join()
    if args.json:
        print(json.dumps({"size": args.size, "cpus": os.cpu_count(), "rows": rows}))
        return 0
    print("| busy processes | --threads | threads used | ms |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['busy']} | {r['threads']} | {r['used']} | {r['ms']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
