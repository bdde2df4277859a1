"""Self-ensemble x8: average the model over the 8 flips/rotations of the input (group D4).

Averaging over a whole group makes the result exactly equivariant: a flipped or rotated input
gives the flipped or rotated output (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

# (k quarter turns, then horizontal flip?) for every element of D4.
TRANSFORMS: tuple[tuple[int, bool], ...] = tuple((k, f) for f in (False, True) for k in range(4))


def apply_transform(x: Tensor, k: int, flip: bool) -> Tensor:
    """Rotate (B,C,H,W) by ``k`` quarter turns, then mirror left-right if ``flip``."""
    x = torch.rot90(x, k, dims=(-2, -1)) if k else x
    return x.flip(-1) if flip else x


def invert_transform(y: Tensor, k: int, flip: bool) -> Tensor:
    y = y.flip(-1) if flip else y
    return torch.rot90(y, -k, dims=(-2, -1)) if k else y


def self_ensemble(forward: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Mean of ``inverse_t(forward(t(x)))`` over the 8 transforms t; output in float32."""
    total: Tensor | None = None
    for k, flip in TRANSFORMS:
        y = invert_transform(forward(apply_transform(x, k, flip)), k, flip).float()
        total = y if total is None else total.add_(y)
    assert total is not None
    return total.div_(len(TRANSFORMS))
