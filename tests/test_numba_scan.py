"""The fused numba kernel equals the torch path (values and every gradient)."""

from __future__ import annotations

import pytest
import torch

from contrast_sr.ops import selective_scan_channels_last
from contrast_sr.ops.scan import resolve_scan_backend
from contrast_sr.ops.scan.blocked import scan_torch_channels_last
from tests.test_selective_scan import grads, make_inputs, rel_err

numba_scan = pytest.importorskip("contrast_sr.ops.scan.numba_cpu")
if numba_scan.numba is None:
    pytest.skip("numba is not installed", allow_module_level=True)


@pytest.fixture(autouse=True)
def short_segments(monkeypatch):
    """K = 64 steps per saved state at every width (the shortest the rule gives), so the tests'
    L of 64-200 steps span several segments and end inside one; the width rule itself is
    pinned below with the default budget."""
    monkeypatch.setattr(numba_scan, "SEGMENT_FLOATS", 1)


def run_numba(*args):
    return numba_scan.scan_numba_channels_last(*args)


def test_segment_length_follows_the_job_width():
    """N = 1: K * width ~ SEGMENT_FLOATS, a power of two in [64, 1024]; without a width (the
    SS2D op) and for N > 1 the L2 rule as before."""
    every = numba_scan.checkpoint_every
    assert every(1) == 64 and every(16) == 8 and every(16, 240) == 8
    assert every(1, 240) == 64  # the fixture's budget: the lower bound


@pytest.mark.parametrize(("width", "steps"), [(240, 512), (960, 128), (16, 1024), (4096, 64)])
def test_default_segment_budget(monkeypatch, width, steps):
    monkeypatch.setattr(numba_scan, "SEGMENT_FLOATS", 1 << 17)
    assert numba_scan.checkpoint_every(1, width) == steps


@pytest.mark.parametrize("mamba", [False, True])
def test_numba_n1_backward_over_the_default_long_segments(monkeypatch, mamba):
    """The default budget at 16 lanes: K = 1024, so L = 2100 spans three segments, the last
    one partial; values and gradients as the torch path, in both layouts (the mamba layout
    stages gy, gu and gdt per segment)."""
    monkeypatch.setattr(numba_scan, "SEGMENT_FLOATS", 1 << 17)
    saved = []
    real = numba_scan.checkpoint_every

    def recording(*args):
        saved.append(real(*args))
        return saved[-1]

    monkeypatch.setattr(numba_scan, "checkpoint_every", recording)
    args64 = make_inputs(1, 2100, 16, 4, 1, True, seed=7)
    gy = torch.randn(1, 2100, 16, dtype=torch.float64)
    y_ref, g_ref = grads(scan_torch_channels_last, args64, True, gy)
    y, g = grads(
        run_numba_mamba if mamba else run_numba, [t.float() for t in args64], True, gy.float()
    )
    assert saved == [1024]
    assert rel_err(y, y_ref) <= 1e-5
    for a, r in zip(g, g_ref, strict=True):
        assert rel_err(a, r) <= 1e-5


