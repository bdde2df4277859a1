"""CAB: RCAN-style channel-attention block (conv - GELU - conv - channel attention)."""

from __future__ import annotations

import torch
from torch import nn


class ChannelAttention(nn.Module):
    """Squeeze-excite gate: x * sigmoid(conv(relu(conv(avgpool(x))))). x: (B, C, H, W)."""

    def __init__(self, dim: int, squeeze_factor: int = 30) -> None:
        super().__init__()
        hidden = dim // squeeze_factor
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(dim, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, dim, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class CAB(nn.Module):
    """Conv 3x3 C -> C//compress, GELU, conv 3x3 back to C, channel attention.

    Input and output (B, C, H, W). Parameter names mirror the original (``cab.0``, ``cab.2``,
    ``cab.3.attention.1``, ``cab.3.attention.3``).
    """

    def __init__(self, dim: int, compress_ratio: int = 3, squeeze_factor: int = 30) -> None:
        super().__init__()
        mid = dim // compress_ratio
        self.cab = nn.Sequential(
            nn.Conv2d(dim, mid, 3, 1, 1),
            nn.GELU(),
            nn.Conv2d(mid, dim, 3, 1, 1),
            ChannelAttention(dim, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cab(x)
