"""The fused SS2D scan (cross-scan + dt projection + scan + merge in one numba op) equals SS2D's
composed path, values and every gradient, for every work split."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.models.blocks.ss2d import SS2D
from contrast_sr.ops import scan_backend

css = pytest.importorskip("contrast_sr.ops.cross_selective_scan")
if not css.available(torch.zeros(1)):
    pytest.skip("numba is not installed", allow_module_level=True)


def _outputs_and_grads(m: SS2D, x: torch.Tensor, fused: bool):
    m.fused = fused
    x = x.clone().requires_grad_(True)
    y = m(x)
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y.dtype)
    return y, torch.autograd.grad(y, [x, *m.parameters()], gy)


def _rel(a: torch.Tensor, r: torch.Tensor) -> float:
    return ((a.double() - r.double()).abs().max() / r.double().abs().max().clamp_min(1e-30)).item()


CASES = [  # b, h, w, dim, N, (tile, parts) or None for the automatic plan
    (2, 3, 5, 8, 1, None),
    (1, 7, 4, 40, 2, (16, 2)),  # 3 tiles (16, 16, 8), 2 parts
    (2, 6, 6, 16, 1, (16, 4)),  # one direction per job
    (1, 9, 11, 33, 3, (32, 2)),  # a ragged tile
    (1, 1, 1, 8, 1, None),
    (1, 13, 1, 8, 1, (8, 2)),
]


@pytest.mark.parametrize("case", CASES)
def test_fused_equals_composed_path(case, monkeypatch):
    b, h, w, dim, n, split = case
    if split is not None:
        monkeypatch.setattr(css, "plan", lambda *_: split)
    torch.manual_seed(h * w + dim)
    m = SS2D(dim, d_state=n)
    with torch.no_grad():
        m.A_logs.normal_(0, 0.5)
        m.Ds.normal_()
        m.dt_projs_bias.normal_(0, 1.0)
    x = torch.randn(b, h, w, dim)
    y, grads = _outputs_and_grads(m, x, fused=True)
    with scan_backend("reference"):  # the composed path on the sequential scan
        y_ref, grads_ref = _outputs_and_grads(m.double(), x.double(), fused=False)
    assert y.dtype == torch.float32
    assert _rel(y, y_ref) <= 1e-5
    assert len(grads) == len(grads_ref) == 12
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert _rel(g, g_ref) <= 1e-5


def test_fused_is_what_ss2d_runs_and_yields_to_a_named_backend(monkeypatch):
    calls = []
    real = css.cross_selective_scan
    monkeypatch.setattr(
        "contrast_sr.models.blocks.ss2d.cross_selective_scan",
        lambda *a: calls.append(1) or real(*a),
    )
    m = SS2D(8)
    x = torch.randn(1, 4, 4, 8)
    y = m(x)
    assert calls == [1]
    with scan_backend("torch"):
        y_torch = m(x)
    assert calls == [1]  # a named backend takes the composed path
    assert torch.allclose(y, y_torch, atol=1e-6)
    assert not css.available(x.double())


def test_plan_gives_every_thread_a_job():
    assert css.plan(1, 32, 1) == (32, 2)
    assert css.plan(1, 32, 2) == (32, 2)
    assert css.plan(1, 32, 4) == (32, 4)
    assert css.plan(8, 48, 2) == (48, 2)
    tile, parts = css.plan(1, 64, 16)
    assert parts == 4 and 16 <= tile < 64 and tile % 16 == 0


def test_bf16_inputs_keep_dtype_and_precision():
    m = SS2D(16)
    x = torch.randn(1, 6, 6, 16)
    y32 = m(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y16 = m(x)
    assert y16.dtype == torch.bfloat16
    assert _rel(y16, y32) <= 2e-2


def test_fused_inference_on_a_large_map_equals_composed_path(monkeypatch):
    """At inference on a map of 4096+ tokens the x projections run through the fused linear
    (both orientations in one GEMM) and the kernels skip their checkpoints."""
    from contrast_sr.ops import linear as lin

    torch.manual_seed(5)
    m = SS2D(32).eval()
    with torch.no_grad():
        m.A_logs.normal_(0, 0.5)
        m.dt_projs_bias.normal_(0, 1.0)
    x = torch.randn(1, 64, 72, 32)
    launches = []
    kernel = lin.linear_kernel
    monkeypatch.setattr(lin, "linear_kernel", lambda *a: launches.append(a[-2:]) or kernel(*a))
    with torch.no_grad():
        fused = m(x)
        assert (32, 16) in launches  # K = 32 inputs, 4P = 16 projections of both orientations
        m.fused = False
        with scan_backend("torch"):
            composed = m(x)
    assert _rel(fused, composed) <= 1e-5
