"""The fused CPU LayerNorm equals ``F.layer_norm`` where it runs, and leaves every other case
(gradients, small maps, other dtypes) to torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrast_sr.models.blocks.norm import LayerNorm
from contrast_sr.ops import layer_norm as ln

pytestmark = pytest.mark.skipif(ln.numba is None, reason="numba is not installed")


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the fused kernel's launches."""
    calls = []
    kernel = ln.layer_norm_kernel

    def counted(*args):
        calls.append(args[-2])  # C
        return kernel(*args)

    monkeypatch.setattr(ln, "layer_norm_kernel", counted)
    return calls


@pytest.mark.parametrize("C", [1, 13, 32, 180])
@pytest.mark.parametrize("affine", [True, False])
def test_fused_layer_norm_equals_torch(C, affine, kernel_calls):
    g = torch.Generator().manual_seed(C)
    x = torch.randn(2, 48, 50, C, generator=g) * 3 + 1.5
    w = torch.randn(C, generator=g) if affine else None
    b = torch.randn(C, generator=g) if affine else None
    with torch.no_grad():
        got = ln.layer_norm(x, (C,), w, b, 1e-6)
    assert kernel_calls == [C]
    want = F.layer_norm(x, (C,), w, b, 1e-6)
    assert got.shape == x.shape and got.is_contiguous()
    assert torch.allclose(got, want, atol=3e-6, rtol=1e-5)


def test_fused_layer_norm_takes_a_strided_map(kernel_calls):
    x = torch.randn(1, 32, 64, 80).permute(0, 2, 3, 1)  # channels-last view of an NCHW map
    w, b = torch.randn(32), torch.randn(32)
    with torch.inference_mode():
        got = ln.layer_norm(x, (32,), w, b)
    assert kernel_calls == [32]
    assert torch.allclose(got, F.layer_norm(x, (32,), w, b), atol=3e-6, rtol=1e-5)


def test_gradients_small_maps_and_other_dtypes_stay_on_torch(kernel_calls):
    w = torch.randn(16, requires_grad=True)
    b = torch.randn(16)
    big = torch.randn(8, 64, 64, 16)
    y = ln.layer_norm(big, (16,), w, b)  # grad mode, a parameter that wants a gradient
    assert y.grad_fn is not None and torch.equal(y, F.layer_norm(big, (16,), w, b))
    with torch.no_grad():
        small = torch.randn(1, 8, 8, 16)
        assert torch.equal(ln.layer_norm(small, (16,), w, b), F.layer_norm(small, (16,), w, b))
        half = big.double()
        assert torch.equal(
            ln.layer_norm(half, (16,), w.double(), None), F.layer_norm(half, (16,), w.double())
        )
    assert kernel_calls == []


def test_module_keeps_nn_layer_norm_state_and_uses_the_kernel_at_inference(kernel_calls):
    torch.manual_seed(0)
    ours, theirs = LayerNorm(24), torch.nn.LayerNorm(24)
    torch.nn.init.normal_(ours.weight)
    torch.nn.init.normal_(ours.bias)
    theirs.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(2, 64, 64, 24)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=3e-6, rtol=1e-5)
    assert kernel_calls == [24]
    y = ours(x.requires_grad_())  # training: torch's op, with its backward
    assert torch.equal(y, theirs(x)) and kernel_calls == [24]


def test_default_model_output_unchanged_by_the_fused_norm(kernel_calls, monkeypatch):
    from contrast_sr.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("contrast_tiny", scale=2).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        fused = model(x)
        launches = len(kernel_calls)
        monkeypatch.setattr(ln, "MIN_TOKENS", 1 << 40)
        plain = model(x)
    assert launches >= 10  # every norm of the 64² map (4096 tokens) ran fused
    assert len(kernel_calls) == launches  # and none in the torch run
    assert torch.allclose(fused, plain, atol=2e-5)
