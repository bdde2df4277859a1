"""Model benchmark extras: achieved GFLOP/s against the measured matmul peak, time vs size."""

from __future__ import annotations

import json

import pytest

from contrast_sr.analysis.bench import (
    BenchResult,
    format_growth,
    matmul_peak_gflops,
    size_growth,
    thread_scaling,
)
from contrast_sr.cli import main


def _row(model: str, size: int, time_s: float) -> BenchResult:
    out_px = (4 * size) ** 2
    return BenchResult(model, 1, None, None, time_s, [time_s], 1 / time_s, out_px / time_s / 1e6,
                       None, "none", size=size)  # fmt: skip


def test_size_growth_compares_time_with_pixels():
    rows = size_growth([_row("a", 128, 0.2), _row("a", 64, 0.1), _row("b", 64, 1.0)])
    assert [(r["model"], r["size"]) for r in rows] == [("a", 64), ("a", 128), ("b", 64)]
    assert "growth" not in rows[0]
    assert rows[1]["time_ratio"] == pytest.approx(2.0)
    assert rows[1]["pixel_ratio"] == pytest.approx(4.0)
    assert rows[1]["growth"] == pytest.approx(0.5)
    assert rows[0]["ms_per_mp"] == pytest.approx(100.0 / (256**2 / 1e6))
    assert format_growth(rows).count("\n") == 4


def test_matmul_peak_is_a_rate():
    assert 0.1 < matmul_peak_gflops(n=128, repeat=2) < 1e5


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_scaling_compares_with_one_thread_and_keeps_the_count(threads):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        scaling = thread_scaling(repeat=1)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    if threads == 1:
        assert scaling == 1.0
    else:  # a rate ratio: positive, and no more than the threads (with some timing slack)
        assert 0 < scaling < 1.5 * threads


def test_cli_sizes_report_growth_and_peak_share(capsys):
    argv = ["bench", "--models", "bicubic", "--sizes", "8,16", "--repeat", "1", "--warmup", "0"]
    code = main([*argv, "--device", "cpu", "--no-isolate", "--threads", "1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sizes"] == [8, 16] and report["threads"] == 1
    assert report["matmul_peak_gflops"] > 0 and report["busy_cores_at_start"] >= 0
    assert report["thread_scaling"] == 1.0  # one thread
    assert [r["size"] for r in report["results"]] == [8, 16]
    assert [r["size"] for r in report["size_growth"]] == [8, 16]
    assert "growth" in report["size_growth"][1]
    assert main(["bench", "--sizes", "8,x", "--no-isolate"]) == 2


_PEAK = """
import json, sys
import contrast_sr
from contrast_sr.analysis.bench import bench_model
from contrast_sr.utils.malloc import tune_malloc

tune_malloc("fast")  # freed blocks stay in the heap, as in every computing command
model = contrast_sr.create_model("contrast_tiny", scale=4)
r = bench_model("tiny", model, size=48, warmup=1, repeat=1, flops=sys.argv[1] == "1")
print(json.dumps(r.peak_mem_bytes))
"""


def test_cpu_peak_memory_is_not_hidden_by_the_flop_count():
    """The FLOP-counting forward runs after the memory measurement: run before it, its freed
    buffers (kept by the tuned heap) served the timed steps and the RSS increase read ~0."""
    import subprocess
    import sys

    peaks = []
    for flops in ("1", "0"):
        cmd = [sys.executable, "-c", _PEAK, flops]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        peaks.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if None in peaks:
        pytest.skip("peak RSS is not readable here")
    with_flops, without = peaks
    assert without > 8 * 2**20
    assert with_flops > 0.5 * without
