"""The fast selective scan equals the sequential reference (values and all gradients)."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.ops import (
    register_scan_backend,
    scan_backend,
    selective_scan,
    selective_scan_channels_last,
)
from contrast_sr.ops.scan import list_scan_backends, resolve_scan_backend
from contrast_sr.ops.scan.blocked import scan_torch_channels_last
from contrast_sr.ops.scan.reference import scan_reference_channels_last, selective_scan_ref


def make_inputs(b, L, dim, groups, N, softplus, dtype=torch.float64, decay=2.0, seed=0):
    """Channels-last inputs; without softplus delta stays positive so the scan is stable."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    def unif(*shape):
        return torch.rand(*shape, generator=g, dtype=dtype)

    u = rnd(b, L, dim)
    delta = rnd(b, L, dim) * 0.5 if softplus else unif(b, L, dim)
    A = -(unif(dim, N) * decay + 0.1)
    B, C = rnd(b, L, groups, N), rnd(b, L, groups, N)
    D = rnd(dim)
    bias = rnd(dim) if softplus else unif(dim) * 0.1
    return [u, delta, A, B, C, D, bias]


def grads(fn, args, softplus, gy):
    args = [None if t is None else t.detach().clone().requires_grad_() for t in args]
    y = fn(*args, softplus)
    g = torch.autograd.grad(y, [t for t in args if t is not None], gy)
    return y.detach(), g


def forced_small(*args):
    return scan_torch_channels_last(*args, block=16, chunk=4)


@pytest.mark.parametrize("N", [1, 4, 16])
@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("softplus", [False, True])
def test_float64_matches_reference_values_and_grads(N, groups, softplus):
    for L in (1, 5, 17, 64, 203):
        args = make_inputs(2, L, 12, groups, N, softplus, seed=L)
        gy = torch.randn(2, L, 12, dtype=torch.float64)
        y_ref, g_ref = grads(scan_reference_channels_last, args, softplus, gy)
        y, g = grads(forced_small, args, softplus, gy)
        assert (y - y_ref).abs().max() <= 1e-10
        for name, a, r in zip(["u", "delta", "A", "B", "C", "D", "bias"], g, g_ref, strict=True):
            assert (a - r).abs().max() <= 1e-10, (name, L, (a - r).abs().max().item())


