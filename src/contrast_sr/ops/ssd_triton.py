"""The Triton path of :func:`contrast_sr.ops.ssd.ssd_scan`: launches and autograd.

Imported by ``ssd.py`` only when the Triton path is chosen (importing it imports triton).
Forward: (1) each chunk's end state from zero and its summed log-decay, (2) the states entering
every chunk, sequentially over chunks per (batch, head, state tile), (3) each chunk's output
from its own steps and its entering state (kernels in :mod:`.ssd_triton_kernels`). Backward:
(1) each chunk's own gradient of its entering state, (2) those passed backwards over chunks,
giving the gradient of every chunk-end state and summed log-decay, (3) every input's gradient
per chunk, recomputing the in-chunk decays. The forward keeps the entering states (float32,
(b, L / chunk, heads, head_dim, N)) for the backward; nothing of size L x N per channel.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
import triton
from torch.autograd.function import once_differentiable

from contrast_sr.ops import ssd_triton_kernels as kernels

SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
STATE_TILE = 1024  # state elements per program in the state passing


def _block(n: int) -> int:
    """Tile size for an axis of n: a power of two, at least 16 (``tl.dot``'s minimum)."""
    return max(16, triton.next_power_of_2(int(n)))


def _chunk_launch(T: int, P: int, N: int) -> dict[str, int]:
    """Tile sizes and warps of the chunk kernels (8 warps once a tile passes 32 x 16: keeps
    the backward free of register spills up to chunk 64 at head_dim, N <= 16 on sm_90)."""
    blocks = {"BT": _block(T), "BP": _block(P), "BN": _block(N)}
    big = blocks["BT"] * max(blocks.values()) > 512
    return {**blocks, "num_warps": 8 if big else 4}


class _SSDChunks(torch.autograd.Function):
    """y = SSD(x, dt, A, B, C) + D x with dt already activated (float32)."""

    @staticmethod
    def forward(ctx, x, dt, A, B, C, D, chunk):
        b, L, H, P = x.shape
        G, N = B.shape[2], B.shape[3]
        T = min(int(chunk), L)
        nc = triton.cdiv(L, T)
        blocks = _chunk_launch(T, P, N)
        states = x.new_empty((b, nc, H, P, N), dtype=torch.float32)
        totals = x.new_empty((b, H, nc), dtype=torch.float32)
        dims = (H, H // G, L, T, P, N)
        kernels.ssd_chunk_state_fwd[(b * H * nc,)](
            x, dt, A, B, states, totals, *dims, *x.stride(), *dt.stride(), *B.stride(), **blocks
        )
        tile = min(STATE_TILE, triton.next_power_of_2(P * N))
        kernels.ssd_state_passing_fwd[(b * H, triton.cdiv(P * N, tile))](
            states, totals, H, nc, P * N, BS=tile
        )
        y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        kernels.ssd_chunk_scan_fwd[(b * H * nc,)](
            x, dt, A, B, C, states if D is None else D, states, y, *dims,
            *x.stride(), *dt.stride(), *B.stride(), *C.stride(), *y.stride(),
            HAS_D=D is not None, **blocks,
        )  # fmt: skip
        ctx.save_for_backward(x, dt, A, B, C, D, states, totals)
        ctx.chunk = T
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, dt, A, B, C, D, states, totals = ctx.saved_tensors
        b, L, H, P = x.shape
        G, N = B.shape[2], B.shape[3]
        T = ctx.chunk
        nc = triton.cdiv(L, T)
        blocks = _chunk_launch(T, P, N)
        dims = (H, H // G, L, T, P, N)
        dends = torch.empty_like(states)
        kernels.ssd_chunk_dstate_bwd[(b * H * nc,)](
            dt, A, C, dy, dends, *dims, *dt.stride(), *C.stride(), *dy.stride(), **blocks
        )
        tile = min(STATE_TILE, triton.next_power_of_2(P * N))
        n_tiles = triton.cdiv(P * N, tile)
        dtot = totals.new_empty((b, H, nc, n_tiles))
        kernels.ssd_state_passing_bwd[(b * H, n_tiles)](
            dends, states, totals, dtot, H, nc, P * N, n_tiles, BS=tile
        )
        dtot = dtot.sum(-1).contiguous()
        f32 = {"dtype": torch.float32, "device": x.device}
        dx = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        ddt = torch.empty((b, L, H), **f32)
        dB = torch.empty((b, L, H, N), **f32)
        dC = torch.empty((b, L, H, N), **f32)
        dA = torch.empty((b, H, nc), **f32)
        dD = torch.empty((b, H, nc, P), **f32) if D is not None else dA
        kernels.ssd_chunk_scan_bwd[(b * H * nc,)](
            x, dt, A, B, C, states if D is None else D, dy, states, dends, dtot,
            dx, ddt, dB, dC, dA, dD, *dims,
            *x.stride(), *dt.stride(), *B.stride(), *C.stride(), *dy.stride(),
            HAS_D=D is not None, **blocks,
        )  # fmt: skip
        per_group = (b, L, G, H // G, N)
        dB = dB.view(per_group).sum(3).to(B.dtype)
        dC = dC.view(per_group).sum(3).to(C.dtype)
        dD = None if D is None else dD.sum((0, 2))
        return dx, ddt, dA.sum((0, 2)), dB, dC, dD, None


def ssd_scan_triton(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    dt_bias: torch.Tensor | None,
    dt_softplus: bool,
    chunk: int,
) -> torch.Tensor:
    """The SSD scan on the Triton kernels; arguments as :func:`~contrast_sr.ops.ssd.ssd_scan`
    (already checked, L >= 1). x, B, C are read in their dtype (float32, bfloat16 or float16);
    dt, A, D, dt_bias are used in float32; returns y (b, L, heads, head_dim) in x's dtype."""
    with torch.autocast(x.device.type, enabled=False):
        dt = dt.float()
        if dt_bias is not None:
            dt = dt + dt_bias.float()
        if dt_softplus:
            dt = F.softplus(dt)
        if D is not None:
            D = (D.float()[:, None] if D.dim() == 1 else D.float()).expand(x.shape[2:])
            D = D.contiguous()
        A = A.float().contiguous()
        with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():
            return _SSDChunks.apply(x, dt, A, B, C, D, chunk)


__all__ = ["SUPPORTED_DTYPES", "ssd_scan_triton"]
