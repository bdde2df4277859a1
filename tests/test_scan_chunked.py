"""The loop-free chunked scan equals the sequential reference (values and gradients)."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.ops.scan.chunked import selective_scan_chunked
from contrast_sr.ops.scan.reference import selective_scan_ref


def _problem(b, k, d, n, L, dtype, scale_delta=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    dim = k * d
    u = torch.randn(b, L, dim, generator=g, dtype=dtype)
    delta = torch.randn(b, L, dim, generator=g, dtype=dtype) * scale_delta
    A = -torch.rand(dim, n, generator=g, dtype=dtype).add(0.2)
    B = torch.randn(b, L, k, n, generator=g, dtype=dtype)
    C = torch.randn(b, L, k, n, generator=g, dtype=dtype)
    D = torch.randn(dim, generator=g, dtype=dtype)
    bias = torch.randn(dim, generator=g, dtype=dtype) * 0.5
    return u, delta, A, B, C, D, bias


def _ref(u, delta, A, B, C, D, bias, softplus=True):
    """Reference in the mamba layout, converted to/from channels-last."""
    y = selective_scan_ref(
        u.transpose(1, 2),
        delta.transpose(1, 2),
        A,
        B.permute(0, 2, 3, 1),
        C.permute(0, 2, 3, 1),
        D,
        delta_bias=bias,
        delta_softplus=softplus,
    )
    return y.transpose(1, 2)


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("L", [1, 5, 17, 64, 200])
def test_float64_values_and_grads(n, L):
    args = [t.requires_grad_() for t in _problem(2, 4, 3, n, L, torch.float64)]
    y = selective_scan_chunked(*args, delta_softplus=True, chunk=4)
    y_ref = _ref(*args)
    assert torch.allclose(y, y_ref, atol=1e-10, rtol=0)
    w = torch.randn_like(y)
    grads = torch.autograd.grad((y * w).sum(), args)
    grads_ref = torch.autograd.grad((y_ref * w).sum(), args)
    for g, gr in zip(grads, grads_ref, strict=True):
        assert torch.allclose(g, gr, atol=1e-10, rtol=0)


def test_float32_relative_error():
    args64 = _problem(2, 4, 3, 1, 200, torch.float64, seed=1)
    y64 = _ref(*args64)
    y32 = selective_scan_chunked(*(t.float() for t in args64), delta_softplus=True)
    assert y32.dtype == torch.float32
    rel = (y32.double() - y64).norm() / y64.norm()
    assert rel < 1e-5


def test_strong_decay_is_finite_and_exact():
    # delta * A down to about -30 per step: chunk sums far beyond exp's float32 range.
    u, delta, A, B, C, D, _ = _problem(1, 2, 2, 1, 96, torch.float64, seed=2)
    delta = delta.abs() * 30 + 1
    A = -torch.ones_like(A)
    args = [t.float().requires_grad_() for t in (u, delta, A, B, C, D)]
    y = selective_scan_chunked(*args, chunk=16)
    y.square().sum().backward()
    assert torch.isfinite(y).all()
    assert all(torch.isfinite(t.grad).all() for t in args)
    y_ref = _ref(u, delta, A, B, C, D, None, softplus=False)
    assert torch.allclose(y.double(), y_ref, rtol=1e-5, atol=1e-5)


def test_gradcheck_tiny():
    args = [t.requires_grad_() for t in _problem(2, 2, 2, 2, 16, torch.float64, seed=3)]
    assert torch.autograd.gradcheck(
        lambda *a: selective_scan_chunked(*a, delta_softplus=True, chunk=4), args
    )
