"""benchmarks/gpu_check.py --dry-run: the GPU check's own code, end to end on CPU (~20 s)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STATUSES = {"pass", "not available", "measured", "skipped"}


def _item_names() -> list[str]:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.ESTIMATES_S)


def test_dry_run_writes_both_reports_with_every_item(tmp_path):
    env = {
        **os.environ,
        "TRITON_INTERPRET": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    out = tmp_path / "gpu"
    cmd = [sys.executable, str(SCRIPT), "--dry-run", "--output", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    markdown = (out / "gpu_check.md").read_text()
    names = _item_names()
    assert list(report["results"]) == names
    for name in names:
        result = report["results"][name]
        assert result["status"] in STATUSES, (name, result)
        assert f"| {name} |" in markdown
    assert report["meta"]["dry_run"] is True
    assert "## training step" in markdown and "## attention: SDPA kernels" in markdown
    claims = report["results"]["bench_train"]["details"]["claims"]
    assert set(claims) == {
        f"{m} {p}" for m in ("baseline", "contrast_light") for p in ("bf16", "fp32")
    }
    assert report["results"]["torch_compile"]["status"] == "pass"  # ran in its child process
    assert not list(out.glob("child_*"))
