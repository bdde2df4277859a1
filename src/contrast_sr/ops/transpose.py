"""A batched transpose of the last two axes into a new contiguous tensor, fast on the CPU.

The mamba-layout scan entries (:func:`contrast_sr.ops.selective_scan`,
:func:`contrast_sr.ops.selective_scan_fn`) move u, delta, y and their gradients between
(b, dim, L) and the kernels' channels-last (b, L, dim). ``x.transpose(1, 2).contiguous()``
does it one strided element at a time (about 8x a plain copy here at (8, 240, 4096)); the numba
kernel (:mod:`contrast_sr.ops.transpose_kernels`) moves 16 x 16 tiles through a local buffer
(about 2.5x faster for (b, dim, L) -> (b, L, dim)). Used for float32 CPU tensors when numba is
installed and no trace or export is running; torch's copy everywhere else. Differentiable:
the gradient is transposed back the same way.
"""

from __future__ import annotations

import torch

from contrast_sr.ops.scan.layout import contiguous_copy
from contrast_sr.ops.scan.numba_cpu import numba, numba_threads
from contrast_sr.ops.tracing import is_capturing

if numba is not None:
    from contrast_sr.ops.transpose_kernels import transpose_kernel


def available(x: torch.Tensor) -> bool:
    """Whether the numba kernel may transpose ``x``: numba installed, a 3-D float32 CPU
    tensor, not inside a trace, an ONNX export or ``torch.compile``."""
    return (
        numba is not None
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 3
        and not is_capturing()
    )


def _transposed(x: torch.Tensor) -> torch.Tensor:
    """(b, m, n) -> new contiguous (b, n, m) through the kernel."""
    x = x.detach().contiguous()
    b, m, n = x.shape
    out = torch.empty(b, n, m, dtype=x.dtype)
    if x.numel():
        with numba_threads():
            transpose_kernel(x.view(-1).numpy(), out.view(-1).numpy(), b, m, n)
    return out


class _TransposeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return _transposed(x)

    @staticmethod
    def backward(ctx, grad):
        return _transposed(grad)


def transpose_last2(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """(b, m, n) -> contiguous (b, n, m) in ``dtype`` (default: x's), a new tensor even when
    the axes have length 1; differentiable."""
    dtype = x.dtype if dtype is None else dtype
    if dtype == x.dtype and available(x):
        return _TransposeFn.apply(x)
    return contiguous_copy(x.transpose(1, 2), dtype)


__all__ = ["available", "transpose_last2"]
