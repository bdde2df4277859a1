"""The public selective scan and the one table of its backends.

Every backend is a function with the channels-last signature
``fn(u, delta, A, B, C, D, delta_bias, delta_softplus) -> y`` (shapes in
:mod:`contrast_sr.ops.scan.checks`). :data:`_BACKENDS` maps a name to the function and, for
backends that ``auto`` may pick, an availability check ``available(u) -> bool``.

Which backend runs, first match wins:

1. the ``backend=`` argument, then the innermost :func:`scan_backend` block of this thread;
2. while tracing or exporting (``torch.jit.trace``, ``torch.onnx.export``): "chunked", the
   loop-free formulation (the others loop over L in Python or hide in an autograd.Function);
3. ``$CONTRAST_SR_SCAN_BACKEND``;
4. auto: the first fused backend in :data:`_AUTO_ORDER` whose check accepts u, else "torch".
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from contrast_sr.errors import ArgumentError
from contrast_sr.ops.scan.blocked import scan_torch_channels_last
from contrast_sr.ops.scan.checks import check_real
from contrast_sr.ops.scan.chunked import selective_scan_channels_last_chunked
from contrast_sr.ops.scan.layout import (
    bc_pair_channels_last,
    channels_last,
    check_bc,
    check_mamba_layout,
    mamba_layout,
)
from contrast_sr.ops.scan.reference import scan_reference_channels_last
from contrast_sr.ops.tracing import is_exporting

ScanFn = Callable[..., torch.Tensor]
ENV_BACKEND = "CONTRAST_SR_SCAN_BACKEND"


@dataclass(frozen=True)
class ScanBackend:
    """A registered backend: ``fn`` and, if auto-selection may pick it, ``available(u)``."""

    fn: ScanFn
    available: Callable[[torch.Tensor], bool] | None = None


def _numba_scan(*args, **kwargs) -> torch.Tensor:
    """The "numba" backend, imported on first use (importing numba takes about a second)."""
    from contrast_sr.ops.scan.numba_cpu import scan_numba_channels_last

    return scan_numba_channels_last(*args, **kwargs)


def _numba_available(u: torch.Tensor) -> bool:
    from contrast_sr.ops.scan.numba_cpu import available

    return available(u)


def _triton_scan(*args, **kwargs) -> torch.Tensor:
    """The "triton" backend, imported on first use (importing triton takes about a second)."""
    from contrast_sr.ops.scan.triton_gpu import scan_triton_channels_last

    return scan_triton_channels_last(*args, **kwargs)


def _triton_available(u: torch.Tensor) -> bool:
    if not u.is_cuda:  # CPU callers never import triton
        return False
    from contrast_sr.ops.scan.triton_gpu import available

    return available(u)


_BACKENDS: dict[str, ScanBackend] = {
    "torch": ScanBackend(scan_torch_channels_last),  # auto's fallback, runs everywhere
    "reference": ScanBackend(scan_reference_channels_last),  # the sequential loop
    "chunked": ScanBackend(selective_scan_channels_last_chunked),  # traced / exported graphs
}
if importlib.util.find_spec("numba") is not None:  # a dependency; torch is the fallback
    _BACKENDS["numba"] = ScanBackend(_numba_scan, _numba_available)
if importlib.util.find_spec("triton") is not None:  # optional extra "triton" (CUDA tensors)
    _BACKENDS["triton"] = ScanBackend(_triton_scan, _triton_available)

_AUTO_ORDER: list[str] = ["triton", "numba"]  # backends auto tries (if registered), fastest first
_STATE = threading.local()
ScanObserver = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], None]
_OBSERVERS: list[ScanObserver] = []


@contextlib.contextmanager
def observe_scans(callback: ScanObserver) -> Iterator[None]:
    """Call ``callback(u, A, D)`` for every scan dispatched inside the block (u channels-last
    (b, L, dim)), e.g. to count its FLOPs, which ``FlopCounterMode`` cannot see inside the
    fused backends. Scans in the mamba layout are reported once, as their channels-last call.
    """
    _OBSERVERS.append(callback)
    try:
        yield
    finally:
        _OBSERVERS.remove(callback)


def notify_scan_observers(u: torch.Tensor, A: torch.Tensor, D: torch.Tensor | None) -> None:
    """Report a scan of channels-last shape ``u`` (b, L, dim) to :func:`observe_scans`; for
    fused ops that run a scan without this dispatch (u may be a ``meta`` tensor)."""
    for observe in _OBSERVERS:
        observe(u, A, D)


def register_scan_backend(
    name: str, fn: ScanFn, available: Callable[[torch.Tensor], bool] | None = None
) -> None:
    """Add (or replace) a backend ``fn(u, delta, A, B, C, D, delta_bias, delta_softplus)``.

    ``available(u)`` (optional) says whether ``auto`` may pick it for input ``u`` (after the
    built-in fused backends); backends registered without it are only used when named.
    """
    _BACKENDS[name] = ScanBackend(fn, available)
    if available is not None and name not in _AUTO_ORDER:
        _AUTO_ORDER.append(name)


def list_scan_backends() -> list[str]:
    """Names of the registered backends (sorted)."""
    return sorted(_BACKENDS)


def _known(name: str) -> str:
    if name not in _BACKENDS:
        known = ", ".join(list_scan_backends())
        raise ArgumentError("backend", f"unknown scan backend {name!r} (known: {known})")
    return name


@contextlib.contextmanager
def scan_backend(name: str | None) -> Iterator[None]:
    """Use backend ``name`` (or ``None``/"auto") for scans in this thread inside the block."""
    if name not in (None, "auto"):
        _known(name)
    previous = getattr(_STATE, "name", None)
    _STATE.name = name
    try:
        yield
    finally:
        _STATE.name = previous


def resolve_scan_backend(u: torch.Tensor, backend: str | None = None) -> str:
    """The name of the backend a scan of ``u`` runs on (the order in the module docstring)."""
    name = backend or getattr(_STATE, "name", None)
    if name not in (None, "auto"):
        return _known(name)
    if is_exporting():
        return "chunked"
    name = os.environ.get(ENV_BACKEND) or "auto"
    if name != "auto":
        return _known(name)
    for candidate in _AUTO_ORDER:
        entry = _BACKENDS.get(candidate)
        if entry is not None and entry.available is not None and entry.available(u):
            return candidate
    return "torch"


def selective_scan_channels_last(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    backend: str | None = None,
) -> torch.Tensor:
    """Selective scan, channels last: u, delta (b, L, dim); A (dim, N); B, C (b, L, groups, N);
    D, delta_bias (dim,). Returns y (b, L, dim) in u's dtype (float32 accumulation inside)."""
    fn = _BACKENDS[resolve_scan_backend(u, backend)].fn
    notify_scan_observers(u, A, D)
    return fn(u, delta, A, B, C, D, delta_bias, delta_softplus)


