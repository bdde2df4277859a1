"""The conv FFNs, run as per-token Linears on the channels-last map, equal their definition
with 1x1 convolutions on the channels-first map (values and gradients)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrast_sr.models.blocks.ffn import build_ffn


def _as_convs(m, x):
    """The FFN written with its 1x1 conv modules on NCHW, as the original code does."""
    t = x.permute(0, 3, 1, 2)
    if hasattr(m, "dwconv") and m.fc1.out_channels == 2 * m.fc2.in_channels:  # gated
        x1, x2 = m.fc1(t).chunk(2, dim=1)
        y = m.fc2(x1 * F.gelu(m.dwconv(x2)))
    else:
        t = m.fc1(t)
        if m.dwconv is not None:
            t = t + m.dwconv(t)
        y = m.fc2(m.act(t))
    return y.permute(0, 2, 3, 1)


@pytest.mark.parametrize("kind", ["gcffn", "gcffn_grouped", "convffn", "convffn_plain"])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_conv_ffns_equal_their_conv_definition(kind, padding):
    torch.manual_seed(0)
    m = build_ffn(kind, 12, 2.0, padding)
    x = torch.randn(2, 5, 7, 12, requires_grad=True)
    y, y_ref = m(x), _as_convs(m, x)
    assert y.shape == (2, 5, 7, 12) and y.is_contiguous()
    assert torch.allclose(y, y_ref, atol=1e-6)
    gy = torch.randn_like(y)
    params = [x, *m.parameters()]
    for g, g_ref in zip(
        torch.autograd.grad(y, params, gy), torch.autograd.grad(y_ref, params, gy), strict=True
    ):
        assert torch.allclose(g, g_ref, atol=1e-5)


@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("hw", [(5, 7), (2, 2), (9, 3)])
def test_fused_gate_at_inference_equals_torch_path(padding, hw, monkeypatch):
    import contrast_sr.models.blocks.ffn as ffn
    from contrast_sr.ops import gated_dwconv

    if gated_dwconv.numba is None:
        pytest.skip("numba is not installed")
    torch.manual_seed(2)
    m = build_ffn("gcffn", 12, 2.0, padding)
    x = torch.randn(2, *hw, 12) * 2
    with torch.no_grad():
        assert gated_dwconv.available(x)
        fused = m(x)
        monkeypatch.setattr(ffn, "gated_available", lambda _: False)
        reference = m(x)
    assert torch.allclose(fused, reference, atol=2e-6, rtol=1e-5)
    assert torch.allclose(fused, _as_convs(m, x), atol=2e-6, rtol=1e-5)


def test_erf32_matches_torch():
    pytest.importorskip("numba")
    from contrast_sr.ops import gated_dwconv_kernels as k

    grid = torch.linspace(-6, 6, 4001)
    ours = torch.tensor([k.erf32(v) for v in grid.tolist()], dtype=torch.float64)
    assert (ours - torch.erf(grid.double())).abs().max() < 5e-7


@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("shape", [(1, 20, 37, 16), (2, 1, 5, 32), (1, 6, 1, 16), (1, 3, 2, 48)])
def test_fused_ffn_at_inference_equals_torch_path(padding, shape, monkeypatch):
    """The one-pass FFN (C, F multiples of 16; bands of rows, an h2 ring) against the plain
    PyTorch path, on maps taller and shorter than a band, one row or one column wide."""
    import contrast_sr.models.blocks.ffn as ffn
    from contrast_sr.ops import gated_ffn

    if gated_ffn.numba is None:
        pytest.skip("numba is not installed")
    if padding == "reflect" and 1 in shape[1:3]:
        pytest.skip("torch cannot reflect-pad a side of 1 (no reference)")
    torch.manual_seed(3)
    m = build_ffn("gcffn", shape[-1], 2.0, padding)
    x = torch.randn(shape) * 2
    calls = []
    kernel = gated_ffn.gated_ffn_kernel
    monkeypatch.setattr(gated_ffn, "gated_ffn_kernel", lambda *a: calls.append(1) or kernel(*a))
    with torch.no_grad():
        fused = m(x)
        assert calls == [1]
        monkeypatch.setattr(ffn, "ffn_available", lambda *_: False)
        monkeypatch.setattr(ffn, "gated_available", lambda _: False)
        reference = m(x)
    assert calls == [1]
    assert torch.allclose(fused, reference, atol=2e-6, rtol=1e-5)


def test_fused_ffn_rejects_what_it_cannot_run():
    from contrast_sr.ops import gated_ffn

    if gated_ffn.numba is None:
        pytest.skip("numba is not installed")
    x = torch.randn(1, 4, 4, 16)
    w1, dw, w2 = torch.randn(64, 16), torch.randn(32, 1, 3, 3), torch.randn(16, 32)
    with pytest.raises(ValueError, match="do not fit"):
        gated_ffn.gated_conv_ffn(x, w1[:48], None, dw, None, w2, None)
    with pytest.raises(RuntimeError, match="multiples of 16"):
        gated_ffn.gated_conv_ffn(x[..., :12], w1[:, :12], None, dw, None, w2[:12], None)
    assert not gated_ffn.available(x.requires_grad_(), 16, 32, "zeros")


@pytest.mark.parametrize("kind", ["mlp", "sgfn", "gcffn", "gcffn_grouped", "convffn"])
def test_every_ffn_adds_the_residual_exactly(kind):
    """``ffn(x, residual=r)`` is ``r + ffn(x)`` bit for bit, on the fused CPU paths at
    inference (the kernels add r to rows still in cache) and with gradients."""
    torch.manual_seed(4)
    m = build_ffn(kind, 16, 2.0)
    x, r = torch.randn(1, 80, 70, 16), torch.randn(1, 80, 70, 16)
    with torch.no_grad():
        assert torch.equal(m(x, residual=r), r + m(x))
    x.requires_grad_()
    y = m(x, residual=r.requires_grad_())
    assert torch.equal(y, r + m(x))
    gx, gr = torch.autograd.grad(y, [x, r], torch.ones_like(y))
    assert torch.equal(gr, torch.ones_like(r)) and gx.abs().sum() > 0


def test_fused_ffn_checks_the_residual():
    from contrast_sr.ops import gated_ffn

    if gated_ffn.numba is None:
        pytest.skip("numba is not installed")
    x = torch.randn(1, 4, 4, 16)
    w1, dw, w2 = torch.randn(64, 16), torch.randn(32, 1, 3, 3), torch.randn(16, 32)
    with pytest.raises(ValueError, match="residual"):
        gated_ffn.gated_conv_ffn(x, w1, None, dw, None, w2, None, residual=x[..., :8])
    assert not gated_ffn.available(x, 16, 32, "zeros", residual=x[:, :2])
    with pytest.raises(RuntimeError, match="wanting no gradient"):  # its gradient would be lost
        gated_ffn.gated_conv_ffn(
            x, w1, None, dw, None, w2, None, residual=x.clone().requires_grad_()
        )
    assert not gated_ffn.available(x, 16, 32, "zeros", residual=x.clone().requires_grad_())
    assert gated_ffn.available(x, 16, 32, "zeros", residual=x.clone())
