"""``selective_scan_fn`` against mamba_ssm's own test of it, restated, plus the issue-16 defects.

mamba_ssm's tests/ops/test_selective_scan.py compares ``selective_scan_fn`` with its reference
loop (float32 compute, ``out`` cast to u's dtype) for float32 / float16 / bfloat16 inputs, with
z gating, the last state, constant and variable B/C and B/C groups. ``mamba_reference`` below is
this file's own statement of those semantics (written from the formulas, one step at a time);
the parametrisation and the tolerances are mamba_ssm's, the lengths are smaller.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrast_sr.errors import ArgumentError
from contrast_sr.ops import (
    scan_backend,
    selective_scan,
    selective_scan_channels_last,
    selective_scan_fn,
    selective_scan_ref,
)
from contrast_sr.ops.scan import list_scan_backends, mamba_compat, observe_scans


def mamba_reference(u, delta, A, B, C, D=None, z=None, delta_bias=None, softplus=False):
    """out (batch, dim, L) in u's dtype and the last state, computed step by step in float32
    (float64 for float64 u; complex for complex A, B/C variable then hold (re, im) pairs
    along L)."""
    batch, dim, L = u.shape
    dtype_in = u.dtype
    real = torch.float64 if dtype_in == torch.float64 else torch.float32
    u, delta = u.to(real), delta.to(real)
    if delta_bias is not None:
        delta = delta + delta_bias.to(real)[:, None]
    if softplus:
        delta = F.softplus(delta)
    cplx = A.is_complex()
    A = A.to(torch.complex128 if real == torch.float64 else torch.complex64) if cplx else A.to(real)

    def at(M, t):  # B_t or C_t per channel: (batch, dim, N)
        if M.dim() == 2:
            return M.to(A.dtype).expand(batch, dim, M.shape[1])
        M = M.to(real) if not cplx else torch.view_as_complex(M.to(real).unflatten(-1, (L, 2)))
        if M.dim() == 3:
            return M[:, None, :, t].expand(batch, dim, M.shape[1])
        groups = M.shape[1]
        return M[:, torch.arange(dim) // (dim // groups), :, t]

    h = torch.zeros(batch, dim, A.shape[1], dtype=A.dtype)
    ys = []
    for t in range(L):
        dt = delta[:, :, t, None]
        h = torch.exp(dt * A) * h + dt * at(B, t) * u[:, :, t, None]
        y = (h * at(C, t)).sum(-1)
        ys.append(2 * y.real if cplx else y)
    out = torch.stack(ys, dim=-1)
    if D is not None:
        out = out + D.to(real)[:, None] * u
    if z is not None:
        out = out * F.silu(z.to(real))
    return out.to(dtype_in), h


def make_case(itype, wtype, seqlen, var_b, var_c, groups, has_z, seed=0):
    """mamba_ssm's inputs: batch 2, dim 4, dstate 8; weights in wtype, activations in itype."""
    torch.random.manual_seed(seed)
    batch, dim, dstate = 2, 4, 8
    cplx = wtype == torch.complex64
    A = -0.5 * torch.rand(dim, dstate, dtype=wtype)
    L = seqlen * 2 if cplx else seqlen

    def bc(var):
        if not var:
            return torch.randn(dim, dstate, dtype=wtype)
        shape = (batch, dstate, L) if groups == 1 else (batch, groups, dstate, L)
        return torch.randn(*shape, dtype=itype)

    B, C = bc(var_b), bc(var_c)
    D = torch.randn(dim)
    z = torch.randn(batch, dim, seqlen, dtype=itype) if has_z else None
    delta_bias = 0.5 * torch.rand(dim)
    u = torch.randn(batch, dim, seqlen, dtype=itype)
    delta = 0.5 * torch.rand(batch, dim, seqlen, dtype=itype)
    return [u, delta, A, B, C, D, z, delta_bias]


def tolerances(itype, has_z):
    rtol, atol = (6e-4, 2e-3) if itype == torch.float32 else (3e-3, 5e-3)
    if itype == torch.bfloat16:
        rtol, atol = 3e-2, 5e-2
    rtolw, atolw = 1e-3, 1e-3
    if has_z:
        rtolw, atolw = max(rtolw, rtol), max(atolw, atol)
    return rtol, atol, rtolw, atolw


BC_CASES = [(False, False, 1), (False, True, 1), (True, False, 1), (True, True, 1), (True, True, 2)]


@pytest.fixture(autouse=True)
def _torch_backend():
    """The always-available fast backend (numba would spend ~30 s compiling on a cold cache)."""
    with scan_backend("torch"):
        yield


