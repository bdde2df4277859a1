"""The fused CPU linear layer equals ``F.linear`` where it runs (every tile shape of the
kernel), and leaves every other case (gradients, narrow or odd outputs, small or strided
inputs, other dtypes) to torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrast_sr.models.blocks.linear import Linear
from contrast_sr.ops import linear as lin

pytestmark = pytest.mark.skipif(lin.numba is None, reason="numba is not installed")


@pytest.fixture
def kernel_calls(monkeypatch):
    """The (rows, K, N) of each fused kernel launch."""
    calls = []
    kernel = lin.linear_kernel

    def counted(*args):
        calls.append(args[-3:])
        return kernel(*args)

    monkeypatch.setattr(lin, "linear_kernel", counted)
    return calls


# N covers every column path (4-vector chunks and remainders of 1, 2, 3 vectors); rows leave
# remainders after the jobs' full tiles; K = 1 is the shortest k loop
@pytest.mark.parametrize("K, N", [(32, 64), (64, 32), (32, 96), (7, 16), (1, 48), (33, 144)])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_equals_torch(K, N, bias, kernel_calls, monkeypatch):
    monkeypatch.setattr(lin, "MIN_TOKENS", 1)
    g = torch.Generator().manual_seed(K * N)
    x = torch.randn(3, 37, 29, K, generator=g)
    w = torch.randn(N, K, generator=g)
    b = torch.randn(N, generator=g) if bias else None
    with torch.no_grad():
        got = lin.linear(x, w, b)
    assert kernel_calls == [(3 * 37 * 29, K, N)]
    assert got.shape == (3, 37, 29, N) and got.is_contiguous()
    assert torch.allclose(got, F.linear(x, w, b), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("N", [16, 48, 96])
def test_fused_residual_is_the_sum_and_fallbacks_add_it(N, kernel_calls, monkeypatch):
    monkeypatch.setattr(lin, "MIN_TOKENS", 1)
    g = torch.Generator().manual_seed(N)
    x, w = torch.randn(2, 33, 17, 24, generator=g), torch.randn(N, 24, generator=g)
    b, r = torch.randn(N, generator=g), torch.randn(2, 33, 17, N, generator=g)
    with torch.no_grad():
        plain = lin.linear(x, w, b)
        assert torch.equal(lin.linear(x, w, b, r), r + plain)  # kernel: the same two roundings
        assert len(kernel_calls) == 2
        torch_out = F.linear(x, w, b)
        for other in (r[:1], r.transpose(1, 2).contiguous().transpose(1, 2), r.double()):
            # broadcast, strided, float64: torch's product, then the sum
            assert torch.equal(lin.linear(x, w, b, other), other + torch_out)
        assert len(kernel_calls) == 2
    y = lin.linear(x, w, b, r.clone().requires_grad_())  # the residual wants its gradient
    assert y.grad_fn is not None and torch.equal(y, r + torch_out) and len(kernel_calls) == 2


def test_fallbacks_are_torch_itself(kernel_calls):
    w = torch.randn(32, 16, requires_grad=True)
    x = torch.randn(1, 64, 64, 16)
    y = lin.linear(x, w)  # a weight that wants its gradient
    assert y.grad_fn is not None and torch.equal(y, F.linear(x, w))
    with torch.no_grad():
        for x_, w_ in (
            (torch.randn(1, 64, 64, 16), torch.randn(24, 16)),  # N not a multiple of 16
            (torch.randn(1, 8, 8, 16), torch.randn(32, 16)),  # fewer than MIN_TOKENS tokens
            (torch.randn(1, 16, 64, 64).permute(0, 2, 3, 1), torch.randn(32, 16)),  # strided
            (torch.randn(1, 64, 64, 16).double(), torch.randn(32, 16).double()),
        ):
            assert torch.equal(lin.linear(x_, w_), F.linear(x_, w_))
    assert kernel_calls == []


def test_module_keeps_nn_linear_state_and_uses_the_kernel_at_inference(kernel_calls):
    torch.manual_seed(0)
    ours, theirs = Linear(24, 48), torch.nn.Linear(24, 48)
    theirs.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(2, 64, 64, 24)
    with torch.inference_mode():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    assert kernel_calls == [(2 * 64 * 64, 24, 48)]
    y = ours(x)  # grad mode: torch's op, with its backward
    assert y.grad_fn is not None and torch.equal(y, theirs(x)) and len(kernel_calls) == 1


def test_default_model_output_unchanged_by_the_fused_linears(kernel_calls, monkeypatch):
    from contrast_sr.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("contrast_tiny", scale=2).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        fused = model(x)
        launches = len(kernel_calls)
        monkeypatch.setattr(lin, "MIN_TOKENS", 1 << 40)
        plain = model(x)
    assert launches >= 10  # the projections and FFN layers of the 64² map ran fused
    assert len(kernel_calls) == launches
    assert torch.allclose(fused, plain, atol=2e-5)
