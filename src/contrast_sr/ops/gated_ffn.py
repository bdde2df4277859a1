"""The whole gated conv FFN (GEGLU) for CPU inference, one fused numba pass over the map.

:func:`gated_conv_ffn` computes, for channels-last x (b, H, W, C)::

    h = x @ w1.T + b1;  h1, h2 = h[..., :F], h[..., F:]
    out = (h1 * GELU(depthwise_conv3x3(h2) + dw_bias)) @ w2.T + b2      (padding zeros/reflect)

which ``GatedConvFFN`` computes with two GEMMs, the fused gate of :mod:`gated_dwconv` and a
third GEMM, each writing a map of F channels (the largest tensors of the default model) that
the next reads back. Here each band of image rows keeps h1, h2 and the gate in local buffers
(:mod:`contrast_sr.ops.gated_ffn_kernels`): only x is read and the output written. C and F
must be multiples of 16 (the register-tiled GEMM); :func:`available` says when it may run.
GELU is the exact (erf) form, float32 (error ~1e-7). ``residual`` adds the block's skip
connection to each output row while it is in cache.
"""

from __future__ import annotations

import torch

from contrast_sr.ops.gated_dwconv import PADDINGS
from contrast_sr.ops.gated_dwconv import available as gate_available
from contrast_sr.ops.scan.numba_cpu import numba, numba_threads

if numba is not None:
    from contrast_sr.ops.gated_ffn_kernels import gated_ffn_kernel


def available(
    x: torch.Tensor,
    channels: int,
    hidden: int,
    padding_mode: str,
    residual: torch.Tensor | None = None,
) -> bool:
    """Whether :func:`gated_conv_ffn` can run: what the fused gate needs (numba, a float32 CPU
    tensor, no gradient, no graph capture) of x and of ``residual`` (if given, x's shape),
    ``channels`` and ``hidden`` multiples of 16, a padding it supports."""
    return (
        gate_available(x)
        and (residual is None or (residual.shape == x.shape and gate_available(residual)))
        and channels % 16 == 0
        and hidden % 16 == 0
        and channels > 0
        and hidden > 0
        and padding_mode in PADDINGS
    )


def gated_conv_ffn(
    x: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor | None,
    dw_weight: torch.Tensor,
    dw_bias: torch.Tensor | None,
    w2: torch.Tensor,
    b2: torch.Tensor | None,
    padding_mode: str = "zeros",
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """x (b, H, W, C); w1 (2F, C), b1 (2F,); dw_weight (F, 1, 3, 3), dw_bias (F,); w2 (C, F),
    b2 (C,); biases may be None -> (b, H, W, C) (see the module docstring); ``residual``
    (b, H, W, C), if given, is added to the output inside the pass."""
    b, H, W, C = x.shape
    F = w2.shape[1]
    if w1.shape != (2 * F, C) or dw_weight.shape != (F, 1, 3, 3) or w2.shape != (C, F):
        raise ValueError(
            f"gated_conv_ffn: x {tuple(x.shape)}, w1 {tuple(w1.shape)}, dw_weight "
            f"{tuple(dw_weight.shape)} and w2 {tuple(w2.shape)} do not fit ((b, H, W, C), "
            "(2F, C), (F, 1, 3, 3), (C, F))"
        )
    if residual is not None and residual.shape != x.shape:
        raise ValueError(
            f"gated_conv_ffn: residual {tuple(residual.shape)} is not x's {tuple(x.shape)}"
        )
    if not available(x, C, F, padding_mode, residual):
        raise RuntimeError(
            "gated_conv_ffn needs numba, float32 CPU tensors (x, residual) wanting no gradient, "
            f"C and F multiples of 16 and a padding in {PADDINGS}"
        )

    def vector(t: torch.Tensor | None, n: int) -> torch.Tensor:
        return torch.zeros(n) if t is None else t.detach().float().contiguous()

    w1t = w1.detach().float().t().contiguous()  # (C, 2F)
    w2t = w2.detach().float().t().contiguous()  # (F, C)
    taps = dw_weight.detach().float().reshape(F, 9).t().contiguous()  # (9, F)
    tokens = x.detach().contiguous()
    res = torch.empty(0) if residual is None else residual.detach().float().contiguous()
    out = torch.empty(b, H, W, C)
    with numba_threads():
        gated_ffn_kernel(
            tokens.view(-1).numpy(), w1t.view(-1).numpy(), vector(b1, 2 * F).numpy(),
            taps.view(-1).numpy(), vector(dw_bias, F).numpy(), w2t.view(-1).numpy(),
            vector(b2, C).numpy(), res.view(-1).numpy(), out.view(-1).numpy(), b, H, W, C, F,
            padding_mode == "reflect",
        )  # fmt: skip
    return out


__all__ = ["available", "gated_conv_ffn"]
