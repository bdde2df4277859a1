"""Fused depthwise 3x3 conv + GELU: the PyTorch path is the module's own computation (bit for
bit), and the Triton kernel matches it (values, gradients) under Triton's interpreter."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

if not torch.cuda.is_available():  # until tests/conftest.py sets it for every module
    os.environ.setdefault("TRITON_INTERPRET", "1")

from contrast_sr.models.blocks.conv_gelu import conv_gelu
from contrast_sr.ops import dwconv3x3_gelu
from tests.triton_compile_check import run_in_subprocess

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def triton():
    return pytest.importorskip("triton")


def _conv(c: int, padding_mode: str, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c, c, 3, padding=1, groups=c, bias=bias, padding_mode=padding_mode)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_torch_path_is_the_module_bit_for_bit(padding_mode):
    torch.manual_seed(0)
    conv, act = _conv(6, padding_mode), nn.GELU()
    x = torch.randn(2, 6, 5, 7)
    assert torch.equal(dwconv3x3_gelu(x, conv.weight, conv.bias, padding_mode), act(conv(x)))
    assert torch.equal(conv_gelu(conv, x), act(conv(x)))  # what SS2D / GCFFN call
    channels_last = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert torch.equal(conv_gelu(conv, channels_last), act(conv(channels_last)))
    wide = nn.Conv2d(6, 6, 5, padding=2, groups=6)  # not 3x3: the module, then GELU
    assert torch.equal(conv_gelu(wide, x), act(wide(x)))


# (h, w, padding, bias, memory layout): odd sizes, 1-pixel images, both paddings and layouts
CASES = [
    (1, 1, "zeros", True, "first"),
    (1, 6, "zeros", False, "last"),
    (2, 3, "reflect", True, "first"),
    (3, 2, "reflect", False, "last"),
    (5, 7, "zeros", True, "last"),
    (5, 7, "reflect", True, "first"),
    (7, 4, "zeros", False, "first"),
    (7, 5, "reflect", True, "last"),
]


def _input(b, c, h, w, layout, dtype=torch.float32):
    x = torch.randn(b, c, h, w, device=DEVICE)
    if layout == "last":
        x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    return x.to(dtype).requires_grad_()


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_kernel_matches_torch_values_and_grads(triton, case):
    h, w, padding_mode, has_bias, layout = case
    c = 5 if layout == "first" else 8
    torch.manual_seed(h * 10 + w)
    x = _input(2, c, h, w, layout)
    weight = torch.randn(c, 1, 3, 3, device=DEVICE, requires_grad=True)
    bias = torch.randn(c, device=DEVICE, requires_grad=True) if has_bias else None
    inputs = [x, weight] + ([bias] if has_bias else [])
    y = dwconv3x3_gelu(x, weight, bias, padding_mode, impl="triton")
    y_ref = dwconv3x3_gelu(x, weight, bias, padding_mode, impl="torch")
    assert y.shape == x.shape and y.dtype == x.dtype
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    gy = torch.randn_like(y)
    grads = torch.autograd.grad(y, inputs, gy)
    grads_ref = torch.autograd.grad(y_ref, inputs, gy)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-5 * g_ref.abs().max().item())


def test_channel_slice_and_weight_grads_only(triton):
    """GCFFN's x2 is a channel slice of a (B, 2C, H, W) tensor: read in place."""
    torch.manual_seed(1)
    conv = _conv(4, "reflect").to(DEVICE)
    x2 = torch.randn(2, 8, 4, 5, device=DEVICE)[:, 4:]  # x needs no gradient
    y = dwconv3x3_gelu(x2, conv.weight, conv.bias, "reflect", impl="triton")
    y_ref = dwconv3x3_gelu(x2, conv.weight, conv.bias, "reflect", impl="torch")
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    g = torch.autograd.grad(y.square().sum(), [conv.weight, conv.bias])
    g_ref = torch.autograd.grad(y_ref.square().sum(), [conv.weight, conv.bias])
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-5)


def test_bfloat16_within_precision(triton):
    torch.manual_seed(2)
    conv = _conv(6, "zeros").to(DEVICE)
    x = _input(2, 6, 5, 3, "last", torch.bfloat16)
    y = dwconv3x3_gelu(x, conv.weight, conv.bias, "zeros", impl="triton")
    assert y.dtype == torch.bfloat16
    x32 = x.detach().float().requires_grad_()
    y32 = dwconv3x3_gelu(x32, conv.weight, conv.bias, "zeros", impl="torch")
    torch.testing.assert_close(y.float(), y32, rtol=1.6e-2, atol=1e-2)
    gy = torch.randn_like(y32)
    gx, gw = torch.autograd.grad(y, [x, conv.weight], gy.to(torch.bfloat16))
    gx32, gw32 = torch.autograd.grad(y32, [x32, conv.weight], gy)
    assert gx.dtype == torch.bfloat16 and gw.dtype == torch.float32
    torch.testing.assert_close(gx.float(), gx32, rtol=1.6e-2, atol=2e-2)
    torch.testing.assert_close(gw, gw32, rtol=1.6e-2, atol=2e-2)


def test_bad_arguments(triton):
    x = torch.randn(1, 3, 1, 4)
    with pytest.raises(ValueError, match="weight"):
        dwconv3x3_gelu(x, torch.randn(3, 1, 5, 5))
    with pytest.raises(ValueError, match="reflect padding needs"):
        dwconv3x3_gelu(x, torch.randn(3, 1, 3, 3), None, "reflect", impl="triton")
    with pytest.raises(ValueError, match="takes padding"):
        dwconv3x3_gelu(x, torch.randn(3, 1, 3, 3), None, "replicate", impl="triton")
    with pytest.raises(ValueError, match="takes padding"):
        dwconv3x3_gelu(x.double(), torch.randn(3, 1, 3, 3).double(), impl="triton")


@pytest.mark.slow
def test_kernels_compile_for_sm90():
    """The real compiler (sm_90, no GPU needed) accepts every kernel the interpreter ran."""
    pytest.importorskip("triton.backends.nvidia")
    assert run_in_subprocess("dwconv", 90).count("REG:") == 12
