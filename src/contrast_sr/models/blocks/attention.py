"""Attention core shared by window self-attention and OCAB: SDPA, explicit, clipped softmax.

All functions take q (B, nW, h, n, d), k and v (B, nW, h, m, d) and an additive bias that
broadcasts to (nW, h, n, m) (shape (h, n, m) or (nW, h, n, m)); they return (B, nW, h, n, d).

The SDPA path hands PyTorch 4-D, contiguous q/k/v and a 4-D float mask (:func:`sdpa_inputs`),
the form its fused kernels accept (FlashAttention, memory-efficient, and the fused CPU kernel);
on CUDA the head dim is zero-padded to a multiple of 8 (:func:`sdpa_head_dim`), which those
kernels need in half precision. Which kernel each attention module gets is reported by
:mod:`contrast_sr.models.blocks.attention_backend`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SDPA_HEAD_DIM_MULTIPLE = 8  # flash: d % 8 == 0; mem-efficient: d % 8 (half) or % 4 (fp32)


def clipped_softmax(logits: torch.Tensor, zeta: float, gamma: float) -> torch.Tensor:
    """arXiv 2306.12929: clip(softmax(x) * (gamma - zeta) + zeta, 0, 1) over the last dim."""
    return torch.clamp(torch.softmax(logits, dim=-1) * (gamma - zeta) + zeta, 0.0, 1.0)


def _explicit(q, k, v, bias, clip):
    scale = q.shape[-1] ** -0.5
    logits = (q * scale) @ k.transpose(-2, -1)
    if bias is not None:
        logits = logits + bias
    probs = torch.softmax(logits, dim=-1) if clip is None else clipped_softmax(logits, *clip)
    return probs @ v


def sdpa_head_dim(head_dim: int, device: torch.device) -> int:
    """Head dim given to SDPA: on CUDA rounded up to a multiple of 8, elsewhere unchanged.

    Zero columns in q and k add nothing to q·kᵀ and zero columns in v give zero output columns
    that are cut off again, so padding changes no value (the softmax scale stays 1/√d).
    """
    if device.type != "cuda":
        return head_dim
    return -(-head_dim // SDPA_HEAD_DIM_MULTIPLE) * SDPA_HEAD_DIM_MULTIPLE


def _per_window(bias: torch.Tensor | None) -> bool:
    return bias is not None and bias.dim() == 4 and bias.shape[0] > 1


def sdpa_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    head_dim: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Window tensors -> the 4-D contiguous q, k, v and float mask SDPA's fused kernels take.

    Bias None or per head ((h, n, m)): q (B·nW, h, n, d'), k/v (B·nW, h, m, d'), mask
    (1, h, n, m) or None. Bias per window ((nW, h, n, m), e.g. with the shift mask): windows
    move into the head axis, q (B, nW·h, n, d'), mask (1, nW·h, n, m), so the mask broadcasts
    over the batch without a copy. d' = ``head_dim`` (default :func:`sdpa_head_dim`), zero
    padded; the mask has q's dtype.
    """
    _, nw, h, n, d = q.shape
    m = k.shape[-2]
    if _per_window(bias):
        shape_q, shape_kv, mask_shape = (-1, nw * h, n, d), (-1, nw * h, m, d), (1, nw * h, n, m)
    else:
        shape_q, shape_kv, mask_shape = (-1, h, n, d), (-1, h, m, d), (1, h, n, m)
    q4 = q.reshape(shape_q).contiguous()
    k4 = k.reshape(shape_kv).contiguous()
    v4 = v.reshape(shape_kv).contiguous()
    pad = (sdpa_head_dim(d, q.device) if head_dim is None else head_dim) - d
    if pad:
        q4, k4, v4 = (F.pad(t, (0, pad)) for t in (q4, k4, v4))
    mask = None if bias is None else bias.to(q.dtype).reshape(mask_shape).contiguous()
    return q4, k4, v4, mask


def sdpa_window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None = None,
    head_dim: int | None = None,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` on :func:`sdpa_inputs`, back to (B, nW, h, n, d).

    ``head_dim``: the (padded) head dim SDPA sees, default :func:`sdpa_head_dim`.
    """
    b, nw, h, n, d = q.shape
    q4, k4, v4, mask = sdpa_inputs(q, k, v, bias, head_dim)
    scale = None if q4.shape[-1] == d else d**-0.5
    out = F.scaled_dot_product_attention(q4, k4, v4, attn_mask=mask, scale=scale)
    if out.shape[-1] != d:
        out = out[..., :d]
    return out.reshape(b, nw, h, n, d)


def window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None = None,
    impl: str = "sdpa",
    clip: tuple[float, float] | None = None,
    chunk: int = 16,
) -> torch.Tensor:
    """Multi-head attention per window with an additive bias (position bias + shift mask).

    ``impl="sdpa"`` uses ``F.scaled_dot_product_attention`` on :func:`sdpa_inputs` (the bias
    as ``attn_mask``); ``"explicit"`` computes softmax(q·kᵀ/√d + bias)·v, ``chunk`` windows at
    a time so the score tensor stays small. ``clip=(zeta, gamma)`` selects clipped softmax
    (always explicit).
    """
    if clip is None and impl == "sdpa":
        return sdpa_window_attention(q, k, v, bias)
    nw = q.shape[1]
    if nw <= chunk:
        return _explicit(q, k, v, bias, clip)
    outs = []
    per_window_bias = _per_window(bias)
    for i in range(0, nw, chunk):
        b = bias[i : i + chunk] if per_window_bias else bias
        outs.append(
            _explicit(q[:, i : i + chunk], k[:, i : i + chunk], v[:, i : i + chunk], b, clip)
        )
    return torch.cat(outs, dim=1)
