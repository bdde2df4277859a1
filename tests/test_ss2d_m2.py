"""SS2DMamba2: the block's head/direction layout against a slow, explicit formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrast_sr.models.blocks.ss2d_m2 import SS2DMamba2
from contrast_sr.ops.ssd import ssd_scan_ref


def _directions(x: torch.Tensor) -> list[torch.Tensor]:
    """(b, h, w, d) -> the four scan orders as (b, L, d): rows, columns, both reversed."""
    b, h, w, d = x.shape
    rows = x.reshape(b, h * w, d)
    cols = x.transpose(1, 2).reshape(b, h * w, d)
    return [rows, cols, rows.flip(1), cols.flip(1)]


def _undo(y: torch.Tensor, k: int, h: int, w: int) -> torch.Tensor:
    """Direction k's (b, L, d) outputs back to (b, h, w, d) in row-major position."""
    b, _, d = y.shape
    if k >= 2:
        y = y.flip(1)
    if k % 2 == 0:
        return y.reshape(b, h, w, d)
    return y.reshape(b, w, h, d).transpose(1, 2)


def _explicit(block: SS2DMamba2, x: torch.Tensor) -> torch.Tensor:
    """Each direction scanned on its own with the sequential SSD reference, then summed."""
    b, h, w, _ = x.shape
    R, G, N, D = block.heads, block.groups, block.d_state, block.d_inner
    u = block.in_proj(x)
    z = None
    if block.gated:
        u, z = u.chunk(2, dim=-1)
    u = F.gelu(block.conv2d(u.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
    out = torch.zeros(b, h, w, D, dtype=x.dtype)
    for k, seq in enumerate(_directions(u)):
        proj = seq @ block.x_proj_weight[k].t()  # (b, L, R + 2GN)
        dt, Bk, Ck = proj.split([R, G * N, G * N], dim=-1)
        y = ssd_scan_ref(
            seq.reshape(b, h * w, R, D // R),
            dt,
            -torch.exp(block.A_logs[k]),
            Bk.reshape(b, h * w, G, N),
            Ck.reshape(b, h * w, G, N),
            block.Ds[k],
            block.dt_projs_bias[k],
            dt_softplus=True,
        )
        out = out + _undo(y.reshape(b, h * w, D), k, h, w)
    y = block.out_norm(out)
    if z is not None:
        y = y * F.gelu(z)
    return block.out_proj(y)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"groups": 2, "d_state": 2, "chunk": 4},
        {"gated": True, "heads": 2, "chunk": 8},
    ],
)
def test_block_matches_explicit_per_direction_formula(options):
    torch.manual_seed(0)
    block = SS2DMamba2(24, **options).double()
    with torch.no_grad():  # move A and the biases off their init so every term matters
        block.A_logs.normal_(0, 0.5)
        block.Ds.normal_()
    x = torch.randn(2, 5, 7, 24, dtype=torch.float64)
    assert torch.allclose(block(x), _explicit(block, x), rtol=1e-10, atol=1e-12)


def test_parameter_formula():
    for dim, groups, N, gated in ((48, 1, 4, False), (60, 2, 3, True)):
        block = SS2DMamba2(dim, d_state=N, groups=groups, gated=gated)
        R = -(-dim // 16)
        formula = 2 * dim**2 + 4 * dim * R + 8 * groups * N * dim + 16 * dim + 8 * R
        formula += dim**2 if gated else 0
        assert sum(p.numel() for p in block.parameters()) == formula


def test_heads_must_divide_channels():
    with pytest.raises(ValueError, match="divisible by heads"):
        SS2DMamba2(20, heads=3)
