"""Building blocks of the Contrast family (each a small nn.Module, channels-last inside)."""

from contrast_sr.models.blocks.block import Block
from contrast_sr.models.blocks.cab import CAB
from contrast_sr.models.blocks.edge_conv import EdgeConv2d
from contrast_sr.models.blocks.ffn import build_ffn
from contrast_sr.models.blocks.ocab import OCAB
from contrast_sr.models.blocks.ss2d import SS2D
from contrast_sr.models.blocks.upsample import build_upsampler
from contrast_sr.models.blocks.window_attention import WindowAttention

__all__ = [
    "CAB",
    "OCAB",
    "SS2D",
    "Block",
    "EdgeConv2d",
    "WindowAttention",
    "build_ffn",
    "build_upsampler",
]
