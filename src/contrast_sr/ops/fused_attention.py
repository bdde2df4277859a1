"""Window attention with its gradient for CPU training, fused in numba (flash-attention style).

:func:`fused_window_attention` computes ``softmax(q kᵀ / √d + bias) v`` per window and head for
q (B, nW, h, n, d), k and v (B, nW, h, m, d) and a per-head bias (h, n, m) (or none), with the
gradients of q, k, v and the bias. PyTorch's SDPA falls back to its "math" kernel on the CPU
when the bias needs a gradient, and both it and the explicit form then write, re-read and
differentiate (B, nW, h, n, m) score tensors (255 MB per OCAB at contrast_light's training
shape). Here each (window, head) is one job whose scores stay in the cache: the forward keeps
only the output and each query's log-sum-exp, the backward recomputes the probabilities.
exp is a polynomial (relative error ~2e-7). :func:`available` says when it can run.
"""

from __future__ import annotations

import numpy as np
import torch

from contrast_sr.ops.scan.numba_cpu import numba, numba_threads
from contrast_sr.ops.tracing import is_capturing

if numba is not None:
    from contrast_sr.ops.fused_attention_kernels import attention_backward, attention_forward


def available(q: torch.Tensor) -> bool:
    """numba installed, a float32/bf16/fp16 CPU tensor, not inside a trace/export/compile."""
    return (
        numba is not None
        and q.device.type == "cpu"
        and q.dtype in (torch.float32, torch.bfloat16, torch.float16)
        and not is_capturing()
    )


def _flat(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().contiguous().view(-1).numpy()


class _FusedWindowAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias):
        B, nW, h, n, d = q.shape
        m, J = k.shape[3], B * nW * h
        q32, k32, v32 = (t.detach().float().contiguous() for t in (q, k, v))
        b32 = torch.empty(0) if bias is None else bias.detach().float().contiguous()
        out, lse = torch.empty(B, nW, h, n, d), torch.empty(J, n)
        scale = np.float32(d**-0.5)
        with numba_threads():
            attention_forward(
                _flat(q32), _flat(k32), _flat(v32), _flat(b32), out.view(-1).numpy(),
                lse.view(-1).numpy(), J, h, n, m, d, scale,
            )  # fmt: skip
        ctx.save_for_backward(q32, k32, v32, b32, out, lse)
        ctx.dtypes = (q.dtype, k.dtype, v.dtype, None if bias is None else bias.dtype)
        return out.to(q.dtype)

    @staticmethod
    def backward(ctx, dout):
        q, k, v, bias, out, lse = ctx.saved_tensors
        B, nW, h, n, d = q.shape
        m, J = k.shape[3], B * nW * h
        # jobs (group of windows, head), at least two per thread so the last round is short
        groups = max(1, min(B * nW, -(-2 * torch.get_num_threads() // h)))
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        has_bias = bias.numel() > 0
        dbias = torch.empty(groups, h, n, m) if has_bias else torch.empty(0)
        with numba_threads():
            attention_backward(
                _flat(q), _flat(k), _flat(v), _flat(bias), _flat(out), _flat(lse), _flat(dout),
                dq.view(-1).numpy(), dk.view(-1).numpy(), dv.view(-1).numpy(),
                dbias.view(-1).numpy(), J, h, groups, n, m, d, np.float32(d**-0.5),
            )  # fmt: skip
        qt, kt, vt, bt = ctx.dtypes
        gbias = dbias.sum(0).to(bt) if has_bias and ctx.needs_input_grad[3] else None
        return dq.to(qt), dk.to(kt), dv.to(vt), gbias


def fused_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """q (B, nW, h, n, d), k, v (B, nW, h, m, d), bias (h, n, m) or None -> (B, nW, h, n, d)
    in q's dtype, differentiable in q, k, v and bias."""
    if k.shape != v.shape or q.shape[:3] != k.shape[:3] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"fused_window_attention: q {tuple(q.shape)}, k/v {tuple(k.shape)}")
    h, n, m = q.shape[2], q.shape[3], k.shape[3]
    if bias is not None and bias.shape != (h, n, m):
        raise ValueError(f"fused_window_attention: bias {tuple(bias.shape)} is not {(h, n, m)}")
    if not available(q):
        raise RuntimeError("fused_window_attention needs numba and a CPU tensor")
    with torch.autocast("cpu", enabled=False):
        return _FusedWindowAttention.apply(q, k, v, bias)


__all__ = ["available", "fused_window_attention"]
