"""Device and precision choices shared by every command (``--device``, ``--precision``)."""

from __future__ import annotations

import contextlib

import torch

from contrast_sr.errors import ArgumentError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an unavailable explicit choice raises
    ArgumentError (``device``)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ArgumentError("device", f"{name} requested but CUDA is not available")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ArgumentError("device", "mps requested but MPS is not available")
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ArgumentError("device", f"unknown device {name!r} (choose from {', '.join(DEVICES)})")
    return torch.device(name)


def module_device(module: torch.nn.Module, default: torch.device) -> torch.device:
    """The device of ``module``'s first parameter (``default`` for a module without any)."""
    param = next(iter(module.parameters()), None)
    return default if param is None else param.device


def precision_dtype(precision: str) -> torch.dtype:
    """The autocast dtype of ``fp32`` / ``bf16`` / ``fp16`` (ArgumentError for other names)."""
    if precision not in _DTYPES:
        raise ArgumentError(
            "precision", f"unknown {precision!r} (choose from {', '.join(PRECISIONS)})"
        )
    return _DTYPES[precision]


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for bf16/fp16, a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision_dtype(precision))
