"""The Mamba-2 SSD scan: chunked form == sequential reference, in values and every gradient."""

from __future__ import annotations

import json

import pytest
import torch

from contrast_sr.ops import selective_scan_channels_last
from contrast_sr.ops.ssd import ssd_scan, ssd_scan_ref


def _inputs(b, L, heads, head_dim, groups, N, dtype=torch.float64, decay=1.0, seed=0, d2=False):
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    x, dt = rnd(b, L, heads, head_dim), rnd(b, L, heads)
    A = -(torch.rand(heads, generator=g, dtype=dtype) * decay + 0.05)
    B, C = rnd(b, L, groups, N), rnd(b, L, groups, N)
    D = rnd(heads, head_dim) if d2 else rnd(heads)
    return x, dt, A, B, C, D, rnd(heads)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


NAMES = ("x", "dt", "A", "B", "C", "D", "dt_bias")
CASES = [  # b, L, heads, head_dim, groups, N, chunk
    (2, 37, 4, 3, 2, 5, 8),  # odd L: padded tail
    (1, 64, 2, 4, 1, 3, 64),  # exactly one chunk
    (1, 5, 2, 2, 2, 2, 4),
    (2, 100, 6, 2, 3, 4, 7),  # groups > 1, ragged
    (1, 33, 3, 1, 3, 1, 1),  # chunk 1: pure state passing
]


@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_match_reference_float64(case):
    b, L, h, p, g, N, T = case
    inputs = [t.requires_grad_() for t in _inputs(b, L, h, p, g, N, d2=(T == 7))]
    y = ssd_scan(*inputs, dt_softplus=True, chunk=T)
    y_ref = ssd_scan_ref(*inputs, dt_softplus=True)
    assert _rel(y, y_ref) <= 1e-10
    gy = torch.randn_like(y)
    grads = torch.autograd.grad(y, inputs, gy)
    grads_ref = torch.autograd.grad(y_ref, inputs, gy)
    for name, a, r in zip(NAMES, grads, grads_ref, strict=True):
        assert _rel(a, r) <= 1e-10, name


def test_float32_within_1e5_and_output_dtype():
    inputs = _inputs(2, 90, 4, 8, 2, 16, dtype=torch.float32)
    inputs = [t.requires_grad_() for t in inputs]
    y = ssd_scan(*inputs, dt_softplus=True, chunk=16)
    y_ref = ssd_scan_ref(*[t.double() for t in inputs], dt_softplus=True)
    assert y.dtype == torch.float32
    assert _rel(y.double(), y_ref) <= 1e-5
    gy = torch.randn_like(y)
    grads = torch.autograd.grad(y, inputs, gy)
    grads_ref = torch.autograd.grad(y_ref, inputs, gy.double())
    for a, r in zip(grads, grads_ref, strict=True):
        assert _rel(a.double(), r) <= 1e-5


def test_bf16_inputs_give_bf16_output_close_to_float32():
    x, dt, A, B, C, D, bias = _inputs(1, 40, 2, 4, 1, 8, dtype=torch.float32)
    y32 = ssd_scan(x, dt, A, B, C, D, bias, dt_softplus=True, chunk=16)
    y16 = ssd_scan(x.bfloat16(), dt.bfloat16(), A, B.bfloat16(), C.bfloat16(), D, bias, True)
    assert y16.dtype == torch.bfloat16
    assert _rel(y16.float(), y32) < 3e-2


def test_without_optional_arguments_and_empty_sequence():
    x, dt, A, B, C, _, _ = _inputs(1, 11, 2, 2, 1, 3)
    dt = dt.abs()
    assert _rel(ssd_scan(x, dt, A, B, C, chunk=4), ssd_scan_ref(x, dt, A, B, C)) <= 1e-10
    empty = ssd_scan(x[:, :0], dt[:, :0], A, B[:, :0], C[:, :0])
    assert empty.shape == (1, 0, 2, 2)


