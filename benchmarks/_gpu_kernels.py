"""gpu_check: each Triton kernel against its PyTorch path (values and gradients).

Kernels are looked up by name when the check runs, so one script serves every stage of the GPU
work: a kernel whose module, function or ``impl``/``backend`` argument does not exist (yet) is
reported "not available" with the reason, never as a failure.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from _gpu_setup import Setup, exact_fp32, max_error, triton_runs_here

FP32_TOL = 1e-5  # max error / max |reference|, values and every gradient
LOW_TOL = 1e-2  # bf16 inputs: error against the fp32 path, or twice the PyTorch path's own


@dataclass(frozen=True)
class Kernel:
    """A Triton kernel behind ``function`` (``module:name``), chosen by ``arg`` = "triton"."""

    name: str
    module: str  # present once the kernel exists
    function: str
    arg: str  # "backend" or "impl"
    torch_path: str  # the value of ``arg`` for the PyTorch path
    cases: Callable[[Setup], dict[str, Callable[[torch.dtype], tuple[list, dict, list[int]]]]]


def _gen(device: torch.device, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return lambda *shape, s=1.0: (torch.randn(shape, generator=gen) * s).to(device)


def _scan_inputs(setup: Setup, n: int, seed: int = 0):
    """Mamba-1 scan in SS2D's layout: u, delta (b, L, 4D); A (4D, N); B, C (b, L, 4, N)."""
    b, length, dim = setup.check_scan_shape

    def make(dtype: torch.dtype, shape=(b, length, dim)):
        r = _gen(setup.device, seed + n)
        low = [
            r(*shape),
            r(*shape, s=0.5),
            r(shape[0], shape[1], 4, n),
            r(shape[0], shape[1], 4, n),
        ]
        u, delta, bs, cs = (t.to(dtype) for t in low)
        a = -torch.exp(r(shape[2], n, s=0.5))
        d, bias = r(shape[2]), r(shape[2], s=0.1)
        return [u, delta, a, bs, cs, d, bias], {"delta_softplus": True}, [0, 1, 2, 3, 4, 5, 6]

    return make


def scan_inputs(setup: Setup, n: int, shape: tuple[int, int, int], dtype: torch.dtype):
    """The scan's arguments at ``shape`` (b, L, dim) with N = ``n`` (the benchmark uses it)."""
    return _scan_inputs(setup, n)(dtype, shape)


def _scan_cases(setup: Setup):
    return {f"N={n}": _scan_inputs(setup, n) for n in setup.scan_states}


def _cross_cases(setup: Setup):
    h, w = setup.image
    c = 8 if setup.dry_run else 48

    def one(shape, extra=()):
        def make(dtype):
            return [_gen(setup.device, 1)(*shape).to(dtype), *extra], {}, [0]

        return make

    return {
        "cross_scan_channels_last": one((2, h, w, c)),
        "cross_merge_channels_last": one((2, h * w, 4, c), (h, w)),
        "cross_scan": one((2, c, h, w)),
        "cross_merge": one((2, 4, c, h * w), (h, w)),
    }


def _dwconv_cases(setup: Setup):
    h, w = setup.image
    c = 4 if setup.dry_run else 96

    def make_for(padding: str):
        def make(dtype):
            r = _gen(setup.device, 2)
            x, weight, bias = r(2, c, h, w), r(c, 1, 3, 3, s=0.3), r(c, s=0.1)
            x, weight, bias = (t.to(dtype) for t in (x, weight, bias))  # as under autocast
            return [x, weight, bias, padding], {}, [0, 1, 2]

        return make

    return {"zeros": make_for("zeros"), "reflect": make_for("reflect")}


def _ssd_cases(setup: Setup):
    b, length = (1, 10) if setup.dry_run else (2, 300)
    heads, p, groups, n = (2, 3, 1, 4) if setup.dry_run else (8, 16, 2, 16)
    chunk = 4 if setup.dry_run else 64

    def make(dtype):
        r = _gen(setup.device, 3)
        x, dt = r(b, length, heads, p).to(dtype), r(b, length, heads, s=0.5).to(dtype)
        bs, cs = (r(b, length, groups, n).to(dtype) for _ in range(2))
        a, d, bias = -torch.exp(r(heads, s=0.5)), r(heads), r(heads, s=0.1)
        kwargs = {"dt_softplus": True, "chunk": chunk}
        return [x, dt, a, bs, cs, d, bias], kwargs, [0, 1, 2, 3, 4, 5, 6]

    return {f"L={length} chunk={chunk}": make}


