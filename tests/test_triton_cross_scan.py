"""The Triton cross-scan / cross-merge kernels against the PyTorch path (values, gradients).

Run on CPU tensors through Triton's interpreter; skipped where triton is not installed.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():  # until tests/conftest.py sets it for every module
    os.environ.setdefault("TRITON_INTERPRET", "1")

from contrast_sr.ops import (
    cross_merge,
    cross_merge_channels_last,
    cross_scan,
    cross_scan_channels_last,
)
from contrast_sr.ops.triton_select import use_triton
from tests.triton_compile_check import run_in_subprocess

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SHAPES = [(1, 1), (1, 5), (3, 5), (4, 4), (7, 2), (6, 7)]


@pytest.fixture(autouse=True)
def _triton():
    pytest.importorskip("triton")


def _grads(out, inputs, grad):
    return torch.autograd.grad(out, inputs, grad)


@pytest.mark.parametrize("hw", SHAPES)
@pytest.mark.parametrize("c", [5, 8])
def test_channels_last_values_and_grads(hw, c):
    h, w = hw
    # channels-last view of a channels-first tensor, as SS2D feeds it: read in place
    x = torch.randn(2, c, h, w, device=DEVICE).permute(0, 2, 3, 1).requires_grad_()
    y = cross_scan_channels_last(x, impl="triton")
    y_ref = cross_scan_channels_last(x, impl="torch")
    assert y.shape == (2, h * w, 4, c) and y.is_contiguous()
    assert torch.equal(y, y_ref)
    gy = torch.randn_like(y)
    torch.testing.assert_close(_grads(y, x, gy), _grads(y_ref, x, gy), rtol=1e-5, atol=1e-6)

    z = torch.randn(2, h * w, 4, c, device=DEVICE, requires_grad=True)
    m = cross_merge_channels_last(z, h, w, impl="triton")
    m_ref = cross_merge_channels_last(z, h, w, impl="torch")
    assert m.shape == (2, h, w, c)
    torch.testing.assert_close(m, m_ref, rtol=1e-5, atol=1e-6)
    flat = cross_merge_channels_last(z.reshape(2, h * w, 4 * c), h, w, impl="triton")
    assert torch.equal(flat, m)
    gm = torch.randn_like(m)
    assert torch.equal(_grads(m, z, gm)[0], _grads(m_ref, z, gm)[0])
    # an expanded (stride 0) output gradient, as from .sum()
    assert torch.equal(_grads(m.sum(), z, None)[0], torch.full_like(z, 1.0))


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (7, 2)])
def test_channel_major_values_and_grads(hw):
    h, w = hw
    x = torch.randn(2, 6, h, w, device=DEVICE, requires_grad=True)
    y = cross_scan(x, impl="triton")
    y_ref = cross_scan(x, impl="torch")
    assert torch.equal(y, y_ref)
    gy = torch.randn_like(y)
    torch.testing.assert_close(_grads(y, x, gy), _grads(y_ref, x, gy), rtol=1e-5, atol=1e-6)

    z = torch.randn(2, 4, 6, h * w, device=DEVICE, requires_grad=True)
    m = cross_merge(z, h, w, impl="triton")
    m_ref = cross_merge(z, h, w, impl="torch")
    torch.testing.assert_close(m, m_ref, rtol=1e-5, atol=1e-6)
    gm = torch.randn_like(m)
    assert torch.equal(_grads(m, z, gm)[0], _grads(m_ref, z, gm)[0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision(dtype):
    h, w, c = 3, 5, 6
    x = torch.randn(2, h, w, c, device=DEVICE).to(dtype)
    y = cross_scan_channels_last(x, impl="triton")
    assert y.dtype == dtype and torch.equal(y, cross_scan_channels_last(x, impl="torch"))
    z = torch.randn(2, h * w, 4, c, device=DEVICE).to(dtype)
    m = cross_merge_channels_last(z, h, w, impl="triton")  # fp32 sum, one rounding
    exact = cross_merge_channels_last(z.float(), h, w, impl="torch")
    assert m.dtype == dtype
    torch.testing.assert_close(m.float(), exact, rtol=1e-2, atol=1e-2)


def test_selection_rule():
    cpu = torch.zeros(1)
    assert not use_triton(cpu)  # auto: CUDA tensors only
    assert not use_triton(cpu, "torch") and use_triton(cpu, "triton")
    with pytest.raises(ValueError, match="unknown impl"):
        cross_scan_channels_last(torch.zeros(1, 2, 2, 3), impl="cuda")


@pytest.mark.slow
def test_kernels_compile_for_sm90():
    """The real compiler (sm_90, no GPU needed) accepts every kernel the interpreter ran."""
    pytest.importorskip("triton.backends.nvidia")
    assert run_in_subprocess("cross_scan", 90).count("REG:") == 6
