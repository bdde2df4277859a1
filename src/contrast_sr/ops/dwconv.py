"""Depthwise 3x3 convolution fused with its exact GELU: ``GELU(conv(x))`` in one pass.

:func:`dwconv3x3_gelu` is what ``F.gelu(nn.Conv2d(C, C, 3, padding=1, groups=C, bias=...,
padding_mode=...)(x))`` computes, for channels-first x (B, C, H, W). Its PyTorch path makes
exactly those calls (CPU results are bit-identical to the module and the GELU). On CUDA tensors,
when triton imports, eager calls run :mod:`contrast_sr.ops.dwconv_triton` instead: the forward
reads x once per tap and writes only GELU's output (fp32 inside); the backward recomputes the
convolution rather than storing it. Traced, exported or compiled, the PyTorch path runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrast_sr.ops.tracing import is_capturing
from contrast_sr.ops.triton_select import use_triton

TRITON_PADDINGS = ("zeros", "reflect")  # padding modes the kernel implements
TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)  # fp32 arithmetic inside


def _as_autocast_would(x: torch.Tensor) -> torch.Tensor:
    """x cast to the CUDA autocast dtype while autocast is on (what F.conv2d would compute in)."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        enabled, dtype = torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")
    else:
        enabled, dtype = torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()
    return x.to(dtype) if enabled and x.is_floating_point() else x


def dwconv3x3_gelu_torch(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding_mode: str
) -> torch.Tensor:
    """The PyTorch path: nn.Conv2d's own calls for a 3x3, stride 1, padding 1 depthwise conv,
    then ``F.gelu`` (erf form)."""
    groups = x.shape[1]
    if padding_mode == "zeros":
        z = F.conv2d(x, weight, bias, 1, 1, 1, groups)
    else:
        z = F.conv2d(F.pad(x, (1, 1, 1, 1), mode=padding_mode), weight, bias, 1, 0, 1, groups)
    return F.gelu(z)


def dwconv3x3_gelu(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding_mode: str = "zeros",
    impl: str | None = None,
) -> torch.Tensor:
    """GELU(depthwise 3x3 conv of x): x (B, C, H, W), weight (C, 1, 3, 3), bias (C,) or None,
    ``padding_mode`` as nn.Conv2d's ("zeros", "reflect"; the PyTorch path also "replicate",
    "circular"). Returns (B, C, H, W) in x's dtype (under CUDA autocast: the autocast dtype, as
    the convolution would). ``impl``: "auto" (default), "torch" or "triton"."""
    if x.dim() != 4 or weight.shape != (x.shape[1], 1, 3, 3):
        raise ValueError(
            f"dwconv3x3_gelu expects x (B, C, H, W) and weight (C, 1, 3, 3), got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}"
        )
    if is_capturing() or not use_triton(x, impl):
        return dwconv3x3_gelu_torch(x, weight, bias, padding_mode)
    if padding_mode not in TRITON_PADDINGS or x.dtype not in TRITON_DTYPES:
        if impl == "triton":
            raise ValueError(
                f"the Triton kernel takes padding {TRITON_PADDINGS} and dtypes {TRITON_DTYPES}, "
                f"not {padding_mode!r}, {x.dtype}"
            )
        return dwconv3x3_gelu_torch(x, weight, bias, padding_mode)
    from contrast_sr.ops.dwconv_triton import DwConv3x3Gelu

    if x.is_cuda:
        x = _as_autocast_would(x)
    return DwConv3x3Gelu.apply(x, weight, bias, padding_mode == "reflect")
