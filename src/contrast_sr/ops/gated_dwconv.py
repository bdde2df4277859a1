"""The gate of the gated conv FFN (GEGLU) for CPU inference, one fused numba pass.

:func:`gated_dwconv3x3_gelu` takes the two halves h1, h2 (b, H, W, F) of the channels-last
first-layer output *without* its bias (two GEMMs of F outputs are faster than one of 2F here)
and returns (b, H, W, F)::

    x1, x2 = h1 + bias[:F], h2 + bias[F:]
    out = x1 * GELU(depthwise_conv3x3(x2) + dw_bias)      (padding "zeros" or "reflect")

which is what ``GatedConvFFN`` computes between its two 1x1 convolutions, in one read of h and
one write, instead of a bias copy, a convolution, a GELU and a product each passing over maps of
F channels (the largest tensors of the default model). GELU is the exact (erf) form with a
float32 rational erf (error ~1e-7). No gradient: :func:`available` says when it may run.
"""

from __future__ import annotations

import torch

from contrast_sr.ops.scan.numba_cpu import inference_ready, numba, numba_threads

if numba is not None:
    from contrast_sr.ops.gated_dwconv_kernels import gated_dwconv_kernel

PADDINGS = ("zeros", "reflect")


def available(h: torch.Tensor) -> bool:
    """Whether :func:`gated_dwconv3x3_gelu` can run on ``h``: numba installed, a float32 CPU
    tensor, no gradient wanted, not inside a trace, export or ``torch.compile``."""
    return inference_ready(h)


def gated_dwconv3x3_gelu(
    h1: torch.Tensor,
    h2: torch.Tensor,
    bias: torch.Tensor | None,
    dw_weight: torch.Tensor,
    dw_bias: torch.Tensor | None,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """h1, h2 (b, H, W, F) float32 channels-last, the two halves of the first layer's output
    without its bias; bias (2F,) or None; dw_weight (F, 1, 3, 3); dw_bias (F,) or None ->
    (b, H, W, F) (see the module docstring)."""
    b, H, W, F = h1.shape
    if h2.shape != h1.shape or dw_weight.shape != (F, 1, 3, 3):
        raise ValueError(
            f"gated_dwconv3x3_gelu: h1 {tuple(h1.shape)}, h2 {tuple(h2.shape)} and dw_weight "
            f"{tuple(dw_weight.shape)} do not fit ((b, H, W, F) twice, (F, 1, 3, 3))"
        )
    if padding_mode not in PADDINGS:
        raise ValueError(f"gated_dwconv3x3_gelu: padding {padding_mode!r} not in {PADDINGS}")
    if not (available(h1) and available(h2)):
        raise RuntimeError("gated_dwconv3x3_gelu needs numba, float32 CPU tensors, no gradient")
    zeros = torch.zeros(2 * F)
    b1 = zeros if bias is None else bias.detach().float().contiguous()
    taps = dw_weight.detach().float().reshape(F, 9).t().contiguous()  # (9, F)
    b2 = zeros[:F] if dw_bias is None else dw_bias.detach().float().contiguous()
    h1, h2 = h1.detach().contiguous(), h2.detach().contiguous()
    out = torch.empty(b, H, W, F)
    with numba_threads():
        gated_dwconv_kernel(
            h1.view(-1).numpy(), h2.view(-1).numpy(), b1.numpy(), taps.view(-1).numpy(),
            b2.numpy(), out.view(-1).numpy(), b, H, W, F, padding_mode == "reflect",
        )  # fmt: skip
    return out


__all__ = ["PADDINGS", "available", "gated_dwconv3x3_gelu"]
