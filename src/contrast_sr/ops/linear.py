"""``F.linear`` on channels-last tokens, with a fused CPU path for the models' narrow layers.

The default model's linear layers have K = 32-64 inputs and 32-96 outputs over 65536 tokens
(a 256² map). torch's CPU GEMM takes 1.7-4.1 ms for such a product on 2 threads; the numba
kernel of :mod:`contrast_sr.ops.linear_kernels` keeps each tile's accumulators in vector
registers and runs at the memory's pace (1.3-2.8 ms). It runs for CPU inference only (float32,
no gradient, not inside a trace, export or ``torch.compile``) on contiguous inputs of at least
``MIN_TOKENS`` tokens when the outputs are a multiple of 16; everything else goes to
``F.linear``. Outputs agree with torch's within float32 rounding (another summation order).

``residual`` adds a tensor to the output, ``residual + F.linear(x, weight, bias)``: the
pre-norm blocks' ``x + mixer(norm(x))`` ends in a linear layer, and the kernel adds the
residual to each block of output rows while they are in cache, instead of a separate pass
that reads both maps back and writes a third (about 2 ms per (1, 256, 256, 32) map on 2
threads once the maps outgrow the caches).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrast_sr.ops.scan.numba_cpu import inference_ready, numba, numba_threads

if numba is not None:
    from contrast_sr.ops.linear_kernels import linear_kernel

MIN_TOKENS = 4096  # below this the kernel launch costs more than it saves


def _frozen_float32(t: torch.Tensor) -> bool:
    return t.dtype == torch.float32 and not (torch.is_grad_enabled() and t.requires_grad)


def available(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> bool:
    """Whether the fused kernel may compute ``F.linear(x, weight, bias)``: numba installed,
    contiguous float32 CPU x (..., K) of at least ``MIN_TOKENS`` tokens, weight (N, K) with N a
    multiple of 16, bias (N,) or None, no gradient wanted, no graph capture."""
    if not inference_ready(x) or x.dim() < 1:
        return False
    K = x.shape[-1]
    return (
        weight.dim() == 2
        and weight.shape[1] == K > 0
        and weight.shape[0] % 16 == 0
        and weight.device.type == "cpu"
        and (bias is None or (bias.shape == weight.shape[:1] and _frozen_float32(bias)))
        and _frozen_float32(weight)
        and x.is_contiguous()
        and x.numel() >= MIN_TOKENS * K
    )


def _fits(residual: torch.Tensor | None, x: torch.Tensor, N: int) -> bool:
    """Whether the kernel can add ``residual``: none, or a contiguous float32 CPU tensor of the
    output's shape (..., N) with no gradient wanted."""
    return residual is None or (
        residual.shape == (*x.shape[:-1], N)
        and residual.device.type == "cpu"
        and residual.is_contiguous()
        and _frozen_float32(residual)
    )


def linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` [``residual + F.linear(...)``]: x (..., K), weight (N, K),
    bias (N,) or None, residual broadcastable to (..., N) or None -> (..., N); the fused kernel
    where :func:`available` says so (and the residual has the output's shape), else torch."""
    if not (available(x, weight, bias) and _fits(residual, x, weight.shape[0])):
        y = F.linear(x, weight, bias)
        return y if residual is None else residual + y
    N, K = weight.shape
    wt = weight.detach().t().contiguous()  # (K, N)
    shift = bias.detach().contiguous() if bias is not None else torch.zeros(N)
    res = torch.empty(0) if residual is None else residual.detach().view(-1)
    out = torch.empty(*x.shape[:-1], N)
    with numba_threads():
        linear_kernel(
            x.detach().view(-1).numpy(), wt.view(-1).numpy(), shift.numpy(), res.numpy(),
            out.view(-1).numpy(), x.numel() // K, K, N,
        )  # fmt: skip
    return out


__all__ = ["MIN_TOKENS", "available", "linear"]
