"""Argument checks and the dtype rule every selective-scan backend shares (a leaf module).

Channels-last contract of a backend ``fn(u, delta, A, B, C, D, delta_bias, delta_softplus)``:
u, delta (b, L, dim); A (dim, N); B, C (b, L, groups, N) with ``groups`` dividing dim;
D, delta_bias (dim,) or None. It returns y (b, L, dim) in u's dtype.
"""

from __future__ import annotations

import torch


def compute_dtype(u: torch.Tensor) -> torch.dtype:
    """The dtype a scan accumulates in: float64 for float64 input, float32 otherwise."""
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def check_scan_args(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
) -> None:
    """Raise ValueError naming the first argument whose shape breaks the channels-last contract."""
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(
            f"u and delta must be (b, L, dim) alike, got {tuple(u.shape)}, {tuple(delta.shape)}"
        )
    b, L, dim = u.shape
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f"A must be (dim={dim}, N), got {tuple(A.shape)}")
    N = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if t.dim() != 4 or t.shape[0] != b or t.shape[1] != L or t.shape[3] != N:
            raise ValueError(f"{name} must be (b={b}, L={L}, groups, N={N}), got {tuple(t.shape)}")
    if B.shape[2] != C.shape[2] or dim % B.shape[2]:
        raise ValueError(f"groups ({B.shape[2]}, {C.shape[2]}) must match and divide dim={dim}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and t.shape != (dim,):
            raise ValueError(f"{name} must be (dim={dim},), got {tuple(t.shape)}")
