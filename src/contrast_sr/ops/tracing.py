"""Whether an op runs inside a graph capture, so it can pick its traceable formulation there;
and what a custom autograd Function should see when no graph is recorded.

Ops whose fast eager path is a custom ``torch.autograd.Function`` or a Python loop over the
sequence length check this where they are defined and switch to plain tensor ops, so that a
model exports without any change to it (a leaf module: imports only torch).
"""

from __future__ import annotations

import sys

import torch


def is_exporting() -> bool:
    """True under ``torch.jit.trace`` and during ``torch.onnx.export``."""
    if torch.jit.is_tracing():
        return True
    onnx = sys.modules.get("torch.onnx")  # not imported yet: no export can be running
    return onnx is not None and onnx.is_in_onnx_export()


def is_capturing() -> bool:
    """:func:`is_exporting`, or compiling with ``torch.compile`` (dynamo)."""
    return is_exporting() or torch.compiler.is_compiling()


def detached_unless_grad(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """The tensors as given while autograd records (grad mode on), else detached.

    A custom ``torch.autograd.Function`` sees ``ctx.needs_input_grad`` True for every parameter
    even under ``no_grad`` / ``inference_mode``; fed the detached tensors there, its forward
    knows it need not save anything for a backward (the fused scans save delta and state
    checkpoints, about 8% of an inference forward of the default model)."""
    if torch.is_grad_enabled():
        return tensors
    return tuple(None if t is None else t.detach() for t in tensors)