KERNELS = [
    Kernel(
        "scan",
        "contrast_sr.ops.scan",
        "contrast_sr.ops.scan:selective_scan_channels_last",
        "backend",
        "torch",
        _scan_cases,
    ),
    Kernel(
        "cross_scan",
        "contrast_sr.ops.cross_scan_triton",
        "contrast_sr.ops.cross_scan:*",  # every case names its function
        "impl",
        "torch",
        _cross_cases,
    ),
    Kernel(
        "dwconv_gelu",
        "contrast_sr.ops.dwconv",
        "contrast_sr.ops.dwconv:dwconv3x3_gelu",
        "impl",
        "torch",
        _dwconv_cases,
    ),
    Kernel(
        "ssd",
        "contrast_sr.ops.ssd_triton",
        "contrast_sr.ops.ssd:ssd_scan",
        "backend",
        "torch",
        _ssd_cases,
    ),
]


def scan_has_triton() -> bool:
    """The Mamba-1 scan's backend table lists "triton"."""
    from contrast_sr.ops.scan import list_scan_backends

    return "triton" in list_scan_backends()


def _function(kernel: Kernel, case: str) -> Callable:
    module, name = kernel.function.split(":")
    return getattr(importlib.import_module(module), case if name == "*" else name, None)


def unavailable(kernel: Kernel, setup: Setup, case: str | None = None) -> str:
    """Why ``kernel`` cannot be checked here ('' when it can)."""
    if not triton_runs_here(setup.device):
        return "triton not installed" if setup.device.type == "cuda" else "no CUDA, no interpreter"
    if importlib.util.find_spec(kernel.module) is None:
        return f"module {kernel.module} does not exist"
    if kernel.name == "scan" and not scan_has_triton():
        return 'the scan backend table has no "triton"'
    fn = _function(kernel, case or next(iter(kernel.cases(setup))))
    if fn is None:
        return f"{kernel.function} does not exist"
    if kernel.arg not in inspect.signature(fn).parameters:
        return f"{kernel.function} takes no {kernel.arg}= argument"
    return ""


def _run(fn, arg: str, path: str, inputs: tuple[list, dict, list[int]]):
    args, kwargs, grad_index = inputs
    args = list(args)
    leaves = []
    for i in grad_index:
        args[i] = args[i].detach().clone().requires_grad_(True)
        leaves.append(args[i])
    out = fn(*args, **kwargs, **{arg: path})
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(7)).to(out.device)
    grads = torch.autograd.grad((out.float() * weight).sum(), leaves)
    return [out, *grads]


def _upcast(inputs):
    args, kwargs, grad_index = inputs
    up = [a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args]
    return up, kwargs, grad_index


def compare_case(kernel: Kernel, fn: Callable, make, dtype: torch.dtype) -> dict:
    """Errors of the Triton path (and, for low precision, the PyTorch path) vs fp32 PyTorch."""
    with exact_fp32():
        inputs = make(dtype)
        fast = _run(fn, kernel.arg, "triton", inputs)
        ref = _run(fn, kernel.arg, kernel.torch_path, _upcast(inputs))
        err = max_error(fast, ref)
        if dtype == torch.float32:
            return {"error": err, "tolerance": FP32_TOL, "ok": err <= FP32_TOL}
        low = _run(fn, kernel.arg, kernel.torch_path, inputs)
        torch_err = max_error(low, ref)
        tol = max(2 * torch_err, LOW_TOL)
        return {"error": err, "torch_error": torch_err, "tolerance": tol, "ok": err <= tol}


def check_kernel(kernel: Kernel, setup: Setup) -> dict:
    """{status, details} for one kernel: every case at fp32 and bf16."""
    cases = kernel.cases(setup)
    reasons = {case: unavailable(kernel, setup, case) for case in cases}
    if all(reasons.values()):
        return {"status": "not available", "note": next(iter(reasons.values()))}
    details, ok = {}, True
    for case, make in cases.items():
        if reasons[case]:
            details[case] = {"status": "not available", "note": reasons[case]}
            continue
        fn = _function(kernel, case)
        for dtype in (torch.float32, torch.bfloat16):
            result = compare_case(kernel, fn, make, dtype)
            details[f"{case} {str(dtype).removeprefix('torch.')}"] = result
            ok = ok and result["ok"]
    return {"status": "pass" if ok else "fail", "details": details}
