"""cross_scan / cross_merge against an explicit implementation, values and gradients."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.ops import (
    cross_merge,
    cross_merge_channels_last,
    cross_scan,
    cross_scan_channels_last,
)
from contrast_sr.ops.cross_scan import cross_permutations


def explicit_scan(x):
    """(b, c, h, w) -> (b, 4, c, L) with flips and transposes, plain autograd."""
    b, c, h, w = x.shape
    rows = x.reshape(b, c, h * w)
    cols = x.transpose(2, 3).reshape(b, c, h * w)
    return torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], dim=1)


def explicit_merge(y, h, w):
    b, _, c, L = y.shape
    y = y[:, :2] + y[:, 2:].flip(-1)
    return y[:, 0] + y[:, 1].reshape(b, c, w, h).transpose(2, 3).reshape(b, c, L)


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (4, 4), (7, 2)])
def test_channel_major_values_and_grads(hw):
    h, w = hw
    x = torch.randn(2, 3, h, w, dtype=torch.float64, requires_grad=True)
    y = cross_scan(x)
    y_ref = explicit_scan(x)
    assert y.shape == (2, 4, 3, h * w)
    assert torch.equal(y, y_ref)
    gy = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, gy)
    (gx_ref,) = torch.autograd.grad(y_ref, x, gy)
    assert torch.allclose(gx, gx_ref, atol=1e-12)

    z = torch.randn(2, 4, 3, h * w, dtype=torch.float64, requires_grad=True)
    m = cross_merge(z, h, w)
    m_ref = explicit_merge(z, h, w)
    assert m.shape == (2, 3, h * w)
    assert torch.allclose(m, m_ref, atol=1e-12)
    gm = torch.randn_like(m)
    (gz,) = torch.autograd.grad(m, z, gm)
    (gz_ref,) = torch.autograd.grad(m_ref, z, gm)
    assert torch.allclose(gz, gz_ref, atol=1e-12)
    assert torch.autograd.gradcheck(cross_scan, (x[:1, :2].detach().requires_grad_(),))


def test_round_trip_is_four_times_identity():
    x = torch.randn(2, 3, 5, 6)
    assert torch.allclose(cross_merge(cross_scan(x), 5, 6), 4 * x.reshape(2, 3, 30))
    xc = torch.randn(2, 5, 6, 3)
    assert torch.allclose(
        cross_merge_channels_last(cross_scan_channels_last(xc), 5, 6), 4 * xc, atol=1e-6
    )


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (6, 6), (2, 9)])
def test_channels_last_matches_channel_major(hw):
    h, w = hw
    x = torch.randn(2, 4, h, w, dtype=torch.float64, requires_grad=True)
    xl = x.detach().permute(0, 2, 3, 1).contiguous().requires_grad_()
    y = cross_scan(x)  # (b, 4, c, L)
    yl = cross_scan_channels_last(xl)  # (b, L, 4, c)
    assert yl.shape == (2, h * w, 4, 4)
    assert torch.equal(yl, y.permute(0, 3, 1, 2))
    # direction k's position t holds token perm_k[t]
    perm = cross_permutations(h, w)
    flat = xl.detach().reshape(2, h * w, 4)
    for k in range(4):
        assert torch.equal(yl[:, :, k].detach(), flat[:, perm[k]])
    gy = torch.randn_like(yl)
    (g,) = torch.autograd.grad(yl, xl, gy)
    (g_ref,) = torch.autograd.grad(y, x, gy.permute(0, 2, 3, 1))
    assert torch.allclose(g, g_ref.permute(0, 2, 3, 1), atol=1e-12)

    z = torch.randn(2, h * w, 4, 4, dtype=torch.float64, requires_grad=True)
    m = cross_merge_channels_last(z, h, w)
    m_ref = explicit_merge(z.permute(0, 2, 3, 1), h, w)  # (b, c, L)
    assert m.shape == (2, h, w, 4)
    assert torch.allclose(m.reshape(2, h * w, 4), m_ref.transpose(1, 2), atol=1e-12)
    # (b, L, 4*c) is accepted too
    m2 = cross_merge_channels_last(z.reshape(2, h * w, 16), h, w)
    assert torch.equal(m2, m)
    gm = torch.randn_like(m)
    (gz,) = torch.autograd.grad(m, z, gm)
    (gz_ref,) = torch.autograd.grad(m_ref, z, gm.reshape(2, h * w, 4).transpose(1, 2))
    assert torch.allclose(gz, gz_ref, atol=1e-12)


def test_bad_shapes():
    with pytest.raises(ValueError):
        cross_scan(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError):
        cross_merge(torch.zeros(1, 4, 2, 10), 3, 3)
    with pytest.raises(ValueError):
        cross_merge_channels_last(torch.zeros(1, 10, 4, 2), 3, 3)


@pytest.mark.parametrize("scans", [1, 2])
def test_vmamba_uni_and_bidirectional_modes(scans):
    """VMamba's scans=1 (row-major four times) and scans=2 (two forward, two reversed)."""
    b, c, h, w = 2, 3, 4, 5
    x = torch.randn(b, c, h, w, dtype=torch.float64)
    rows = x.reshape(b, c, h * w)
    order = [rows] * 4 if scans == 1 else [rows, rows, rows.flip(-1), rows.flip(-1)]
    assert torch.equal(cross_scan(x, scans=scans), torch.stack(order, dim=1))
    y = torch.randn(b, 4, c, h * w, dtype=torch.float64)
    merged = cross_merge(y, h, w, scans=scans)
    # the merge is the scan's adjoint: <scan(x), y> == <x, merge(y)>
    lhs = (cross_scan(x, scans=scans) * y).sum()
    assert torch.allclose(lhs, (rows * merged).sum(), rtol=1e-12)
    five = cross_merge(y.view(b, 4, c, h, w), scans=scans)  # VMamba's (B, K, D, H, W) layout
    assert torch.equal(five, merged)


def test_merge_takes_vmamba_five_dim_layout_and_rejects_bad_modes():
    from contrast_sr.errors import ArgumentError

    y = torch.randn(1, 4, 2, 3, 5)
    assert torch.equal(cross_merge(y), cross_merge(y.reshape(1, 4, 2, 15), 3, 5))
    with pytest.raises(ArgumentError, match="scans"):
        cross_scan(torch.randn(1, 2, 3, 5), scans=4)
    with pytest.raises(ArgumentError, match="h and w"):
        cross_merge(y.reshape(1, 4, 2, 15))
    with pytest.raises(ArgumentError, match="Triton"):
        cross_scan(torch.randn(1, 2, 3, 5), impl="triton", scans=2)
