"""Edge-correction convolution: a zero-padded "same" conv plus a learned border correction.

Fixed version of the original sketch (architecture notes, section 12): for every padding ring
i = 1..padding (the output pixels at distance i-1 from the nearest image edge, corners
included once, the same on all four sides) a 1x1 conv of the input (Cin -> Cout, with bias) is
added to the output. The corrections start at zero, so at init the layer *is* the plain conv,
and only border pixels can ever change. Stride 1 and symmetric "same" padding only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def ring_index(h: int, w: int, rings: int, device=None) -> torch.Tensor:
    """(H, W) long map: ring number 1..rings on the border, 0 inside."""
    ys = torch.arange(h, device=device)
    xs = torch.arange(w, device=device)
    dy = torch.minimum(ys, h - 1 - ys)[:, None]
    dx = torch.minimum(xs, w - 1 - xs)[None, :]
    dist = torch.minimum(dy, dx)
    return torch.where(dist < rings, dist + 1, torch.zeros_like(dist))


class EdgeConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same keys ``weight``/``bias``) + ``edge_weight`` (rings, Cout, Cin) and
    ``edge_bias`` (rings, Cout), zero-initialised. (B, Cin, H, W) -> (B, Cout, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, **kwargs) -> None:
        kwargs.setdefault("padding", (kernel_size - 1) // 2)
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        pad = self.padding
        if (
            self.stride != (1, 1)
            or isinstance(pad, str)
            or pad[0] != pad[1]
            or self.dilation != (1, 1)
            or pad[0] != (self.kernel_size[0] - 1) // 2
            or self.kernel_size[0] != self.kernel_size[1]
            or self.groups != 1
        ):
            raise ValueError("EdgeConv2d needs stride 1, groups 1 and symmetric 'same' padding")
        self.rings = pad[0]
        self.edge_weight = nn.Parameter(torch.zeros(self.rings, out_channels, in_channels))
        self.edge_bias = nn.Parameter(torch.zeros(self.rings, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if self.rings == 0:
            return y
        h, w = x.shape[-2:]
        index = ring_index(h, w, self.rings, x.device)
        for i in range(self.rings):
            mask = (index == i + 1).to(y.dtype)
            weight = self.edge_weight[i][:, :, None, None]
            y = y + F.conv2d(x, weight, self.edge_bias[i]) * mask
        return y


def make_conv3x3(cin: int, cout: int, edge: bool = False) -> nn.Conv2d:
    """3x3 zero-padded conv with bias; an :class:`EdgeConv2d` when ``edge``."""
    return EdgeConv2d(cin, cout, 3) if edge else nn.Conv2d(cin, cout, 3, 1, 1)
