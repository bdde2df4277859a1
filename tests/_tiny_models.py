"""Small deterministic stand-in SR models for inference tests (no trained weights needed)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from contrast_sr.models.blocks import CAB, WindowAttention


class TinySR(nn.Module):
    """conv-GELU-conv-pixelshuffle plus a nearest-neighbour skip; receptive field 5x5."""

    def __init__(self, scale: int = 4, seed: int = 0, width: int = 8) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.scale = scale
        self.config = {"name": "tiny", "scale": scale}
        self.body = nn.Conv2d(3, width, 3, padding=1)
        self.tail = nn.Conv2d(width, 3 * scale * scale, 3, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.pixel_shuffle(self.tail(F.gelu(self.body(x))), self.scale)
        return y + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class TinyAttentionSR(TinySR):
    """TinySR holding a (unused) window-attention module, for the fp16 guard."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__(scale)
        self.attn = WindowAttention(dim=8, num_heads=2, window_size=4)


class TinyChannelAttentionSR(TinySR):
    """TinySR holding a (unused) CAB: channel attention, no softmax, fine in fp16."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__(scale)
        self.cab = CAB(dim=30, compress_ratio=3, squeeze_factor=30)


# What torch's CPU allocator raises when malloc fails (a plain RuntimeError, no special type).
CPU_OOM = (
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 5368709120 bytes. Error code 12 (Cannot allocate memory)"
)


class OOMAbove(TinySR):
    """Raises an out-of-memory error for inputs larger than ``limit`` pixels per side: CUDA's
    type by default, or the CPU allocator's plain RuntimeError (``cpu=True``)."""

    def __init__(self, limit: int, scale: int = 2, cpu: bool = False) -> None:
        super().__init__(scale)
        self.limit, self.cpu = limit, cpu
        self.calls: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            if self.cpu:
                raise RuntimeError(CPU_OOM)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().forward(x)
