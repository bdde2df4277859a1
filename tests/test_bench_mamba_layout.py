"""benchmarks/bench_mamba_layout.py runs as the README shows, on a tiny shape (~5 s)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_prints_every_call_with_its_speed_up_over_the_reference():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    script = ROOT / "benchmarks" / "bench_mamba_layout.py"
    args = ["--shape", "2,32,1,64", "--threads", "1", "--rounds", "1"]
    done = subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "batch=2 dim=32 N=1 L=64, 1 threads" in done.stdout
    rows = dict(re.findall(r"\| `(\w+)` \| [\d.]+ \| ([\d.]+)x \|", done.stdout))
    assert set(rows) == {"selective_scan_ref", "selective_scan_fn", "selective_scan"}
    assert rows["selective_scan_ref"] == "1.0"
    assert all(float(v) > 0 for v in rows.values())