@pytest.mark.parametrize("with_d", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_optional_d_and_bias(with_d, with_bias):
    u, delta, A, B, C, D, bias = make_inputs(2, 37, 8, 4, 2, True)
    args = [u, delta, A, B, C, D if with_d else None, bias if with_bias else None]
    gy = torch.randn(2, 37, 8, dtype=torch.float64)
    y_ref, g_ref = grads(scan_reference_channels_last, args, True, gy)
    y, g = grads(forced_small, args, True, gy)
    assert len(g) == 5 + with_d + with_bias
    assert (y - y_ref).abs().max() <= 1e-10
    for a, r in zip(g, g_ref, strict=True):
        assert (a - r).abs().max() <= 1e-10


def rel_err(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("N", [1, 16])
def test_float32_relative_error_against_float64_reference(N):
    args64 = make_inputs(2, 300, 16, 4, N, True)
    args32 = [t.float() for t in args64]
    gy = torch.randn(2, 300, 16, dtype=torch.float64)
    y_ref, g_ref = grads(scan_reference_channels_last, args64, True, gy)
    for fn in (forced_small, scan_torch_channels_last):
        y, g = grads(fn, args32, True, gy.float())
        assert y.dtype == torch.float32
        assert rel_err(y, y_ref) <= 1e-5
        for a, r in zip(g, g_ref, strict=True):
            assert a.dtype == torch.float32
            assert rel_err(a, r) <= 1e-5


def test_gradcheck_tiny():
    args = make_inputs(2, 16, 4, 2, 2, True)
    args = [t.requires_grad_() for t in args]

    def fn(*a):
        return scan_torch_channels_last(*a, True, block=8, chunk=3)

    assert torch.autograd.gradcheck(fn, args)


def test_strong_decay_long_sequence_float32():
    """|delta*A| up to ~30 per step over L = 65536: no overflow, still accurate."""
    b, L, dim, N = 1, 65536, 4, 2
    g = torch.Generator().manual_seed(1)
    u = torch.randn(b, L, dim, generator=g, dtype=torch.float64)
    delta = torch.rand(b, L, dim, generator=g, dtype=torch.float64) * 3.0
    A = -torch.tensor([[10.0, 0.5]], dtype=torch.float64).expand(dim, N).contiguous()
    B = torch.randn(b, L, 1, N, generator=g, dtype=torch.float64)
    C = torch.randn(b, L, 1, N, generator=g, dtype=torch.float64)
    args64 = [u, delta, A, B, C]
    # reference on the float64 inputs via the fast path in float64 (checked above against the loop)
    gy = torch.randn(b, L, dim, generator=g, dtype=torch.float64)
    y_ref, g_ref = grads(scan_torch_channels_last, [*args64, None, None], False, gy)
    y, g_out = grads(
        scan_torch_channels_last, [t.float() for t in args64] + [None, None], False, gy.float()
    )
    assert torch.isfinite(y).all() and all(torch.isfinite(t).all() for t in g_out)
    assert rel_err(y, y_ref) <= 1e-5
    for a, r in zip(g_out, g_ref, strict=True):
        assert rel_err(a, r) <= 1e-5


def test_strong_decay_matches_loop_reference():
    args = make_inputs(1, 500, 4, 1, 2, False, decay=30.0)
    args[1] = args[1] + 0.5  # delta in [0.5, 1.5], |delta*A| up to ~45
    gy = torch.randn(1, 500, 4, dtype=torch.float64)
    y_ref, g_ref = grads(scan_reference_channels_last, args, False, gy)
    y, g = grads(forced_small, args, False, gy)
    assert (y - y_ref).abs().max() <= 1e-10
    for a, r in zip(g, g_ref, strict=True):
        assert (a - r).abs().max() <= 1e-10


def test_bf16_inputs_within_bf16_precision():
    args = make_inputs(2, 200, 16, 4, 1, True, dtype=torch.float32)
    y32 = selective_scan_channels_last(*args, delta_softplus=True, backend="torch")
    u, delta, *rest = args
    ybf = selective_scan_channels_last(
        u.bfloat16(), delta.bfloat16(), *rest, delta_softplus=True, backend="torch"
    )
    assert ybf.dtype == torch.bfloat16
    # inputs rounded to bf16 (rel 2^-9) plus output rounding: well under 1e-2
    assert rel_err(ybf, y32) <= 1e-2


def test_bf16_gradients_dtype():
    args = make_inputs(1, 40, 8, 2, 1, True, dtype=torch.float32)
    u = args[0].bfloat16().requires_grad_()
    delta = args[1].bfloat16().requires_grad_()
    y = selective_scan_channels_last(u, delta, *args[2:], delta_softplus=True, backend="torch")
    y.float().sum().backward()
    assert u.grad.dtype == torch.bfloat16 and delta.grad.dtype == torch.bfloat16
    assert torch.isfinite(u.grad.float()).all()


def test_autocast_disabled_inside():
    args = make_inputs(1, 33, 8, 2, 1, True, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = selective_scan_channels_last(*args, delta_softplus=True, backend="torch")
    y_ref = scan_reference_channels_last(*args, True)
    assert y.dtype == torch.float32
    assert rel_err(y, y_ref) <= 1e-5


def test_mamba_layout_matches_reference():
    u, delta, A, B, C, D, bias = make_inputs(2, 45, 8, 2, 3, True)
    to_cm = dict(u=u.transpose(1, 2), delta=delta.transpose(1, 2))
    Bm, Cm = B.permute(0, 2, 3, 1), C.permute(0, 2, 3, 1)
    kw = {"delta_bias": bias, "delta_softplus": True}
    y_ref = selective_scan_ref(to_cm["u"], to_cm["delta"], A, Bm, Cm, D, **kw)
    y = selective_scan(to_cm["u"], to_cm["delta"], A, Bm, Cm, D, **kw)
    assert y.shape == (2, 8, 45)
    assert (y - y_ref).abs().max() <= 1e-10
    # groups axis may be omitted for one group, as in mamba_ssm
    y1 = selective_scan(to_cm["u"], to_cm["delta"], A, Bm[:, 0], Cm[:, 0], D, **kw)
    y1_ref = selective_scan_ref(to_cm["u"], to_cm["delta"], A, Bm[:, :1], Cm[:, :1], D, **kw)
    assert (y1 - y1_ref).abs().max() <= 1e-10


def test_backend_switch_and_registry():
    args = make_inputs(1, 20, 4, 1, 1, True)
    calls = []

    def fake(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
        calls.append(u.shape)
        return scan_reference_channels_last(u, delta, A, B, C, D, delta_bias, delta_softplus)

    register_scan_backend("fake-test", fake)
    assert "fake-test" in list_scan_backends()
    assert resolve_scan_backend(args[0]) != "fake-test"  # never auto-selected without a check
    with scan_backend("fake-test"):
        y = selective_scan_channels_last(*args, delta_softplus=True)
    assert calls == [(1, 20, 4)]
    y2 = selective_scan_channels_last(*args, delta_softplus=True, backend="reference")
    assert (y - y2).abs().max() == 0
    with pytest.raises(ValueError, match="unknown scan backend"), scan_backend("nope"):
        pass
    assert resolve_scan_backend(args[0], "torch") == "torch"


def test_bad_shapes_raise():
    u, delta, A, B, C, _D, _bias = make_inputs(1, 10, 6, 3, 1, True)
    with pytest.raises(ValueError, match="groups"):
        bad = torch.randn(1, 10, 4, 1, dtype=u.dtype)  # 4 groups do not divide dim 6
        scan_torch_channels_last(u, delta, A, bad, bad)
    with pytest.raises(ValueError, match="groups"):
        scan_torch_channels_last(u, delta, A, B, C[:, :, :1])
    with pytest.raises(ValueError, match="A must be"):
        scan_torch_channels_last(u, delta, A[:3], B, C)
