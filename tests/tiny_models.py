"""Tiny SR models for analysis/export tests (no model registry needed)."""

from __future__ import annotations

import sys
import types

import torch
import torch.nn.functional as F
from torch import nn

from contrast_sr.ops import selective_scan_channels_last

# A stand-in "library module" holding a selective-scan entry point, looked up at call time the
# way model code does, so benchmark counting and export swapping can find it.
SCAN_MODULE = types.ModuleType("contrast_sr._tiny_scan")


SCAN_MODULE.selective_scan_channels_last = selective_scan_channels_last  # the dispatcher
sys.modules[SCAN_MODULE.__name__] = SCAN_MODULE


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + F.gelu(self.conv(x))


class Group(nn.Module):
    def __init__(self, c: int, blocks: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(c) for _ in range(blocks))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class TinySR(nn.Module):
    """conv -> groups of residual conv blocks -> pixel shuffle; ``layers`` like HAT."""

    def __init__(self, c: int = 8, groups: int = 3, blocks: int = 2, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.config = {"c": c, "groups": groups, "blocks": blocks, "scale": scale}
        self.conv_first = nn.Conv2d(3, c, 3, padding=1)
        self.layers = nn.ModuleList(Group(c, blocks) for _ in range(groups))
        self.conv_last = nn.Conv2d(c, 3 * scale * scale, 3, padding=1)

    def forward(self, x):
        f = self.conv_first(x)
        for layer in self.layers:
            f = layer(f)
        return F.pixel_shuffle(self.conv_last(f), self.scale)


class TinyScanSR(nn.Module):
    """conv -> one 1-D selective scan over row-major tokens -> pixel shuffle (N = 1)."""

    def __init__(self, c: int = 4, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.config = {"c": c, "scale": scale}
        self.conv_first = nn.Conv2d(3, c, 3, padding=1)
        self.proj = nn.Linear(c, 3 * c)
        self.A_log = nn.Parameter(torch.zeros(c, 1))
        self.D = nn.Parameter(torch.ones(c))
        self.conv_last = nn.Conv2d(c, 3 * scale * scale, 3, padding=1)

    def forward(self, x):
        f = self.conv_first(x)
        b, c, h, w = f.shape
        tokens = f.flatten(2).transpose(1, 2)  # (b, L, c)
        delta, bb, cc = self.proj(tokens).split(c, dim=-1)
        y = SCAN_MODULE.selective_scan_channels_last(
            tokens,
            delta,
            -torch.exp(self.A_log),
            bb.mean(-1, keepdim=True)[..., None],
            cc.mean(-1, keepdim=True)[..., None],
            self.D,
            None,
            True,
        )
        f = f + y.transpose(1, 2).reshape(b, c, h, w)
        return F.pixel_shuffle(self.conv_last(f), self.scale)


class OnePixel(nn.Module):
    """Every output pixel depends only on input pixel (p, q): out = x[p, q] * checkerboard."""

    def __init__(self, p: int, q: int, scale: int = 2) -> None:
        super().__init__()
        self.p, self.q, self.scale = p, q, scale
        self.weight = nn.Parameter(torch.ones(3))

    def forward(self, x):
        h, w = x.shape[-2:]
        v = x[:, :, self.p, self.q] * self.weight  # (b, 3)
        yy, xx = torch.meshgrid(
            torch.arange(h * self.scale), torch.arange(w * self.scale), indexing="ij"
        )
        pattern = ((yy + xx) % 2).to(x.dtype)
        return v[:, :, None, None] * pattern
