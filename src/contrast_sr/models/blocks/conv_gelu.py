"""GELU after a depthwise convolution, fused where the convolution is a plain depthwise 3x3."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from contrast_sr.ops.dwconv import dwconv3x3_gelu


def is_depthwise_3x3(conv: nn.Conv2d) -> bool:
    """True for a depthwise 3x3 conv with stride 1, padding 1, dilation 1."""
    return (
        conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == conv.in_channels == conv.out_channels
    )


def conv_gelu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``GELU(conv(x))`` for channels-first x (B, C, H, W) and a depthwise ``conv``.

    A depthwise 3x3 runs through :func:`contrast_sr.ops.dwconv3x3_gelu` with the module's own
    weight, bias and padding mode (the same values; on CUDA with triton one fused kernel); any
    other conv runs as the module, then ``F.gelu``. The module stays the parameter holder, so
    state-dict keys do not change."""
    if is_depthwise_3x3(conv):
        return dwconv3x3_gelu(x, conv.weight, conv.bias, conv.padding_mode)
    return F.gelu(conv(x))
