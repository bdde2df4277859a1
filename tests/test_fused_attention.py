"""The fused CPU window attention (training path of OCAB) equals the explicit formula: values
and the gradients of q, k, v and the bias, for every job split of the bias gradient."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.models.blocks.attention import window_attention
from contrast_sr.ops import fused_attention as fa

if fa.numba is None:
    pytest.skip("numba is not installed", allow_module_level=True)


def _inputs(B, nW, h, n, m, d, bias, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = (torch.randn(B, nW, h, n, d, generator=g) * 2).requires_grad_(True)
    k = torch.randn(B, nW, h, m, d, generator=g).requires_grad_(True)
    v = torch.randn(B, nW, h, m, d, generator=g).requires_grad_(True)
    b = torch.randn(h, n, m, generator=g).requires_grad_(True) if bias else None
    return q, k, v, b, torch.randn(B, nW, h, n, d, generator=g)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("shape", [(2, 3, 3, 16, 36, 4), (1, 1, 2, 4, 9, 8), (3, 2, 1, 5, 7, 3)])
def test_values_and_gradients_equal_explicit(shape, bias, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # 4 threads: the bias gradient in several partial sums
    try:
        q, k, v, b, go = _inputs(*shape, bias)
        inputs = [t for t in (q, k, v, b) if t is not None]
        out = fa.fused_window_attention(q, k, v, b)
        ref = window_attention(q, k, v, b, impl="explicit")
        assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-5)
        grads = torch.autograd.grad(out, inputs, go)
        refs = torch.autograd.grad(ref, inputs, go)
        for g, r in zip(grads, refs, strict=True):
            assert torch.allclose(g, r, atol=1e-5, rtol=1e-4)
    finally:
        torch.set_num_threads(before)


def test_bias_without_gradient_and_bf16_and_checks():
    q, k, v, b, _ = _inputs(1, 2, 2, 4, 9, 8, True)
    out = fa.fused_window_attention(q, k, v, b.detach())
    (gq,) = torch.autograd.grad(out.sum(), [q])
    assert gq.shape == q.shape
    half = fa.fused_window_attention(*(t.detach().bfloat16() for t in (q, k, v)), b.detach())
    assert half.dtype == torch.bfloat16 and torch.allclose(half.float(), out, atol=0.1)
    with pytest.raises(ValueError, match="bias"):
        fa.fused_window_attention(q, k, v, torch.zeros(2, 4, 4))
    assert not fa.available(q.double())
