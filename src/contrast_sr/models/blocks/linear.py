"""The models' Linear: ``nn.Linear`` (same parameters, same state-dict keys) whose forward goes
through :func:`contrast_sr.ops.linear.linear`, the fused CPU path for inference."""

from __future__ import annotations

import torch
from torch import nn

from contrast_sr.ops.linear import linear


class Linear(nn.Linear):
    """A linear layer over the last dimension of (..., in_features) tokens. ``residual``, if
    given, is added to the output (``residual + linear(x)``; fused into the kernel on the CPU
    path)."""

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return linear(x, self.weight, self.bias, residual)


__all__ = ["Linear"]
