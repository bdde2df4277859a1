"""OCAB's overlapping window attention for inference on the CPU, one fused numba pass.

:func:`overlap_attention` takes the channels-last qkv map (b, H, W, 3C) of OCAB (q, k, v each C
channels, heads of C/heads) and returns the attention output map (b, H, W, C): queries from the
non-overlapping ws x ws windows, keys and values from the ows x ows window centred on each
(zero padded at the image border, the padded keys not masked, as in HAT), with an optional
additive bias (heads, ws², ows²). It computes what OCAB's SDPA path computes (softmax(q kᵀ/√d +
bias) v, float32, exp to ~2e-7 relative) without the window partition, key/value unfold and
output window-reverse copies, and without SDPA's small-head-dim overhead.

No gradient: OCAB uses it under ``no_grad`` / inference only (:func:`available`).
"""

from __future__ import annotations

import numpy as np
import torch

from contrast_sr.ops.scan.numba_cpu import numba, numba_threads
from contrast_sr.ops.tracing import is_capturing

if numba is not None:
    from contrast_sr.ops.overlap_attention_kernels import overlap_attention_kernel


def available(qkv: torch.Tensor) -> bool:
    """Whether :func:`overlap_attention` can run on ``qkv``: numba installed, a float32/bf16/fp16
    CPU tensor, no gradient wanted, not inside a trace, export or ``torch.compile``."""
    return (
        numba is not None
        and qkv.device.type == "cpu"
        and qkv.dtype in (torch.float32, torch.bfloat16, torch.float16)
        and not (torch.is_grad_enabled() and qkv.requires_grad)
        and not is_capturing()
    )


def overlap_attention(
    qkv: torch.Tensor,
    heads: int,
    window: int,
    overlap_window: int,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """qkv (b, H, W, 3C) with H, W multiples of ``window`` -> (b, H, W, C) in qkv's dtype.
    ``overlap_window`` (ows >= ws, ows - ws even) is the key window; ``bias`` (heads, ws², ows²).
    """
    b, H, W, c3 = qkv.shape
    C = c3 // 3
    ws, ows = window, overlap_window
    if c3 % 3 or C % heads or H % ws or W % ws or ows < ws or (ows - ws) % 2:
        raise ValueError(
            f"overlap_attention: qkv {tuple(qkv.shape)} does not fit heads {heads}, "
            f"window {ws}, overlap window {ows}"
        )
    if bias is not None and bias.shape != (heads, ws * ws, ows * ows):
        raise ValueError(
            f"overlap_attention: bias {tuple(bias.shape)} is not {(heads, ws * ws, ows * ows)}"
        )
    if not available(qkv):
        raise RuntimeError("overlap_attention needs numba, a CPU tensor and no gradient")
    f32 = torch.float32
    q = qkv.detach().to(f32).contiguous()
    bias32 = torch.empty(0) if bias is None else bias.detach().to(f32).contiguous()
    out = torch.empty(b, H, W, C)
    with numba_threads():
        overlap_attention_kernel(
            q.view(-1).numpy(), bias32.view(-1).numpy(), out.view(-1).numpy(),
            b, H, W, C, heads, ws, ows, np.float32((C // heads) ** -0.5),
        )  # fmt: skip
    return out.to(qkv.dtype)


__all__ = ["available", "overlap_attention"]
