"""The Triton SSD kernels (``ssd_scan(..., backend="triton")``) equal the PyTorch path.

Without CUDA they run on CPU tensors under Triton's interpreter (set below, before triton is
imported, until tests/conftest.py does it for every module); tiny shapes keep them fast.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

from contrast_sr.ops import ssd_triton
from contrast_sr.ops.ssd import resolve_ssd_backend, ssd_scan
from tests.triton_compile_check import run_in_subprocess

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
NAMES = ("x", "dt", "A", "B", "C", "D", "dt_bias")


def _inputs(b, L, heads, head_dim, groups, N, dtype=torch.float32, decay=1.0, seed=0, d2=False):
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(DEVICE, dtype)

    x, dt = rnd(b, L, heads, head_dim), rnd(b, L, heads)
    A = -(torch.rand(heads, generator=g) * decay + 0.05).to(DEVICE, dtype)
    B, C = rnd(b, L, groups, N), rnd(b, L, groups, N)
    D = rnd(heads, head_dim) if d2 else rnd(heads)
    return [x, dt, A, B, C, D, rnd(heads)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def _both(inputs, gy=None, **kwargs):
    """(y, grads) of the Triton and the torch path on the same inputs and output gradient."""
    out = []
    for backend in ("triton", "torch"):
        y = ssd_scan(*inputs, backend=backend, **kwargs)
        gy = torch.randn_like(y) if gy is None else gy
        wanted = [t for t in inputs if t is not None and t.requires_grad]
        out.append((y, torch.autograd.grad(y, wanted, gy)))
    return out


CASES = [  # b, L, heads, head_dim, groups, N, chunk, softplus, D per channel
    (1, 37, 4, 3, 2, 4, 8, True, False),  # ragged tail, 5 chunks, 2 heads per group
    (1, 16, 2, 4, 1, 2, 4, False, True),  # L a multiple of the chunk
    (1, 5, 3, 2, 1, 3, 4, True, True),  # 2 chunks, the second of 1 step
    (2, 16, 2, 2, 2, 4, 7, True, False),  # chunk not a power of two
    (1, 5, 2, 3, 2, 2, 8, False, False),  # one chunk longer than L
]


@pytest.mark.parametrize("case", CASES)
def test_values_and_all_gradients_match_torch_path_float32(case):
    b, L, h, p, g, N, T, softplus, d2 = case
    inputs = _inputs(b, L, h, p, g, N, d2=d2, seed=L + T)
    if not softplus:
        inputs[1] = inputs[1].abs()  # dt must be positive without the softplus
        inputs[6] = inputs[6].abs()
    inputs = [t.requires_grad_() for t in inputs]
    (y, grads), (y_ref, grads_ref) = _both(inputs, dt_softplus=softplus, chunk=T)
    assert y.dtype == torch.float32 and y.shape == y_ref.shape
    assert _rel(y, y_ref) <= 1e-5
    for name, a, r in zip(NAMES, grads, grads_ref, strict=True):
        assert a.dtype == r.dtype and a.shape == r.shape, name
        assert _rel(a, r) <= 1e-5, name


def test_without_d_and_bias_and_strided_inputs():
    """B and C as views of one projection (as ss2d_m2 passes them), a strided output gradient."""
    x, dt, A, _, _, _, _ = _inputs(1, 11, 2, 3, 1, 3)
    proj = torch.randn(1, 11, 2 * 3 + 1, device=DEVICE)
    B, C = proj[..., :3].unsqueeze(2), proj[..., 3:6].unsqueeze(2)  # (1, 11, 1, 3), strided
    inputs = [x, dt.abs(), A, B, C]
    inputs = [t.requires_grad_() for t in inputs[:3]] + [B.requires_grad_(), C.requires_grad_()]
    gy = torch.randn(1, 11, 3, 2, device=DEVICE).transpose(2, 3)  # non-contiguous
    (y, grads), (y_ref, grads_ref) = _both(inputs, gy=gy, chunk=4)
    assert _rel(y, y_ref) <= 1e-5
    for name, a, r in zip(NAMES, grads, grads_ref, strict=False):
        assert _rel(a, r) <= 1e-5, name


def test_state_passing_in_several_tiles(monkeypatch):
    monkeypatch.setattr(ssd_triton, "STATE_TILE", 4)  # head_dim x N = 12: three tiles
    inputs = [t.requires_grad_() for t in _inputs(1, 13, 2, 3, 1, 4, seed=3)]
    (y, grads), (y_ref, grads_ref) = _both(inputs, dt_softplus=True, chunk=4)
    assert _rel(y, y_ref) <= 1e-5
    for name, a, r in zip(NAMES, grads, grads_ref, strict=True):
        assert _rel(a, r) <= 1e-5, name


def test_strong_decay_is_finite_and_equal():
    inputs = _inputs(1, 37, 2, 2, 1, 2, decay=500.0, seed=2)
    inputs[1], inputs[6] = inputs[1].abs() * 5, inputs[6].abs()  # dt * A down to about -8000
    inputs = [t.requires_grad_() for t in inputs]
    (y, grads), (y_ref, grads_ref) = _both(inputs, chunk=8)
    assert torch.isfinite(y).all() and all(torch.isfinite(g).all() for g in grads)
    assert _rel(y, y_ref) <= 1e-5
    for name, a, r in zip(NAMES, grads, grads_ref, strict=True):
        assert _rel(a, r) <= 1e-5, name


def test_bf16_inputs_within_bf16_precision():
    inputs = _inputs(1, 16, 2, 4, 1, 4, seed=5)
    inputs[0], inputs[1], inputs[3], inputs[4] = (inputs[i].bfloat16() for i in (0, 1, 3, 4))
    inputs = [t.requires_grad_() for t in inputs]
    (y, grads), (y_ref, grads_ref) = _both(inputs, dt_softplus=True, chunk=8)
    assert y.dtype == torch.bfloat16
    assert _rel(y, y_ref) <= 1e-2  # both compute in float32: only y's rounding differs
    for name, a, r in zip(NAMES, grads, grads_ref, strict=True):
        assert a.dtype == r.dtype, name
        assert _rel(a, r) <= 1e-2, name


def test_backend_choice():
    x = torch.zeros(1, 4, 2, 2, device=DEVICE)
    auto = "triton" if DEVICE == "cuda" else "torch"  # CPU: the PyTorch path unless named
    assert resolve_ssd_backend(x) == resolve_ssd_backend(x, "auto") == auto
    assert resolve_ssd_backend(x, "torch") == "torch"
    assert resolve_ssd_backend(x, "triton") == "triton"  # CPU tensors: under the interpreter
    assert resolve_ssd_backend(x.half()) == auto
    assert resolve_ssd_backend(x.double()) == "torch"
    with pytest.raises(ValueError, match="unknown SSD backend"):
        resolve_ssd_backend(x, "cuda")
    with pytest.raises(ValueError, match="float32"):
        resolve_ssd_backend(x.double(), "triton")
    inputs = _inputs(1, 9, 2, 2, 1, 2)
    if DEVICE == "cpu":  # the default CPU path is the torch one, bit for bit
        assert torch.equal(ssd_scan(*inputs, chunk=4), ssd_scan(*inputs, chunk=4, backend="torch"))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_traced_graph_keeps_the_torch_form():
    """Under jit.trace (as under ONNX export / torch.compile) auto never picks the kernels."""
    inputs = _inputs(1, 8, 2, 2, 1, 2)
    traced = torch.jit.trace(lambda *a: ssd_scan(*a, dt_softplus=True, chunk=4), inputs)
    assert "prim::PythonOp" not in str(traced.graph)  # no autograd.Function in the graph
    eager = ssd_scan(*inputs, dt_softplus=True, chunk=4, backend="torch")
    assert _rel(traced(*inputs), eager) <= 1e-6


@pytest.mark.parametrize("arch", [80, pytest.param(90, marks=pytest.mark.slow)])
def test_kernels_compile_for_gpu(arch):
    """Triton's own compiler (no GPU needed) accepts every kernel for sm_80 / sm_90: the
    interpreter does not check what only the compiler rejects."""
    pytest.importorskip("triton.backends.nvidia")
    assert run_in_subprocess("ssd", arch).count("REG:") == 6
