"""ONNX export (traceable ops chosen where they are defined, dynamic H/W) with onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_models import SCAN_MODULE, TinyScanSR, TinySR

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install .[onnx])")
pytest.importorskip("onnx", reason="onnx not installed (pip install .[onnx])")

from contrast_sr.export.onnx import export_onnx  # noqa: E402
from contrast_sr.ops import scan_backend  # noqa: E402

# torch.jit.trace is deprecated, and it warns at every Python-level shape check it folds
TRACE_WARNINGS = pytest.mark.filterwarnings(
    "ignore::torch.jit.TracerWarning", "ignore:`torch.jit.trace:DeprecationWarning"
)


def _roundtrip(model, path, h, w):
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"lr": x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    return float(np.abs(out - ref).max())


def _spy_on_chunked_scan(monkeypatch) -> list:
    """Record the u shape of every call of the chunked scan (the "chunked" backend's kernel)."""
    from contrast_sr.ops.scan import chunked

    calls = []
    real = chunked.selective_scan_chunked

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(chunked, "selective_scan_chunked", spy)
    return calls


def test_scan_backend_chunked_routes_scans_through_chunked(monkeypatch):
    calls = _spy_on_chunked_scan(monkeypatch)
    original = SCAN_MODULE.selective_scan_channels_last
    model = TinyScanSR().eval()
    x = torch.rand(1, 3, 7, 6)
    with torch.no_grad():
        ref = model(x)
        assert not calls
        with scan_backend("chunked"):
            swapped = model(x)
    assert calls == [(1, 42, 4)]
    assert SCAN_MODULE.selective_scan_channels_last is original
    assert torch.allclose(swapped, ref, atol=1e-5)


@TRACE_WARNINGS
def test_tracing_takes_the_chunked_scan_and_plain_cross_scan(monkeypatch):
    """Under torch.jit.trace SS2D runs the chunked scan and the gather-free cross scan / merge,
    and the traced graph still serves another size."""
    from contrast_sr.models.blocks.ss2d import SS2D

    calls = _spy_on_chunked_scan(monkeypatch)
    torch.manual_seed(0)
    block = SS2D(8).eval()
    x, x2 = torch.randn(1, 5, 6, 8), torch.randn(1, 7, 3, 8)
    with torch.no_grad():
        traced = torch.jit.trace(block, (x,), check_trace=False)
        assert calls == [(1, 30, 32)]
        graph = str(traced.graph)
        assert "aten::index_select" not in graph and "aten::flip" in graph
        assert torch.allclose(traced(x2), block(x2), atol=1e-5)


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


def _traced(fn, inp):
    """fn(inp) through torch.jit.trace, so the traceable formulation runs; and the graph."""
    with torch.no_grad():
        traced = torch.jit.trace(fn, (inp,), check_trace=False)
        return traced(inp), str(traced.graph)


@TRACE_WARNINGS
@pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 5), (4, 4)])
def test_traced_cross_scan_and_merge_match_eager(h, w):
    from contrast_sr.models.blocks.ss2d import block_diagonal
    from contrast_sr.ops import (
        cross_merge,
        cross_merge_channels_last,
        cross_scan,
        cross_scan_channels_last,
    )

    gen = torch.Generator().manual_seed(h * 10 + w)
    x = torch.randn(2, h, w, 3, generator=gen)
    y = torch.randn(2, h * w, 4, 3, generator=gen)
    out, graph = _traced(cross_scan_channels_last, x)
    assert "aten::index_select" not in graph  # not the gather table
    assert torch.equal(out, cross_scan_channels_last(x))
    out, graph = _traced(lambda t: cross_merge_channels_last(t, h, w), y)
    assert "aten::index_select" not in graph
    assert torch.allclose(out, cross_merge_channels_last(y, h, w))
    xc, yc = x.permute(0, 3, 1, 2), y.permute(0, 2, 3, 1)
    out, graph = _traced(cross_scan, xc)
    assert "aten::stack" in graph  # the plain formulation, not the copy-based Function
    assert torch.equal(out, cross_scan(xc))
    out, _ = _traced(lambda t: cross_merge(t, h, w), yc)
    assert torch.allclose(out, cross_merge(yc, h, w))
    weights = torch.randn(4, 3, 2, generator=gen)  # (K, out, in) as SS2D's x_proj_weight
    assert torch.equal(block_diagonal(weights), torch.block_diag(*weights.transpose(1, 2)))


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
