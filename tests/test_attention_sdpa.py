"""SDPA window attention: 4-D fused-kernel layout, head-dim padding, backend report."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.models import create_model
from contrast_sr.models.blocks.attention import (
    sdpa_head_dim,
    sdpa_inputs,
    sdpa_window_attention,
    window_attention,
)
from contrast_sr.models.blocks.attention_backend import (
    AttentionGeometry,
    attention_backend,
    attention_backends,
)
from contrast_sr.models.blocks.ocab import OCAB
from contrast_sr.models.blocks.window_attention import WindowAttention
from contrast_sr.ops import fused_attention


def _qkv(b=2, nw=3, h=2, n=9, m=16, d=5, grad=False):
    gen = torch.Generator().manual_seed(n * m + d)
    shapes = [(b, nw, h, n, d), (b, nw, h, m, d), (b, nw, h, m, d)]
    return [torch.randn(s, generator=gen).requires_grad_(grad) for s in shapes]


@pytest.mark.parametrize("bias_kind", ["none", "head", "window"])
@pytest.mark.parametrize("head_dim", [None, 8, 16])
def test_sdpa_layouts_and_padding_equal_explicit(bias_kind, head_dim):
    q, k, v = _qkv(grad=True)
    bias = {"none": None, "head": torch.randn(2, 9, 16), "window": torch.randn(3, 2, 9, 16)}
    bias = bias[bias_kind]
    if bias is not None:
        bias.requires_grad_(True)
    leaves = [t for t in (q, k, v, bias) if t is not None]
    out = sdpa_window_attention(q, k, v, bias, head_dim=head_dim)
    grads = torch.autograd.grad(out.square().sum(), leaves)
    ref = window_attention(q, k, v, bias, impl="explicit", chunk=2)
    ref_grads = torch.autograd.grad(ref.square().sum(), leaves)
    assert out.shape == ref.shape == (2, 3, 2, 9, 5)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5)


def test_sdpa_inputs_are_4d_contiguous_and_mask_broadcasts_over_batch():
    q, k, v = _qkv(d=8)
    q4, k4, v4, mask = sdpa_inputs(q, k, v, torch.randn(3, 2, 9, 16))
    assert q4.shape == (2, 6, 9, 8) and k4.shape == v4.shape == (2, 6, 16, 8)
    assert mask.shape == (1, 6, 9, 16)
    assert all(t.is_contiguous() for t in (q4, k4, v4, mask))
    q4, _, _, mask = sdpa_inputs(q, k, v, torch.randn(2, 9, 16), head_dim=16)
    assert q4.shape == (6, 2, 9, 16) and mask.shape == (1, 2, 9, 16)
    assert torch.equal(q4[..., 8:], torch.zeros(6, 2, 9, 8))


def test_head_dim_padded_to_8_only_on_cuda():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert [sdpa_head_dim(d, cuda) for d in (8, 9, 10, 25, 30, 100)] == [8, 16, 16, 32, 32, 104]
    assert sdpa_head_dim(9, cpu) == 9


def test_cpu_inference_takes_the_fused_kernel_training_with_learned_bias_math():
    """4-D inputs let CPU inference run the fused kernel (no more math fallback); a mask
    that requires grad is outside the CPU kernel's support."""
    geo = AttentionGeometry(6, 8, 256, 576, "head", learned_bias=True)
    assert attention_backend(geo, "cpu", verify=True) == {
        "backend": "flash",
        "sdpa_head_dim": 8,
        "verified": True,
    }
    assert attention_backend(geo, "cpu", training=True)["backend"] == "math"
    no_bias = AttentionGeometry(4, 8, 64, 144, "none", learned_bias=False)
    assert attention_backend(no_bias, "cpu", training=True)["backend"] == "flash"
    clipped = AttentionGeometry(6, 8, 256, 256, "head", True, clipped=True)
    assert attention_backend(clipped, "cpu")["backend"] == "explicit"


def test_attention_backends_lists_every_attention_module():
    model = create_model(
        "hat_light", 4, depths=[2], dim=12, num_heads=3, window_size=4, squeeze_factor=4
    )
    entries = attention_backends(model.eval(), verify=True)
    kinds = [(e["kind"], e["bias"]) for e in entries]
    assert kinds == [("WindowAttention", "head"), ("WindowAttention", "window"), ("OCAB", "head")]
    ocab_kernel = "numba" if fused_attention.numba is not None else "flash"
    assert [e["backend"] for e in entries] == ["flash", "flash", ocab_kernel]
    assert all(e["verified"] for e in entries)
    assert attention_backends(model.train(), verify=True)[2]["backend"] == ocab_kernel
    assert entries[2]["queries"] == 16 and entries[2]["keys"] == 36
    explicit = create_model("contrast_tiny", 4, attention="explicit")
    assert {e["backend"] for e in attention_backends(explicit)} == {"explicit"}
    assert attention_backends(create_model("mamba", 4, depths=[1])) == []


def test_modules_equal_explicit_in_eval_and_training():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 8, 16)
    modules = [WindowAttention(16, 2, 4, shift=2), OCAB(16, 2, 4, bias="table")]
    for module in modules:
        torch.nn.init.normal_(module.relative_position_bias_table, std=1.0)
        with torch.no_grad():
            ref = module(x)
        module.impl = "explicit"
        with torch.no_grad():
            torch.testing.assert_close(module(x), ref, rtol=1e-5, atol=1e-5)
        grad_explicit = torch.autograd.grad(module(x).sum(), module.relative_position_bias_table)
        module.impl = "sdpa"
        grad_sdpa = torch.autograd.grad(module(x).sum(), module.relative_position_bias_table)
        torch.testing.assert_close(grad_sdpa[0], grad_explicit[0], rtol=1e-5, atol=1e-5)
