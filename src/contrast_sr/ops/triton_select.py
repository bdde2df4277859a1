"""Which implementation an op with a Triton kernel runs: the rule shared by those ops.

``impl`` is ``None``/"auto" (the Triton kernel for CUDA tensors when triton imports, else the
PyTorch path), "torch" (always the PyTorch path) or "triton" (always the kernel; on CPU tensors
that needs ``TRITON_INTERPRET=1``, which is how the tests run it). Triton is imported only when a
kernel may run, so CPU users never import it. A leaf module: imports only torch.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch

IMPLS = ("auto", "torch", "triton")


@functools.cache
def triton_importable() -> bool:
    """True when ``import triton`` works (checked once)."""
    try:
        import triton
        import triton.language  # noqa: F401
    except ImportError:
        return False
    return True


def interpreter_requested() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for Triton's CPU interpreter (as Triton reads it)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on")


def use_triton(x: torch.Tensor, impl: str | None = None) -> bool:
    """Whether an op on ``x`` runs its Triton kernel under ``impl`` (see the module docstring).

    Auto never picks the kernel while ``torch.compile`` traces (Inductor fuses the PyTorch path
    itself); callers check tracing/export before this and keep their traceable path there.
    """
    if impl is None or impl == "auto":
        return x.is_cuda and not torch.compiler.is_compiling() and triton_importable()
    if impl == "torch":
        return False
    if impl == "triton":
        if not triton_importable():
            raise ImportError("impl='triton' needs triton (pip install triton)")
        return True
    raise ValueError(f"unknown impl {impl!r} (choose from {', '.join(IMPLS)})")


def on_device(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """Make x's CUDA device current while a kernel launches (Triton launches on the current one)."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()
