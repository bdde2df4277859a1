"""The "triton" scan backend equals the reference (values and all 7 gradients).

Without CUDA the kernels run on CPU tensors through Triton's interpreter (``TRITON_INTERPRET=1``
from ``conftest.py``), which is slow: shapes are tiny, and the launch plan is forced small
(checkpoint K, several time segments, several tiles per group) to cross every boundary.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contrast_sr.ops import scan_backend, selective_scan_channels_last
from contrast_sr.ops.scan import dispatch, list_scan_backends, resolve_scan_backend
from contrast_sr.ops.scan.blocked import scan_torch_channels_last
from contrast_sr.ops.scan.reference import scan_reference_channels_last
from tests.test_selective_scan import grads, make_inputs
from tests.triton_compile_check import run_in_subprocess

pytest.importorskip("triton")
triton_scan = pytest.importorskip("contrast_sr.ops.scan.triton_gpu")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and not triton_scan.interpreting():
    pytest.skip("no CUDA and TRITON_INTERPRET is not set", allow_module_level=True)

NAMES = ["u", "delta", "A", "B", "C", "D", "delta_bias"]


def close(a: torch.Tensor, ref: torch.Tensor, tol: float) -> bool:
    """Relative error of the norms (an exact zero matches a zero reference)."""
    a, ref = a.detach().cpu().double(), ref.detach().cpu().double()
    return (a - ref).norm().item() <= tol * ref.norm().item() + 1e-12


def on_device(args, dtype=torch.float32):
    return [None if t is None else t.to(DEVICE, dtype) for t in args]


def check_against_reference(case, softplus, with_d, with_bias, **plan):
    b, L, dim, G, N = case
    args = make_inputs(b, L, dim, G, N, softplus, seed=L + N)
    args[5] = args[5] if with_d else None
    args[6] = args[6] if with_bias else None
    gy = torch.randn(b, L, dim, dtype=torch.float64)
    y_ref, g_ref = grads(scan_reference_channels_last, args, softplus, gy)

    def run(*a):
        return triton_scan.scan_triton_channels_last(*a, **plan)

    y, g = grads(run, on_device(args), softplus, gy.to(DEVICE, torch.float32))
    assert y.dtype == torch.float32 and y.device.type == DEVICE
    assert close(y, y_ref, 1e-5)
    names = [n for n, t in zip(NAMES, args, strict=True) if t is not None]
    assert len(g) == len(g_ref) == len(names)
    for name, a, r in zip(names, g, g_ref, strict=True):
        assert a.dtype == torch.float32 and a.shape == r.shape, name
        assert close(a, r, 1e-5), (name, case, plan)


CASES = [  # (b, L, dim, groups, N), plan overrides: K, time segments, channel tile
    ((2, 1, 8, 4, 1), {}),
    ((2, 7, 8, 1, 1), {}),
    ((2, 7, 8, 4, 4), {"checkpoint": 2, "segments": 2}),
    ((1, 33, 8, 4, 4), {"checkpoint": 4, "segments": 3}),
    ((1, 33, 8, 1, 1), {"checkpoint": 4, "segments": 3, "block_d": 4}),  # 2 tiles per group
    ((1, 33, 8, 1, 3), {"checkpoint": 8, "segments": 2, "block_d": 4}),  # N = 3: padded lanes
    ((1, 9, 12, 4, 16), {"checkpoint": 4, "segments": 2}),  # N = 16; 3 channels in a tile of 4
]


@pytest.mark.parametrize("case,plan", CASES, ids=[str(c[0]) for c in CASES])
def test_triton_matches_reference(case, plan):
    check_against_reference(case, True, True, True, **plan)


@pytest.mark.parametrize("softplus", [False, True])
@pytest.mark.parametrize("with_d,with_bias", [(False, False), (True, False), (False, True)])
def test_triton_optional_arguments(softplus, with_d, with_bias):
    check_against_reference((2, 7, 8, 4, 4), softplus, with_d, with_bias, checkpoint=4)


@pytest.mark.parametrize("dtype,tol", [(torch.bfloat16, 1e-2), (torch.float16, 2e-3)])
def test_triton_half_inputs(dtype, tol):
    """bf16/fp16 u, delta, B, C: float32 inside; only the rounding of y and the gradients."""
    args = make_inputs(1, 9, 8, 4, 4, True, seed=5)
    for i in (0, 1, 3, 4):
        args[i] = args[i].to(dtype).double()  # the reference sees the same rounded inputs
    gy = torch.randn(1, 9, 8, dtype=torch.float64).to(dtype)
    y_ref, g_ref = grads(scan_reference_channels_last, args, True, gy.double())
    half = on_device(args)
    for i in (0, 1, 3, 4):
        half[i] = half[i].to(dtype)
    y, g = grads(triton_scan.scan_triton_channels_last, half, True, gy.to(DEVICE))
    assert y.dtype == dtype and close(y, y_ref, tol)
    for name, a, r, t in zip(NAMES, g, g_ref, half, strict=True):
        assert a.dtype == t.dtype and close(a, r, tol), name


@pytest.mark.slow
def test_triton_long_sequence_strong_decay():
    """L = 600 over 5 segments with |delta*A| up to 30 per step: finite, equal to the torch path."""
    args = on_device(make_inputs(2, 600, 8, 4, 2, False, decay=30.0, seed=9))
    args[1] = args[1] + 0.5
    gy = torch.randn(2, 600, 8)
    y_ref, g_ref = grads(scan_torch_channels_last, [t.cpu() for t in args], False, gy)

    def run(*a):
        return triton_scan.scan_triton_channels_last(*a, checkpoint=16, segments=5)

    y, g = grads(run, args, False, gy.to(DEVICE))
    assert torch.isfinite(y).all() and close(y, y_ref, 1e-5)
    for name, a, r in zip(NAMES, g, g_ref, strict=True):
        assert close(a, r, 1e-5), name


def test_checkpoints_not_all_states():
    """Training saves the inputs and one state every K steps, not the L*N states."""
    b, L, dim, G, N, K = 1, 32, 8, 1, 4, 8
    args = on_device(make_inputs(b, L, dim, G, N, True))
    args = [t.requires_grad_() for t in args]
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        triton_scan.scan_triton_channels_last(*args, True, checkpoint=K)
    inputs = sum(t.numel() for t in args)
    assert sum(t.numel() for t in saved) == inputs + b * (L // K) * dim * N


def test_plan_segments_cover_the_sequence():
    u = torch.zeros(2, 1000, 48)
    for N, segments in ((1, None), (16, 7), (3, 1000)):
        plan = triton_scan.plan_scan(u, 4, N, segments=segments)
        assert plan.seg % plan.checkpoint == 0 and plan.block_n >= N
        assert plan.segments * plan.seg >= 1000 > (plan.segments - 1) * plan.seg
        assert plan.tiles * plan.block_d >= 48 // 4


def test_dispatch_names_triton_but_never_picks_it_for_cpu_tensors():
    assert "triton" in list_scan_backends() and dispatch._AUTO_ORDER[0] == "triton"
    cpu = torch.zeros(1, 4, 8)
    assert resolve_scan_backend(cpu) != "triton"
    assert not triton_scan.available(cpu)
    assert resolve_scan_backend(cpu, "triton") == "triton"
    if DEVICE == "cuda":
        assert resolve_scan_backend(cpu.cuda()) == "triton"
    args = on_device(make_inputs(2, 5, 8, 4, 1, True))
    with scan_backend("triton"):  # no gradients: the forward saves nothing
        y = selective_scan_channels_last(*args, delta_softplus=True)
    assert close(y, scan_torch_channels_last(*[t.cpu() for t in args], True), 1e-5)
    with pytest.raises(RuntimeError, match="float32"):
        selective_scan_channels_last(*[t.double() for t in args], backend="triton")


def test_compiled_caller_runs_the_kernel_eagerly():
    """Under torch.compile the backend is one opaque call (a graph break)."""
    args = on_device(make_inputs(1, 5, 8, 4, 1, True))
    args = [t.requires_grad_() for t in args]

    def f(*a):
        return selective_scan_channels_last(*a, delta_softplus=True, backend="triton").sum()

    loss = torch.compile(f, backend="eager")(*args)
    loss.backward()
    ref = [t.detach().cpu().requires_grad_() for t in args]
    ref_loss = scan_torch_channels_last(*ref, True).sum()
    ref_loss.backward()
    assert close(loss, ref_loss, 1e-5)
    for a, r in zip(args, ref, strict=True):
        assert close(a.grad, r.grad, 1e-5)


def test_kernels_compile_for_cuda_without_a_gpu():
    """Source -> PTX -> cubin for sm_90 with the wheel's ptxas (the interpreter checks the
    values, this checks that the real compiler accepts the kernels)."""
    import triton

    version = tuple(int(x) for x in triton.__version__.split(".")[:2])
    bin_dir = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    if version < (3, 3) or not (bin_dir / "ptxas").exists():
        pytest.skip("needs triton >= 3.3 with its bundled ptxas")
    assert run_in_subprocess("scan", 90, timeout=300).count("REG:") == 12
