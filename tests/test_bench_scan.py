"""`contrast-sr bench scan`: runs, prints one JSON object, rejects bad options in one line."""

from __future__ import annotations

import json
import subprocess
import sys

from contrast_sr.analysis.bench_scan import floor_bytes, format_table, run_benchmark
from contrast_sr.cli import main
from tests.conftest import cli_env


def test_run_benchmark_small():
    result = run_benchmark(
        [(1, 8, 1, 64)], ["reference", "torch"], groups=4, reps=1, ref_reps=1, bandwidth_mb=8
    )
    assert result["copy_bandwidth_gbs"] > 0
    assert result["thread_scaling"] > 0
    rows = {r["backend"]: r for r in result["rows"]}
    assert rows["reference"]["fwd_speedup"] == 1.0
    assert rows["torch"]["fwd_ms"] > 0 and rows["torch"]["fwdbwd_ms"] > 0
    assert rows["torch"]["fwdbwd_speedup"] > 0
    assert "| 1, 8, 1, 64 | torch |" in format_table(result)
    assert f"(matmul {result['thread_scaling']:.2f}x one thread's)" in format_table(result)
    assert floor_bytes(1, 8, 1, 64, 4, True) == 2 * floor_bytes(1, 8, 1, 64, 4, False)


def test_cli_json():
    cmd = [sys.executable, "-m", "contrast_sr", "bench", "scan", "--shape", "1,8,2,40"]
    cmd += ["--reps", "1", "--ref-reps", "1", "--json", "--mode", "fwd", "--backends", "torch"]
    cmd += ["--bandwidth-mb", "8"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [r["backend"] for r in result["rows"]] == ["torch"]
    assert result["rows"][0]["fwdbwd_ms"] is None


def test_cli_bad_options(capsys):
    for extra in (["--shape", "1,2,3"], ["--backends", "nope"], ["--shape", "1,6,1,8"]):
        assert main(["bench", "scan", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert main(["bench", "--batch", "0"]) == 2  # bare `bench` is the model benchmark


def test_ss2d_row_for_square_maps_only():
    import pytest

    from contrast_sr.analysis import bench_scan

    pytest.importorskip("numba")
    result = run_benchmark(
        [(1, 8, 1, 64), (1, 8, 1, 40)], ["ss2d"], groups=4, reps=1, ref_reps=1, bandwidth_mb=8
    )
    rows = result["rows"]
    assert [(r["shape"][3], r["backend"]) for r in rows] == [(64, "ss2d")]  # 40 is no square
    assert rows[0]["fwd_ms"] > 0 and rows[0]["fwdbwd_ms"] > 0
    assert bench_scan.ss2d_floor_bytes(1, 8, 64, True) == 2 * 64 * 2 * 4 * 2
    assert "ss2d" in bench_scan.default_backends()


def test_repetitions_are_taken_in_turn():
    from contrast_sr.analysis.bench_scan import time_interleaved

    order: list[str] = []
    calls = {
        name: (lambda name=name: order.append(name), reps, warmup)
        for name, reps, warmup in (("fast", 3, 1), ("reference", 1, 0), ("other", 2, 2))
    }
    timings = time_interleaved(calls)
    warm = ["fast", "other", "other"]
    assert order == [*warm, "fast", "reference", "other", "fast", "other", "fast"]
    assert {name: t.reps for name, t in timings.items()} == {"fast": 3, "reference": 1, "other": 2}
    assert all(t.ms >= 0 and 0 <= t.clean <= t.reps for t in timings.values())
    assert time_interleaved({}) == {}
