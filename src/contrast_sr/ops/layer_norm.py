"""LayerNorm over the last dimension of channels-last tokens, with a fused CPU path.

torch's CPU LayerNorm spends most of its time per token when C is small (32 channels in the
default model: 1.5 ms for a 256² map on 2 threads, 17 calls per forward); the numba kernel of
:mod:`contrast_sr.ops.layer_norm_kernels` does the same two-pass float32 computation in 0.6 ms.
It runs for CPU inference only (float32, no gradient, not inside a trace, export or
``torch.compile``) on maps of at least ``MIN_TOKENS`` tokens (a strided one is made contiguous
first, as torch does); everything else goes to ``F.layer_norm``. Outputs agree with torch's
within float32 rounding (~1e-6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from contrast_sr.ops.scan.numba_cpu import inference_ready, numba, numba_threads

if numba is not None:
    from contrast_sr.ops.layer_norm_kernels import layer_norm_kernel

MIN_TOKENS = 4096  # below this the kernel launch costs more than it saves


def available(x: torch.Tensor) -> bool:
    """Whether the fused kernel may normalise ``x``: numba installed, a float32 CPU tensor of
    at least ``MIN_TOKENS`` tokens, no gradient wanted, no graph capture."""
    return inference_ready(x) and x.dim() >= 1 and x.numel() >= MIN_TOKENS * max(1, x.shape[-1])


def _fits(x: torch.Tensor, p: torch.Tensor | None) -> bool:
    """An affine parameter the kernel can take as is: absent, or float32 (C,) needing no grad."""
    return p is None or (
        p.shape == x.shape[-1:]
        and p.dtype == torch.float32
        and not (torch.is_grad_enabled() and p.requires_grad)
    )


def layer_norm(
    x: torch.Tensor,
    normalized_shape: Sequence[int],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """``F.layer_norm`` with the same arguments: the fused kernel for one normalised (last)
    dimension where :func:`available` says so and the parameters fit, else torch (which also
    keeps an exported graph's shapes static)."""
    fused = available(x) and tuple(normalized_shape) == tuple(x.shape[-1:]) and x.shape[-1] > 0
    if not (fused and _fits(x, weight) and _fits(x, bias)):
        return F.layer_norm(x, normalized_shape, weight, bias, eps)
    C = x.shape[-1]
    scale = weight.detach().contiguous() if weight is not None else torch.ones(C)
    shift = bias.detach().contiguous() if bias is not None else torch.zeros(C)
    tokens = x.detach().contiguous()
    out = torch.empty(x.shape)
    with numba_threads():
        layer_norm_kernel(
            tokens.view(-1).numpy(), scale.numpy(), shift.numpy(), out.view(-1).numpy(),
            x.numel() // C, C, np.float32(eps),
        )  # fmt: skip
    return out


__all__ = ["MIN_TOKENS", "available", "layer_norm"]
