"""The gate of the gated conv FFN (GEGLU) for CPU inference, one fused numba pass.

:func:`gated_dwconv3x3_gelu` takes the channels-last first-layer output h (b, H, W, 2F)
*without* its bias and returns (b, H, W, F)::

    x1, x2 = h[..., :F] + bias[:F], h[..., F:] + bias[F:]
    out = x1 * GELU(depthwise_conv3x3(x2) + dw_bias)      (padding "zeros" or "reflect")

which is what ``GatedConvFFN`` computes between its two 1x1 convolutions, in one read of h and
one write, instead of a bias copy, a convolution, a GELU and a product each passing over maps of
F channels (the largest tensors of the default model). GELU is the exact (erf) form with a
float32 rational erf (error ~1e-7). No gradient: :func:`available` says when it may run.
"""

from __future__ import annotations

import torch

from contrast_sr.ops.scan.numba_cpu import numba, numba_threads
from contrast_sr.ops.tracing import is_capturing

if numba is not None:
    from contrast_sr.ops.gated_dwconv_kernels import gated_dwconv_kernel

PADDINGS = ("zeros", "reflect")


def available(h: torch.Tensor) -> bool:
    """Whether :func:`gated_dwconv3x3_gelu` can run on ``h``: numba installed, a float32 CPU
    tensor, no gradient wanted, not inside a trace, export or ``torch.compile``."""
    return (
        numba is not None
        and h.device.type == "cpu"
        and h.dtype == torch.float32
        and not (torch.is_grad_enabled() and h.requires_grad)
        and not is_capturing()
    )


def gated_dwconv3x3_gelu(
    h: torch.Tensor,
    bias: torch.Tensor | None,
    dw_weight: torch.Tensor,
    dw_bias: torch.Tensor | None,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """h (b, H, W, 2F) float32 channels-last; bias (2F,) of the first layer or None; dw_weight
    (F, 1, 3, 3); dw_bias (F,) or None -> (b, H, W, F) (see the module docstring)."""
    b, H, W, c2 = h.shape
    F = c2 // 2
    if c2 % 2 or dw_weight.shape != (F, 1, 3, 3):
        raise ValueError(
            f"gated_dwconv3x3_gelu: h {tuple(h.shape)} and dw_weight {tuple(dw_weight.shape)} "
            "do not fit (2F channels, (F, 1, 3, 3))"
        )
    if padding_mode not in PADDINGS:
        raise ValueError(f"gated_dwconv3x3_gelu: padding {padding_mode!r} not in {PADDINGS}")
    if not available(h):
        raise RuntimeError("gated_dwconv3x3_gelu needs numba, a float32 CPU tensor, no gradient")
    zeros = torch.zeros(c2)
    b1 = zeros if bias is None else bias.detach().float().contiguous()
    taps = dw_weight.detach().float().reshape(F, 9).t().contiguous()  # (9, F)
    b2 = zeros[:F] if dw_bias is None else dw_bias.detach().float().contiguous()
    hc = h.detach().contiguous()
    out = torch.empty(b, H, W, F)
    with numba_threads():
        gated_dwconv_kernel(
            hc.view(-1).numpy(), b1.numpy(), taps.view(-1).numpy(), b2.numpy(),
            out.view(-1).numpy(), b, H, W, F, padding_mode == "reflect",
        )  # fmt: skip
    return out


__all__ = ["PADDINGS", "available", "gated_dwconv3x3_gelu"]
