"""Argument checks and the dtype rule every selective-scan backend shares.

Channels-last contract of a backend ``fn(u, delta, A, B, C, D, delta_bias, delta_softplus)``:
u, delta (b, L, dim); A (dim, N); B, C (b, L, groups, N) with ``groups`` dividing dim;
D, delta_bias (dim,) or None; every tensor real. It returns y (b, L, dim) in u's dtype.

Errors are :class:`~contrast_sr.errors.ArgumentError` (a ``ValueError``) naming the argument.
Complex tensors are refused, never cast: a cast would drop the imaginary part silently. The
mamba_ssm-compatible :func:`contrast_sr.ops.selective_scan_fn` computes complex A exactly.
"""

from __future__ import annotations

import torch

from contrast_sr.errors import ArgumentError

COMPLEX_HINT = (
    "the fast scan backends are real-valued; use contrast_sr.ops.selective_scan_fn "
    "(mamba_ssm semantics: complex A, B/C as real pairs)"
)


def compute_dtype(u: torch.Tensor) -> torch.dtype:
    """The dtype a scan accumulates in: float64 for float64 input, float32 otherwise."""
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def check_real(**tensors: torch.Tensor | None) -> None:
    """ArgumentError naming the first complex tensor among ``tensors`` (None is skipped)."""
    for name, t in tensors.items():
        if t is not None and t.is_complex():
            raise ArgumentError(name, f"is complex ({t.dtype}); {COMPLEX_HINT}")


def check_scan_args(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
) -> None:
    """ArgumentError naming the first argument that breaks the channels-last contract."""
    check_real(u=u, delta=delta, A=A, B=B, C=C, D=D, delta_bias=delta_bias)
    if u.dim() != 3:
        raise ArgumentError("u", f"must be (b, L, dim), got {tuple(u.shape)}")
    if delta.shape != u.shape:
        raise ArgumentError("delta", f"must be shaped as u {tuple(u.shape)}, not {delta.shape}")
    b, L, dim = u.shape
    if A.dim() != 2 or A.shape[0] != dim:
        raise ArgumentError("A", f"A must be (dim={dim}, N), got {tuple(A.shape)}")
    N = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if t.dim() != 4 or t.shape[0] != b or t.shape[1] != L or t.shape[3] != N:
            raise ArgumentError(
                name, f"{name} must be (b={b}, L={L}, groups, N={N}), got {tuple(t.shape)}"
            )
    if B.shape[2] != C.shape[2] or dim % B.shape[2]:
        raise ArgumentError(
            "B", f"groups ({B.shape[2]}, {C.shape[2]}) must match and divide dim={dim}"
        )
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and t.shape != (dim,):
            raise ArgumentError(name, f"{name} must be (dim={dim},), got {tuple(t.shape)}")
