"""The models' LayerNorm: ``nn.LayerNorm`` (same parameters, same state-dict keys) whose
forward over the last dimension goes through :func:`contrast_sr.ops.layer_norm.layer_norm`,
the fused CPU path for inference."""

from __future__ import annotations

import torch
from torch import nn

from contrast_sr.ops.layer_norm import layer_norm


class LayerNorm(nn.LayerNorm):
    """LayerNorm over the trailing ``normalized_shape`` dimensions (fused for one)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


__all__ = ["LayerNorm"]