def selective_scan_mamba_layout(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
    dtype: torch.dtype,
    backend: str | None = None,
) -> torch.Tensor:
    """Scan u, delta (b, dim, L), computing in ``dtype``; B, C already channels-last
    (b, L, groups, N). Returns y (b, dim, L) in ``dtype``.

    The numba backend runs this layout directly (its kernels stage (channels x steps) blocks;
    its backward still transposes gy, gu, gdelta for N > 1); every other backend runs
    channels-last on transposed copies (u, delta in, y out, and three for the gradients)."""
    if resolve_scan_backend(u, backend) == "numba":
        from contrast_sr.ops.scan.numba_cpu import scan_numba_mamba_layout

        notify_scan_observers(u.transpose(1, 2), A, D)
        return scan_numba_mamba_layout(
            u.to(dtype), delta.to(dtype), A, B, C, D, delta_bias, delta_softplus
        )
    y = selective_scan_channels_last(
        channels_last(u, dtype),
        channels_last(delta, dtype),
        A,
        B,
        C,
        D,
        delta_bias,
        delta_softplus,
        backend=backend,
    )
    return mamba_layout(y)


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    *,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    backend: str | None = None,
) -> torch.Tensor:
    """The project's scan in mamba_ssm's layout: u, delta (b, dim, L); A (dim, N) real;
    B, C constant (dim, N) or variable (b, N, L) / (b, groups, N, L); D, delta_bias (dim,).
    Returns y (b, dim, L) in u's dtype. Runs through :func:`selective_scan_mamba_layout`
    (numba in this layout, the other backends on transposed copies).

    Everything after D is keyword-only: mamba_ssm's ``selective_scan_fn`` takes ``z`` there, so
    a positional call written for it fails here instead of binding ``z`` to ``delta_bias``
    (:func:`contrast_sr.ops.selective_scan_fn` is the mamba-compatible function). Complex
    tensors raise ArgumentError (this API is real-valued; ``selective_scan_fn`` takes complex A).
    """
    check_real(u=u, delta=delta, A=A, B=B, C=C, D=D, delta_bias=delta_bias)
    batch, dim, L, N = check_mamba_layout(u, delta, A)
    check_bc(B, "B", batch, dim, N, L)
    check_bc(C, "C", batch, dim, N, L)
    B_cl, C_cl = bc_pair_channels_last(B, C, batch, L, torch.promote_types(B.dtype, C.dtype))
    return selective_scan_mamba_layout(
        u, delta, A, B_cl, C_cl, D, delta_bias, delta_softplus, u.dtype, backend=backend
    )