CASES = [  # b, L, dim, groups, N
    (2, 200, 12, 4, 1),
    (1, 131, 16, 1, 4),
    (2, 130, 8, 2, 16),
    (3, 64, 8, 4, 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("softplus", [False, True])
def test_numba_matches_torch(case, softplus):
    b, L, dim, G, N = case
    args64 = make_inputs(b, L, dim, G, N, softplus, seed=L)
    gy = torch.randn(b, L, dim, dtype=torch.float64)
    y_ref, g_ref = grads(scan_torch_channels_last, args64, softplus, gy)
    y, g = grads(run_numba, [t.float() for t in args64], softplus, gy.float())
    assert y.dtype == torch.float32
    assert rel_err(y, y_ref) <= 1e-5
    for a, r in zip(g, g_ref, strict=True):
        assert a.dtype == torch.float32 and rel_err(a, r) <= 1e-5


@pytest.mark.parametrize("N", [1, 3])  # N = 1 has its own backward kernel
def test_numba_channel_tiles_split_groups(monkeypatch, N):
    """Tiles of 16 channels over groups of 24: partial gB/gC sums over tiles."""
    monkeypatch.setattr(numba_scan, "_tile", lambda b, dim: 16)
    args64 = make_inputs(1, 150, 48, 2, N, True, seed=3)
    args64[5] = None  # no D
    gy = torch.randn(1, 150, 48, dtype=torch.float64)
    y_ref, g_ref = grads(scan_torch_channels_last, args64, True, gy)
    y, g = grads(run_numba, [None if t is None else t.float() for t in args64], True, gy.float())
    assert rel_err(y, y_ref) <= 1e-5
    assert len(g) == len(g_ref) == 6
    for a, r in zip(g, g_ref, strict=True):
        assert rel_err(a, r) <= 1e-5


def run_numba_mamba(u, delta, A, B, C, D, bias, softplus):
    """The mamba-layout kernel on channels-last test inputs: u, delta in as (b, dim, L) copies,
    y back as (b, L, dim), so its values and gradients compare with the torch path's."""
    y = numba_scan.scan_numba_mamba_layout(
        u.transpose(1, 2).contiguous(), delta.transpose(1, 2).contiguous(), A, B, C, D, bias,
        softplus,
    )  # fmt: skip
    return y.transpose(1, 2)


@pytest.mark.parametrize("tile", [None, 16])  # whole rows; 16-lane tiles splitting groups
@pytest.mark.parametrize("softplus", [False, True])
@pytest.mark.parametrize("optional", [True, False])  # with / without D and delta_bias
@pytest.mark.parametrize("N", [1, 3])  # the staged backward; the general one on copies
def test_numba_mamba_layout_matches_torch(monkeypatch, tile, softplus, optional, N):
    """Staged (channels x steps) blocks: L = 150 ends mid-block and mid-segment."""
    if tile is not None:
        monkeypatch.setattr(numba_scan, "_tile", lambda b, dim: tile)
    args64 = make_inputs(2, 150, 48, 2, N, softplus, seed=5)
    if not optional:
        args64[5] = args64[6] = None
    gy = torch.randn(2, 150, 48, dtype=torch.float64)
    y_ref, g_ref = grads(scan_torch_channels_last, args64, softplus, gy)
    args32 = [None if t is None else t.float() for t in args64]
    y, g = grads(run_numba_mamba, args32, softplus, gy.float())
    assert rel_err(y, y_ref) <= 1e-5
    assert len(g) == len(g_ref)
    for a, r in zip(g, g_ref, strict=True):
        assert rel_err(a, r) <= 1e-5


def test_vector_step_splits_each_vector_between_two_groups():
    """Lanes 16..47 of groups of 24 channels: the first vector has 8 lanes in group 0 and 8 in
    group 1, the second all 16 in group 1; the entries past the end (room for a masked group)
    stay in bounds."""
    from contrast_sr.ops.scan import numba_kernels

    first, following, split = numba_kernels._vector_groups(16, 32, 24, 2)
    assert list(first[:2]) == [0, 1]
    assert list(following[:2]) == [1, 1]
    assert list(split[:2]) == [8, 16]
    assert len(first) == 2 + numba_kernels.GROUP and max(first) <= 1 and max(following) <= 1


@pytest.mark.parametrize("mamba", [False, True])
@pytest.mark.parametrize(("dim", "groups"), [(100, 4), (36, 2), (136, 1)])
def test_vector_step_matches_torch_on_partial_vectors(mamba, dim, groups):
    """The explicit-vector forward step (N = 1, softplus) on rows that end inside a vector
    group and vectors that straddle B/C groups: values and gradients equal the torch path's."""
    args64 = make_inputs(2, 90, dim, groups, 1, True, seed=dim)
    gy = torch.randn(2, 90, dim, dtype=torch.float64)
    y_ref, g_ref = grads(scan_torch_channels_last, args64, True, gy)
    run = run_numba_mamba if mamba else run_numba
    y, g = grads(run, [t.float() for t in args64], True, gy.float())
    assert rel_err(y, y_ref) <= 1e-5
    for a, r in zip(g, g_ref, strict=True):
        assert rel_err(a, r) <= 1e-5
    with torch.no_grad():  # inference: the step without the dt copy
        y_inf = run(*[t.float() for t in args64], True)
    assert rel_err(y_inf, y_ref) <= 1e-5


@pytest.mark.parametrize("N", [1, 4])
def test_public_mamba_layout_entry_copies_only_the_n_gt_1_gradients(monkeypatch, N):
    """selective_scan (mamba layout) runs the numba kernels in that layout: no transposed copy
    in the forward; the backward copies gy in and gu, gdelta out only for N > 1 (its staged
    kernel is N = 1). Values and gradients equal the torch path."""
    import contrast_sr.ops.transpose as transpose
    from contrast_sr.ops import selective_scan

    copies = []
    real = transpose.transpose_last2

    def counting(*args, **kwargs):
        copies.append(1)
        return real(*args, **kwargs)

    # the scan modules import transpose_last2 when they call it, so the spy sees every copy
    monkeypatch.setattr(transpose, "transpose_last2", counting)
    args = make_inputs(1, 70, 16, 2, N, True, dtype=torch.float32)
    gy = torch.randn(1, 70, 16)
    leaves = [t.clone().requires_grad_() for t in args]
    u, delta, A, B, C, D, bias = leaves
    y = selective_scan(
        u.transpose(1, 2), delta.transpose(1, 2), A, B.permute(0, 2, 3, 1),
        C.permute(0, 2, 3, 1), D, delta_bias=bias, delta_softplus=True,
    )  # fmt: skip
    assert copies == []
    g = torch.autograd.grad(y, leaves, gy.transpose(1, 2))
    assert len(copies) == (0 if N == 1 else 3)
    y_ref, g_ref = grads(scan_torch_channels_last, [t.double() for t in args], True, gy.double())
    assert rel_err(y.transpose(1, 2), y_ref) <= 1e-5
    for a, r in zip(g, g_ref, strict=True):
        assert rel_err(a, r) <= 1e-5
    with pytest.raises(RuntimeError, match="float32"):
        numba_scan.scan_numba_mamba_layout(
            *(t.detach().double() for t in (u.transpose(1, 2), delta.transpose(1, 2), A, B, C))
        )


def test_numba_strong_decay_and_bf16():
    args = make_inputs(1, 3000, 16, 4, 2, False, dtype=torch.float32, decay=30.0)
    args[1] = args[1] + 0.5
    y = run_numba(*args, False)
    y_ref = scan_torch_channels_last(*args, False)
    assert torch.isfinite(y).all() and rel_err(y, y_ref) <= 1e-5
    u, delta, *rest = args
    ybf = run_numba(u.bfloat16(), delta.bfloat16(), *rest, False)
    assert ybf.dtype == torch.bfloat16 and rel_err(ybf, y_ref) <= 1e-2


def test_auto_selects_numba_for_float32_only():
    assert resolve_scan_backend(torch.zeros(1)) == "numba"
    assert resolve_scan_backend(torch.zeros(1, dtype=torch.float64)) == "torch"
    args = make_inputs(1, 40, 8, 2, 1, True, dtype=torch.float32)
    y = selective_scan_channels_last(*args, delta_softplus=True)
    assert rel_err(y, scan_torch_channels_last(*args, True)) <= 1e-5
    with pytest.raises(RuntimeError, match="float32"):
        run_numba(*[t.double() for t in args], True)


def test_no_state_is_saved_without_grad_mode(monkeypatch):
    """Parameters require grad even under ``no_grad``; the fused scans still save nothing there
    (delta and state checkpoints are only for a backward), and do save when grad mode is on."""
    import contrast_sr
    from contrast_sr.ops import cross_selective_scan as css
    from contrast_sr.ops.scan import numba_cpu

    if numba_cpu.numba is None:
        pytest.skip("numba not installed")
    saved = []

    def spy(module):
        original = module.forward_kernel

        def kernel(*args):
            saved.append(args[9].shape[0] > 0)  # dt_out: empty unless saving
            return original(*args)

        monkeypatch.setattr(module, "forward_kernel", kernel)

    spy(numba_cpu)
    spy(css)
    model = contrast_sr.create_model("contrast_tiny", scale=2).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        model(x)
    assert saved and not any(saved)
    saved.clear()
    model(x).mean().backward()
    assert saved and all(saved)
    u, delta, B, C = (
        torch.randn(1, 8, 4),
        torch.randn(1, 8, 4),
        torch.randn(1, 8, 1, 2),
        torch.randn(1, 8, 1, 2),
    )
    A = torch.nn.Parameter(-torch.rand(4, 2))
    saved.clear()
    with torch.inference_mode():
        numba_cpu.scan_numba_channels_last(u, delta, A, B, C)
    assert saved == [False]
