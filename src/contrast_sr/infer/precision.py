"""Which precisions are safe for a model on a device (``--precision fp32|bf16|fp16``).

bf16 has float32's exponent range: safe for every model, on CPU and GPU (autocast; the selective
scan accumulates in float32 itself). fp16 tops out at 65504: attention logits and softmax inputs
of window-attention SR models overflow to inf/NaN (HAT, SwinIR, and OCAB in every Contrast
model), so fp16 is refused for any model with an attention module, and on CPU, where it is slow
and partly unsupported.
"""

from __future__ import annotations

import torch
from torch import nn

from contrast_sr.errors import UsageError
from contrast_sr.utils.device import PRECISIONS

_ATTENTION_MARKERS = ("attention", "attn", "ocab")


def has_attention(model: nn.Module) -> bool:
    """True if any submodule looks like (window / overlapping cross) attention."""
    for module in model.modules():
        name = type(module).__name__.lower()
        if any(marker in name for marker in _ATTENTION_MARKERS):
            return True
    return False


def check_precision(model: nn.Module, device: torch.device, precision: str) -> None:
    """Raise a one-line UsageError if ``precision`` is unsafe or unsupported here."""
    if precision not in PRECISIONS:
        raise UsageError(
            "--precision", f"unknown {precision!r} (choose from {', '.join(PRECISIONS)})"
        )
    if precision == "fp16":
        if device.type == "cpu":
            raise UsageError("--precision fp16", "not supported on CPU; use bf16 or fp32")
        if has_attention(model):
            raise UsageError(
                "--precision fp16",
                f"unsafe for {type(model).__name__}: its attention overflows float16 "
                "(NaN/inf outputs); use bf16 or fp32",
            )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError("--precision bf16", "this GPU has no bfloat16 support; use fp32")
