"""mamba_ssm's scan layout -> the channels-last layout of the backends (a leaf module).

mamba layout: u, delta, z (batch, dim, L); A (dim, N); B, C either constant (dim, N) or
variable (batch, N, L) (one group) or (batch, groups, N, L); D, delta_bias (dim,).
Channels-last: u, delta (batch, L, dim); B, C (batch, L, groups, N).
"""

from __future__ import annotations

import torch

from contrast_sr.errors import ArgumentError


def check_mamba_layout(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    z: torch.Tensor | None = None,
) -> tuple[int, int, int, int]:
    """(batch, dim, L, N) of a mamba-layout call; ArgumentError naming a bad argument."""
    if u.dim() != 3:
        raise ArgumentError("u", f"must be (batch, dim, L), got {tuple(u.shape)}")
    batch, dim, L = u.shape
    if delta.shape != u.shape:
        raise ArgumentError("delta", f"must be shaped as u {tuple(u.shape)}, not {delta.shape}")
    if z is not None and z.shape != u.shape:
        raise ArgumentError("z", f"must be shaped as u {tuple(u.shape)}, got {tuple(z.shape)}")
    if A.dim() != 2 or A.shape[0] != dim:
        raise ArgumentError("A", f"must be (dim={dim}, N), got {tuple(A.shape)}")
    return batch, dim, L, A.shape[1]


def check_bc(t: torch.Tensor, name: str, batch: int, dim: int, N: int, L: int) -> None:
    """ArgumentError unless ``t`` is (dim, N), (batch, N, L) or (batch, groups, N, L) with
    ``groups`` dividing dim (``L`` is the length the last axis must have)."""
    shape = tuple(t.shape)
    if t.dim() == 2:
        ok = shape == (dim, N)
    elif t.dim() == 3:
        ok = shape == (batch, N, L)
    elif t.dim() == 4:
        ok = shape[0] == batch and shape[2:] == (N, L) and shape[1] > 0 and dim % shape[1] == 0
    else:
        ok = False
    if not ok:
        raise ArgumentError(
            name,
            f"must be constant (dim={dim}, N={N}) or variable (batch={batch}, N, {L}) or "
            f"(batch, groups dividing {dim}, N, {L}), got {shape}",
        )


def bc_channels_last(t: torch.Tensor, batch: int, L: int, dtype: torch.dtype) -> torch.Tensor:
    """A checked B or C in the backends' layout (batch, L, groups, N), cast to ``dtype``.

    A constant (dim, N) becomes ``groups = dim``, broadcast over batch and L (a stride-0 view,
    no copy); variable ones are one contiguous copy.
    """
    if t.dim() == 2:
        return t.to(dtype)[None, None].expand(batch, L, *t.shape)
    if t.dim() == 3:
        t = t.unsqueeze(1)
    return contiguous_copy(t.permute(0, 3, 1, 2), dtype)


def bc_pair_channels_last(
    B: torch.Tensor, C: torch.Tensor, batch: int, L: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked B and C in the backends' layout with the same number of groups: when they differ
    (e.g. a constant C, groups = dim, beside a variable B) both are spread to one per channel."""
    B, C = bc_channels_last(B, batch, L, dtype), bc_channels_last(C, batch, L, dtype)
    if B.shape[2] != C.shape[2]:
        dim = max(B.shape[2], C.shape[2])  # a constant one has groups = dim
        B, C = (t.repeat_interleave(dim // t.shape[2], dim=2) for t in (B, C))
    return B, C


def channels_last(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, dim, L) -> contiguous (batch, L, dim) in ``dtype`` (one copy; tiled on the CPU,
    see :mod:`contrast_sr.ops.transpose`)."""
    from contrast_sr.ops.transpose import transpose_last2

    return transpose_last2(x, dtype)


def mamba_layout(y: torch.Tensor) -> torch.Tensor:
    """A backend's (batch, L, dim) output -> contiguous (batch, dim, L) (one copy)."""
    from contrast_sr.ops.transpose import transpose_last2

    return transpose_last2(y)


def contiguous_copy(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A contiguous copy of ``x`` in ``dtype``: the layout change and the cast in one pass
    (``Tensor.to`` keeps the strides, and returns ``x`` itself when the dtype already fits)."""
    return torch.empty(x.shape, dtype=dtype, device=x.device).copy_(x)