def test_blocked_state_passing_matches_single_block(monkeypatch):
    inputs = _inputs(1, 200, 2, 3, 1, 4)
    whole = ssd_scan(*inputs, dt_softplus=True, chunk=4)  # 50 chunks, one block
    monkeypatch.setattr("contrast_sr.ops.ssd.CHUNKS_PER_BLOCK", 3)
    blocked = ssd_scan(*inputs, dt_softplus=True, chunk=4)
    assert _rel(blocked, ssd_scan_ref(*inputs, dt_softplus=True)) <= 1e-10
    assert _rel(blocked, whole) <= 1e-12


def test_strong_decay_is_finite_and_exact():
    x, dt, A, B, C, D, _ = _inputs(1, 70, 2, 2, 1, 2, decay=500.0)
    dt = dt.abs() * 5  # dt * A down to about -8000 per step
    y = ssd_scan(x, dt, A, B, C, D, chunk=16)
    assert torch.isfinite(y).all()
    assert _rel(y, ssd_scan_ref(x, dt, A, B, C, D)) <= 1e-10


def test_long_sequence_is_finite_with_gradients():
    x, dt, A, B, C, D, bias = _inputs(1, 65_536, 2, 2, 1, 4, dtype=torch.float32)
    A = A * 40
    x.requires_grad_()
    y = ssd_scan(x, dt, A, B, C, D, bias, dt_softplus=True)
    (gx,) = torch.autograd.grad(y.square().mean(), x)
    assert torch.isfinite(y).all() and torch.isfinite(gx).all()


@pytest.mark.slow
def test_one_million_steps():
    x, dt, A, B, C, D, bias = _inputs(1, 1_000_000, 1, 1, 1, 1, dtype=torch.float32)
    y = ssd_scan(x, dt, A, B, C, D, bias, dt_softplus=True)
    assert torch.isfinite(y).all()
    tail = slice(-300, None)  # the state 300 steps before the end has decayed away (A >= 0.05)
    start = 1_000_000 - 2_000
    ref = ssd_scan_ref(x[:, start:], dt[:, start:], A, B[:, start:], C[:, start:], D, bias, True)
    assert _rel(y[:, tail], ref[:, tail]) <= 1e-4


def test_gradcheck_tiny():
    inputs = [t.requires_grad_() for t in _inputs(1, 6, 2, 2, 1, 2)]
    assert torch.autograd.gradcheck(
        lambda *a: ssd_scan(*a, dt_softplus=True, chunk=4), inputs, eps=1e-6, atol=1e-7
    )


def test_head_dim_1_state_1_is_the_mamba1_scan():
    """SSD with head_dim 1 and N 1 is Mamba-1 with one A per channel (the dual view)."""
    b, L, dim, groups = 2, 29, 6, 3
    x, dt, A, B, C, D, bias = _inputs(b, L, dim, 1, groups, 1)
    y_ssd = ssd_scan(x, dt, A, B, C, D, bias, dt_softplus=True, chunk=8)
    y_m1 = selective_scan_channels_last(
        x[..., 0], dt, A[:, None], B, C, D, delta_bias=bias, delta_softplus=True
    )
    assert _rel(y_ssd[..., 0], y_m1) <= 1e-10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.__setitem__(2, a[2][:1]), "A must be"),
        (lambda a: a.__setitem__(slice(3, 5), [t.repeat(1, 1, 2, 1) for t in a[3:5]]), "divisible"),
        (lambda a: a.__setitem__(1, a[1][:, :3]), "dt must be"),
        (lambda a: a.__setitem__(5, a[5][:1]), "D must be"),
    ],
)
def test_bad_shapes_name_the_argument(change, message):
    args = list(_inputs(1, 8, 6, 2, 2, 3))
    change(args)
    with pytest.raises(ValueError, match=message):
        ssd_scan(*args)


def test_bench_scan_ssd_json(capsys):
    from contrast_sr.cli import main

    args = ["bench", "scan", "--ssd", "--ssd-shape", "1,20", "--ssd-dim", "16", "--reps", "1"]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    kernels = [row["kernel"] for row in result["rows"]]
    assert kernels[:2] == ["ssd reference", "ssd chunked"] and kernels[2].startswith("mamba-1")
    assert result["heads"] == 4 and result["head_dim"] == 16
    assert all(row["fwd_ms"] > 0 and row["fwdbwd_ms"] > 0 for row in result["rows"])
    assert result["rows"][0]["fwd_vs_reference"] == 1.0
