"""Which precisions are safe for a model on a device (``--precision fp32|bf16|fp16``).

bf16 has float32's exponent range: safe for every model, on CPU and GPU (autocast; the selective
scan accumulates in float32 itself). fp16 tops out at 65504: attention logits and softmax inputs
of window-attention SR models overflow to inf/NaN (HAT, SwinIR, and OCAB in every Contrast
model), so fp16 is refused for any model with an attention module, and on CPU, where it is slow
and partly unsupported. Channel attention (CAB's squeeze-excite gate) has no softmax and is fine.
"""

from __future__ import annotations

import torch
from torch import nn

from contrast_sr.errors import ArgumentError
from contrast_sr.utils.device import precision_dtype


def attention_types() -> tuple[type[nn.Module], ...]:
    """The module types whose attention overflows float16: the Contrast blocks' window
    attention and OCAB, and torch's own multi-head attention."""
    from contrast_sr.models.blocks import OCAB, WindowAttention

    return (WindowAttention, OCAB, nn.MultiheadAttention)


def has_attention(model: nn.Module) -> bool:
    """True if any submodule is a (window / overlapping cross / multi-head) attention module."""
    types = attention_types()
    return any(isinstance(module, types) for module in model.modules())


def check_precision(model: nn.Module, device: torch.device, precision: str) -> None:
    """Raise a one-line ArgumentError (``precision``) if it is unsafe or unsupported here."""
    precision_dtype(precision)  # unknown names
    if precision == "fp16":
        if device.type == "cpu":
            raise ArgumentError("precision", "fp16 is not supported on CPU; use bf16 or fp32")
        if has_attention(model):
            raise ArgumentError(
                "precision",
                f"fp16 is unsafe for {type(model).__name__}: its attention overflows float16 "
                "(NaN/inf outputs); use bf16 or fp32",
            )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ArgumentError("precision", "bf16 is not supported by this GPU; use fp32")
