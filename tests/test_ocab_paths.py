"""OCAB's three attention paths give the same values: the lean SDPA path (training), the fused
numba kernel (CPU inference) and the traceable window-partition / unfold form (export)."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.models.blocks.ocab import OCAB
from contrast_sr.ops import overlap_attention as oa


def _ocab(bias: str, dim: int = 12, heads: int = 3, ws: int = 4) -> OCAB:
    torch.manual_seed(0)
    m = OCAB(dim, heads, ws, bias=bias, ffn="gcffn")
    if bias == "table":
        torch.nn.init.normal_(m.relative_position_bias_table, std=1.0)
    return m


@pytest.mark.parametrize("bias", ["none", "table", "dynamic"])
@pytest.mark.parametrize("hw", [(8, 12), (4, 4)])
def test_lean_and_traceable_paths_agree_with_gradients(bias, hw):
    m = _ocab(bias)
    x = torch.randn(2, *hw, 12, requires_grad=True)
    qkv = m.qkv(m.norm1(x))
    lean, traced = m._attention(qkv), m._attention_traceable(qkv)
    assert torch.allclose(lean, traced, atol=1e-6)
    gy = torch.randn_like(lean)
    params = [x, *m.parameters()]
    g1 = torch.autograd.grad(lean, params, gy, retain_graph=True, allow_unused=True)
    g2 = torch.autograd.grad(traced, params, gy, allow_unused=True)
    for a, b in zip(g1, g2, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.skipif(oa.numba is None, reason="numba is not installed")
@pytest.mark.parametrize("bias", ["none", "table", "dynamic"])
@pytest.mark.parametrize(("ws", "overlap"), [(4, 0.5), (4, 0.0), (2, 1.0)])
def test_fused_inference_equals_sdpa_path(bias, ws, overlap):
    torch.manual_seed(1)
    m = OCAB(12, 3, ws, overlap_ratio=overlap, bias=bias).eval()
    if bias == "table":
        torch.nn.init.normal_(m.relative_position_bias_table, std=1.0)
    x = torch.randn(2, 2 * ws, 3 * ws, 12) * 3  # large logits: the softmax's max shift matters
    with torch.no_grad():
        qkv = m.qkv(m.norm1(x))
        assert oa.available(qkv)
        fused = oa.overlap_attention(qkv, 3, m.ws, m.ows, m.position_bias())
        assert torch.allclose(fused, m._attention(qkv), atol=1e-5)
        y = m(x)  # takes the fused path
    assert torch.allclose(y, m(x), atol=1e-5)  # with grad enabled: the SDPA path
    with torch.no_grad():
        half = oa.overlap_attention(qkv.bfloat16(), 3, m.ws, m.ows, m.position_bias())
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), fused, atol=0.1)


@pytest.mark.skipif(oa.numba is None, reason="numba is not installed")
def test_fused_path_is_inference_only_and_checks_shapes():
    qkv = torch.randn(1, 4, 4, 36, requires_grad=True)
    assert not oa.available(qkv)
    with torch.no_grad():
        assert oa.available(qkv)
        with pytest.raises(ValueError, match="does not fit"):
            oa.overlap_attention(qkv, 3, 3, 4)
        with pytest.raises(ValueError, match="bias"):
            oa.overlap_attention(qkv, 3, 4, 6, torch.zeros(3, 16, 16))
    assert not oa.available(qkv.double().detach())


@pytest.mark.skipif(oa.numba is None, reason="numba is not installed")
@pytest.mark.parametrize("bias", ["none", "dynamic"])
def test_fused_inference_head_dim_8_path(bias):
    """Head dim 8 (the light models') has its own unrolled loops in the kernel."""
    torch.manual_seed(3)
    m = OCAB(16, 2, 4, bias=bias).eval()
    x = torch.randn(1, 8, 12, 16) * 3
    with torch.no_grad():
        qkv = m.qkv(m.norm1(x))
        fused = oa.overlap_attention(qkv, 2, m.ws, m.ows, m.position_bias())
        assert torch.allclose(fused, m._attention_traceable(qkv), atol=1e-5)
