"""The tiled CPU transpose behind the mamba-layout scan entries: equal to torch's, gradients
transposed back, torch's copy where the kernel does not apply."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.ops import transpose as T
from contrast_sr.ops.transpose import transpose_last2


@pytest.mark.parametrize("shape", [(2, 40, 33), (1, 16, 16), (3, 1, 7), (2, 17, 1), (2, 0, 5)])
def test_equals_torch_and_transposes_the_gradient(shape):
    x = torch.randn(*shape, requires_grad=True)
    y = transpose_last2(x)
    assert y.is_contiguous() and torch.equal(y, x.transpose(1, 2))
    g = torch.randn(y.shape)
    (gx,) = torch.autograd.grad(y, x, g)
    assert torch.equal(gx, g.transpose(1, 2))


def test_non_contiguous_input_and_the_kernel_is_used():
    if not T.available(torch.zeros(1, 1, 1)):
        pytest.skip("numba not installed")
    base = torch.randn(2, 64, 50)
    x = base[:, ::2, 3:45]  # strided view
    y = transpose_last2(x)
    assert torch.equal(y, x.transpose(1, 2))
    with torch.enable_grad():
        assert transpose_last2(x.requires_grad_()).grad_fn.name().startswith("_TransposeFn")


def test_falls_back_to_torch_for_other_dtypes_and_casts():
    x = torch.randn(2, 5, 9, dtype=torch.float64)
    assert not T.available(x)
    y = transpose_last2(x, torch.float32)
    assert y.dtype == torch.float32 and torch.equal(y, x.transpose(1, 2).float())
    h = torch.randn(2, 5, 9).to(torch.bfloat16)
    assert torch.equal(transpose_last2(h), h.transpose(1, 2))
