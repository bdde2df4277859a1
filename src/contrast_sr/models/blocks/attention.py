"""Attention core shared by window self-attention and OCAB: SDPA, explicit, clipped softmax.

All functions take q (B, nW, h, n, d), k and v (B, nW, h, m, d) and an additive bias that
broadcasts to (nW, h, n, m) (shape (h, n, m) or (nW, h, n, m)); they return (B, nW, h, n, d).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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

    ``impl="sdpa"`` uses ``F.scaled_dot_product_attention`` with the bias as ``attn_mask``;
    ``"explicit"`` computes softmax(q·kᵀ/√d + bias)·v, ``chunk`` windows at a time so the score
    tensor stays small. ``clip=(zeta, gamma)`` selects clipped softmax (always explicit).
    """
    if clip is None and impl == "sdpa":
        mask = None if bias is None else bias.to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    nw = q.shape[1]
    if nw <= chunk:
        return _explicit(q, k, v, bias, clip)
    outs = []
    per_window_bias = bias is not None and bias.dim() == 4 and bias.shape[0] > 1
    for i in range(0, nw, chunk):
        b = bias[i : i + chunk] if per_window_bias else bias
        outs.append(
            _explicit(q[:, i : i + chunk], k[:, i : i + chunk], v[:, i : i + chunk], b, clip)
        )
    return torch.cat(outs, dim=1)
