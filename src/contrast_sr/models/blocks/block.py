"""The pre-norm residual block of every residual group.

Channels-last (B, H, W, C) -> (B, H, W, C):

    n = norm1(x);  y = x + mixer(n) [+ conv_scale * CAB(n)];  out = y + FFN(norm2(y))

The FFNs, and the mixers whose ``forward`` has a ``residual`` argument (all built-in kinds),
take the skip input as ``residual`` and return it added to their output, so their last linear
layer adds it while the rows are in cache (one pass less per sum on the fused CPU path; the
same additions otherwise). A registered mixer without that argument gets ``x + mixer(n)``.

Only the token ``mixer`` differs between block kinds (SS2D, window attention, ...); it is built
by the kind's factory (:data:`contrast_sr.models.config.BLOCK_KINDS`) and passed in.
"""

from __future__ import annotations

import functools
import inspect

import torch
from torch import nn

from contrast_sr.models.blocks.cab import CAB
from contrast_sr.models.blocks.ffn import build_ffn
from contrast_sr.models.blocks.norm import LayerNorm


@functools.cache
def _forward_takes_residual(cls: type) -> bool:
    return "residual" in inspect.signature(cls.forward).parameters


def takes_residual(module: nn.Module) -> bool:
    """Whether ``module.forward`` has a ``residual`` argument (and so adds the skip itself)."""
    return _forward_takes_residual(type(module))


class Block(nn.Module):
    """One pre-norm residual block: ``mixer``, optional CAB branch (``conv_block``), FFN
    (``mlp``). ``kind`` names the block kind (informational). Parameters: 4C + mixer + FFN
    [+ CAB]."""

    def __init__(
        self,
        dim: int,
        mixer: nn.Module,
        *,
        kind: str = "",
        ffn: str = "mlp",
        mlp_ratio: float = 2.0,
        dw_padding: str = "zeros",
        cab: bool = False,
        compress_ratio: int = 3,
        squeeze_factor: int = 30,
        conv_scale: float = 0.01,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.norm1 = LayerNorm(dim)
        self.mixer = mixer
        self.conv_scale = conv_scale
        self.conv_block = CAB(dim, compress_ratio, squeeze_factor) if cab else None
        self.norm2 = LayerNorm(dim)
        self.mlp = build_ffn(ffn, dim, mlp_ratio, dw_padding)

    @property
    def mixer_adds_residual(self) -> bool:
        """Whether the mixer takes the skip input (read from the mixer, so a swapped one counts)."""
        return takes_residual(self.mixer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm1(x)
        y = self.mixer(n, residual=x) if self.mixer_adds_residual else x + self.mixer(n)
        if self.conv_block is not None:
            y = y + self.conv_scale * self.conv_block(n.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.mlp(self.norm2(y), residual=y)
