"""ONNX export (chunked scan swapped in, dynamic H/W) round trip with onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_models import SCAN_MODULE, TinyScanSR, TinySR

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install .[onnx])")
pytest.importorskip("onnx", reason="onnx not installed (pip install .[onnx])")

from contrast_sr.export.onnx import export_onnx  # noqa: E402
from contrast_sr.export.traceable import chunked_scan  # noqa: E402


def _roundtrip(model, path, h, w):
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"lr": x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    return float(np.abs(out - ref).max())


def test_chunked_scan_context_routes_scans_through_chunked(monkeypatch):
    from contrast_sr.ops.scan import chunked as scan_chunked

    calls = []
    real = scan_chunked.selective_scan_chunked

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(scan_chunked, "selective_scan_chunked", spy)
    original = SCAN_MODULE.selective_scan_channels_last
    model = TinyScanSR().eval()
    x = torch.rand(1, 3, 7, 6)
    with torch.no_grad():
        ref = model(x)
        assert not calls
        with chunked_scan():
            swapped = model(x)
    assert calls == [(1, 42, 4)]
    assert SCAN_MODULE.selective_scan_channels_last is original
    assert torch.allclose(swapped, ref, atol=1e-5)


def test_onnx_export_scan_model_dynamic(tmp_path):
    model = TinyScanSR().eval()
    path = tmp_path / "tiny.onnx"
    report = export_onnx(model, path, size=12)
    assert path.is_file() and report.dynamic
    assert report.max_abs_err <= 1e-4
    assert _roundtrip(model, path, 9, 21) <= 1e-4  # a size it was not traced or checked at


def test_onnx_export_static_and_failed_check_keeps_no_file(tmp_path):
    model = TinySR().eval()
    report = export_onnx(model, tmp_path / "a.onnx", size=8, dynamic=False)
    assert not report.dynamic and report.checked_sizes == [[8, 8]]
    from contrast_sr.errors import ContrastError

    with pytest.raises(ContrastError):
        export_onnx(model, tmp_path / "b.onnx", size=8, tolerance=0.0 - 1.0)
    assert not (tmp_path / "b.onnx").exists()


@pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 5), (4, 4)])
def test_plain_cross_scan_and_merge_match_library(h, w):
    import importlib

    from contrast_sr.export import traceable

    lib = importlib.import_module("contrast_sr.ops.cross_scan")

    x = torch.randn(2, h, w, 3)
    y = torch.randn(2, h * w, 4, 3)
    assert torch.equal(traceable.cross_scan_channels_last_plain(x), lib.cross_scan_channels_last(x))
    assert torch.allclose(
        traceable.cross_merge_channels_last_plain(y, h, w), lib.cross_merge_channels_last(y, h, w)
    )
    xc, yc = x.permute(0, 3, 1, 2), y.permute(0, 2, 3, 1)
    assert torch.equal(traceable.cross_scan_plain(xc), lib.cross_scan(xc))
    assert torch.allclose(traceable.cross_merge_plain(yc, h, w), lib.cross_merge(yc, h, w))
    blocks = [torch.randn(2, 3), torch.randn(1, 1), torch.randn(3, 2)]
    assert torch.equal(traceable.block_diag_plain(*blocks), torch.block_diag(*blocks))


@pytest.mark.parametrize("name", ["mamba", "contrast_light"])
def test_onnx_export_light_architecture_shallow(tmp_path, name):
    """Real SS2D (+ OCAB) blocks of a registered light variant, one group of two blocks."""
    from contrast_sr.models import create_model

    torch.manual_seed(0)
    model = create_model(name, depths=[2]).eval()
    report = export_onnx(model, tmp_path / "m.onnx", size=12)
    assert report.dynamic and report.max_abs_err <= 1e-4
    assert _roundtrip(model, tmp_path / "m.onnx", 10, 19) <= 1e-4


@pytest.mark.slow
def test_onnx_export_light_mamba_model(tmp_path):
    """The full registered light model through the command (about 2 minutes on 2 cores)."""
    import json
    import subprocess
    import sys

    from tests.conftest import cli_env

    out = tmp_path / "mamba.onnx"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "contrast_sr",
            "export",
            "--model",
            "mamba",
            "--random-init",
            "--format",
            "onnx",
            "-o",
            str(out),
            "--size",
            "12",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["dynamic"] and report["max_abs_err"] <= 1e-4 and out.is_file()


def test_safetensors_export_reloads_identically(tmp_path):
    from contrast_sr.export.safetensors import export_safetensors
    from contrast_sr.models import create_model, load_model

    torch.manual_seed(0)
    model = create_model("mamba", depths=[1]).eval()
    out = tmp_path / "m.safetensors"
    report = export_safetensors(model, out, size=8)
    assert report["max_abs_err"] == 0.0 and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    reloaded = load_model(out)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), reloaded.state_dict().values(), strict=True)
    )


def test_onnx_scan_traced_at_a_chunk_multiple_still_dynamic(tmp_path):
    """Traced where L is a multiple of the chunk (no padding needed), run where it is not."""
    from contrast_sr.ops.scan.chunked import TRACE_CHUNK

    model = TinyScanSR().eval()
    side = 8  # L = 64
    assert (side * side) % TRACE_CHUNK == 0
    path = tmp_path / "tiny.onnx"
    export_onnx(model, path, size=side)
    assert _roundtrip(model, path, 7, 9) <= 1e-4
