"""The models' LayerNorm: ``nn.LayerNorm`` (same parameters, same state-dict keys) whose
forward over the last dimension goes through :func:`contrast_sr.ops.layer_norm.layer_norm`,
the fused CPU path for inference."""

from __future__ import annotations

import torch
from torch import nn

from contrast_sr.ops.layer_norm import available, layer_norm


class LayerNorm(nn.LayerNorm):
    """LayerNorm over the last dimension of (..., C) tokens."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.normalized_shape) == 1 and available(x):  # else traceable as it was
            return layer_norm(x, self.weight, self.bias, self.eps)
        return super().forward(x)


__all__ = ["LayerNorm"]