@pytest.mark.parametrize("wtype", [torch.float32, torch.complex64])
@pytest.mark.parametrize("itype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("seqlen", [7, 128])
@pytest.mark.parametrize("return_last_state", [False, True])
@pytest.mark.parametrize("has_z", [False, True])
@pytest.mark.parametrize(("var_b", "var_c", "groups"), BC_CASES)
def test_selective_scan_fn_as_mamba_ssm_tests_it(
    var_b, var_c, groups, has_z, return_last_state, seqlen, itype, wtype
):
    rtol, atol, rtolw, atolw = tolerances(itype, has_z)
    args = make_case(itype, wtype, seqlen, var_b, var_c, groups, has_z)
    ours = [None if t is None else t.clone().requires_grad_() for t in args]
    ref = [None if t is None else t.clone().requires_grad_() for t in args]
    u, delta, A, B, C, D, z, delta_bias = ours
    result = selective_scan_fn(
        u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=True,
        return_last_state=return_last_state,
    )  # fmt: skip
    out, state = result if return_last_state else (result, None)
    out_ref, state_ref = mamba_reference(*ref[:6], z=ref[6], delta_bias=ref[7], softplus=True)
    assert out.dtype == itype and out.shape == u.shape
    assert torch.allclose(out, out_ref, rtol=rtol, atol=atol)
    if return_last_state:
        assert state.shape == (2, 4, 8) and state.dtype == state_ref.dtype
        assert torch.allclose(state, state_ref, rtol=rtol, atol=atol)
    g = torch.randn_like(out)
    out.backward(g)
    out_ref.backward(g)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]
    pairs = dict(zip(names, zip(ours, ref, strict=True), strict=True))
    loose = {"u": (rtol * 2, atol * 2), "delta": (rtol * 5, atol * 10), "A": (rtolw, atolw * 5)}
    for name in ("B", "C"):
        variable = {"B": var_b, "C": var_c}[name]
        loose[name] = (rtol, atol) if variable else (rtolw, atolw)
    for name, (mine, theirs) in pairs.items():
        if mine is None:
            continue
        r, a = loose.get(name, (rtolw, atolw))
        assert mine.grad.dtype == mine.dtype, name
        assert torch.allclose(mine.grad, theirs.grad.to(mine.dtype), rtol=r, atol=a), name


def _real_case(L=33, groups=2, dtype=torch.float64, seed=1):
    u, delta, A, B, C, D, _z, bias = make_case(dtype, dtype, L, True, True, groups, False, seed)
    return u, delta, A, B, C, D, bias


def test_the_common_path_runs_the_dispatched_backend_and_complex_the_loop():
    u, delta, A, B, C, D, bias = _real_case(dtype=torch.float32)
    seen = []
    with observe_scans(lambda u_cl, *_: seen.append(tuple(u_cl.shape))):
        selective_scan_fn(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True)
        selective_scan_fn(u, delta, A, B, C, D, return_last_state=True)
        selective_scan_fn(u, delta, torch.complex(A, A), B.repeat(1, 1, 1, 2), C.repeat(1, 1, 1, 2))
    assert seen == [(2, 33, 4), (2, 33, 4)]  # channels-last calls; the complex one is the loop


def test_positional_order_is_mamba_ssm_and_the_project_api_is_keyword_only():
    u, delta, A, B, C, D, bias = _real_case()
    z = torch.randn_like(u)
    y = selective_scan_fn(u, delta, A, B, C, D, z, bias, True, False)  # mamba's positions
    expected, _ = mamba_reference(u, delta, A, B, C, D, z=z, delta_bias=bias, softplus=True)
    assert torch.allclose(y, expected, rtol=0, atol=1e-10)
    with pytest.raises(TypeError):
        selective_scan(u, delta, A, B, C, D, bias)  # would bind z to delta_bias
    y2 = selective_scan(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True)
    assert torch.allclose(y2 * F.silu(z), y, rtol=0, atol=1e-10)


@pytest.mark.parametrize("which", ["B", "C", "both"])
def test_constant_B_C_in_the_project_api(which):
    u, delta, A, B, C, D, bias = _real_case(groups=1)
    const = torch.randn(4, 8, dtype=torch.float64)
    B = const if which in ("B", "both") else B
    C = const.flip(0) if which in ("C", "both") else C
    for name in ("torch", "reference", "chunked"):
        y = selective_scan(u, delta, A, B, C, D, delta_bias=bias, backend=name)
        expected, _ = mamba_reference(u, delta, A, B, C, D, delta_bias=bias)
        assert torch.allclose(y, expected, rtol=0, atol=1e-10), name


