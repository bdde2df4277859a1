"""ONNX export (traceable ops chosen where they are defined, dynamic H/W) with onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_models import SCAN_MODULE, TinyScanSR, TinySR

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install .[onnx])")
pytest.importorskip("onnx", reason="onnx not installed (pip install .[onnx])")

from contrast_sr.export.onnx import export_onnx  # noqa: E402
from contrast_sr.models.blocks.windows import (  # noqa: E402
    pad_reflect,
    shift_mask,
    window_partition,
)
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


def _small_variant(name):
    """The registered variant: bundled weights where it has them, else a small random one."""
    from contrast_sr.models import create_model
    from contrast_sr.weights import bundled_weights

    if bundled_weights(name, 4).is_file():
        from contrast_sr.models import load_model

        return load_model(bundled_weights(name, 4)).eval()
    torch.manual_seed(0)
    return create_model(name, depths=[2]).eval()  # one group: windows, shifts, OCAB, SS2D


@TRACE_WARNINGS
@pytest.mark.parametrize("name", ["contrast_tiny", "contrast_light", "hat_light", "mamba"])
def test_onnx_one_dynamic_graph_serves_every_size(tmp_path, name):
    """Window padding, partition, shift mask and OCAB's unfold trace with dynamic H/W: one graph
    (traced at 32x32) matches PyTorch at 40x56, 33x17 and sizes below one window."""
    model = _small_variant(name)
    path = tmp_path / "m.onnx"
    report = export_onnx(model, path, size=32)
    assert report.dynamic and report.checked_sizes == [[32, 32], [40, 56], [33, 17]]
    assert report.max_abs_err <= 1e-4
    for h, w in [(40, 56), (33, 17), (5, 3)]:
        assert _roundtrip(model, path, h, w) <= 1e-4


class _BakedShape(torch.nn.Module):
    """Reshapes to the traced size: its graph cannot serve another size."""

    scale = 1

    def forward(self, x):
        h, w = int(x.shape[-2]), int(x.shape[-1])  # Python ints: constants in the graph
        return x.reshape(1, 3, h * w).reshape(1, 3, h, w) * 2


@TRACE_WARNINGS
def test_onnx_graph_that_is_not_dynamic_is_an_error_unless_static(tmp_path, capfd):
    from contrast_sr.export.onnx import NotDynamicError

    with pytest.raises(NotDynamicError, match="not dynamic: at 40x56"):
        export_onnx(_BakedShape(), tmp_path / "a.onnx", size=8)
    assert not (tmp_path / "a.onnx").exists()
    assert "ExecuteKernel" not in capfd.readouterr().err  # onnxruntime's own log stays quiet
    report = export_onnx(_BakedShape(), tmp_path / "a.onnx", size=8, dynamic=False)
    assert not report.dynamic and (tmp_path / "a.onnx").is_file()


@TRACE_WARNINGS
def test_export_command_exits_1_without_static(tmp_path, capsys, monkeypatch):
    from contrast_sr.cli import analysis_args, main

    monkeypatch.setattr(analysis_args, "model_from_arg", lambda *a: _BakedShape())
    argv = ["export", "--model", "baked", "--format", "onnx", "--size", "8"]
    assert main([*argv, "-o", str(tmp_path / "a.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not dynamic" in err[0] and "--static" in err[0]
    assert not (tmp_path / "a.onnx").exists()
    assert main([*argv, "-o", str(tmp_path / "a.onnx"), "--static", "--json"]) == 0
    assert '"dynamic": false' in capsys.readouterr().out


def _shift_mask_slices(h, w, ws, shift):
    """Swin's original slice-based region mask, the reference for the arange-based one."""
    img = torch.zeros(1, h, w, 1)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    mw = window_partition(img, ws).squeeze(-1)[0]
    diff = mw[:, None, :] - mw[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


@pytest.mark.parametrize(("h", "w", "ws", "shift"), [(8, 8, 4, 2), (16, 24, 8, 4), (8, 16, 8, 3)])
def test_shift_mask_equals_swin_slices(h, w, ws, shift):
    assert torch.equal(shift_mask(h, w, ws, shift), _shift_mask_slices(h, w, ws, shift))


def test_traceable_reflect_padding_equals_the_eager_loop():
    from contrast_sr.models.blocks.windows import _pad_reflect_gather

    for h, w in [(1, 1), (1, 7), (2, 9), (3, 16), (5, 17), (16, 16), (33, 2)]:
        x = torch.rand(1, 2, h, w)
        assert torch.equal(_pad_reflect_gather(x, 16), pad_reflect(x, 16)), (h, w)
        assert pad_reflect(x, 16).shape[-2:] == (-(-h // 16) * 16, -(-w // 16) * 16)


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