def test_length_zero_gives_empty_results_on_every_backend():
    u, delta, A, B, C, D, _bias = _real_case(L=0)
    assert selective_scan_ref(u, delta, A, B, C, D).shape == (2, 4, 0)
    out, state = selective_scan_ref(u, delta, A, B, C, return_last_state=True)
    assert out.shape == (2, 4, 0) and torch.equal(state, torch.zeros(2, 4, 8, dtype=u.dtype))
    out, state = selective_scan_fn(u, delta, A, B, C, D, return_last_state=True)
    assert out.shape == (2, 4, 0) and torch.equal(state, torch.zeros(2, 4, 8, dtype=u.dtype))
    cl = [u.transpose(1, 2).float(), delta.transpose(1, 2).float(), A.float()]
    bc = B.permute(0, 3, 1, 2).float()
    for name in sorted(set(list_scan_backends()) - {"triton"}):
        y = selective_scan_channels_last(*cl, bc, bc, D.float(), backend=name)
        assert y.shape == (2, 0, 4), name


def test_chunked_backend_checks_its_arguments():
    u = torch.randn(1, 5, 4)
    A = -torch.rand(4, 2)
    bad = torch.randn(1, 5, 3, 2)  # 3 groups do not divide dim 4
    for name in ("chunked", "torch", "reference"):
        with pytest.raises(ArgumentError, match="groups") as info:
            selective_scan_channels_last(u, u.abs(), A, bad, bad, backend=name)
        assert info.value.argument == "B"


def test_complex_A_is_refused_by_every_backend_and_the_project_api():
    u, delta, A, B, C, _D, _bias = _real_case(groups=1, dtype=torch.float32)
    Ac = torch.complex(A, torch.ones_like(A))
    cl = [u.transpose(1, 2), delta.transpose(1, 2), Ac, B.permute(0, 2, 1)[:, :, None]]
    for name in sorted(set(list_scan_backends()) - {"triton"}):
        with pytest.raises(ArgumentError, match="complex") as info:
            selective_scan_channels_last(*cl, cl[-1], backend=name)
        assert info.value.argument == "A", name
    with pytest.raises(ArgumentError, match="selective_scan_fn"):
        selective_scan(u, delta, Ac, B, C)
    with pytest.raises(ArgumentError, match="imaginary"):
        selective_scan_ref(u, delta, A, torch.complex(B, B), C)  # complex B with real A


def test_complex_A_keeps_its_imaginary_part():
    u, delta, A, *_ = _real_case(groups=1)
    pairs = torch.randn(2, 8, 66, dtype=torch.float64)
    y_rotating = selective_scan_fn(u, delta, torch.complex(A, 3 * torch.ones_like(A)), pairs, pairs)
    y_real = selective_scan_fn(u, delta, torch.complex(A, torch.zeros_like(A)), pairs, pairs)
    expected, _ = mamba_reference(u, delta, torch.complex(A, 3 * torch.ones_like(A)), pairs, pairs)
    assert torch.allclose(y_rotating, expected, rtol=0, atol=1e-10)
    assert (y_rotating - y_real).abs().max() > 0.1


def test_cu_seqlens_restart_the_state_as_mamba_ssm_does():
    u, delta, A, B, C, D, bias = _real_case(L=20)
    cu = torch.tensor([0, 8, 20])
    packed = selective_scan_fn(u, delta, A, B, C, D, delta_bias=bias, cu_seqlens=cu)
    for lo, hi in ((0, 8), (8, 20)):
        part = selective_scan_fn(
            u[..., lo:hi], delta[..., lo:hi], A, B[..., lo:hi], C[..., lo:hi], D, delta_bias=bias
        )
        assert torch.allclose(packed[..., lo:hi], part, rtol=0, atol=1e-10)


def test_last_state_closed_form_across_chunks_and_strong_decay(monkeypatch):
    monkeypatch.setattr(mamba_compat, "_CHUNK_ELEMENTS", 2 * 4 * 8 * 7)  # 7 steps a chunk
    u, delta, A, B, C, D, bias = _real_case(L=300)
    A = A * 40  # |delta A| up to ~20 a step
    _, state = selective_scan_fn(u, delta, A, B, C, D, delta_bias=bias, return_last_state=True)
    _, expected = mamba_reference(u, delta, A, B, C, D, delta_bias=bias)
    assert torch.allclose(state, expected, rtol=1e-10, atol=1e-12)
    grad = torch.autograd.grad(
        selective_scan_fn(u.requires_grad_(), delta, A, B, C, return_last_state=True)[1].sum(), u
    )[0]
    assert grad.abs().sum() > 0  # the last state's gradient is kept


def test_errors_name_the_argument():
    u, delta, A, B, C, *_ = _real_case()
    with pytest.raises(ArgumentError) as info:
        selective_scan_fn(u, delta, A, B[:, :, :, :5], C)
    assert info.value.argument == "B"
    with pytest.raises(ArgumentError) as info:
        selective_scan_fn(u, delta, A, B, C, z=u[:, :2])
    assert info.value.argument == "z"
