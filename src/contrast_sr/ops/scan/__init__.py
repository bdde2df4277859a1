"""Selective scan (Mamba-1 S6): the public entry points and their backends.

* :mod:`~contrast_sr.ops.scan.dispatch`: :func:`selective_scan`,
  :func:`selective_scan_channels_last` and the one backend table (auto choice,
  :func:`scan_backend`, ``$CONTRAST_SR_SCAN_BACKEND``, :func:`register_scan_backend`,
  :func:`observe_scans` for counting).
* :mod:`~contrast_sr.ops.scan.mamba_compat`: :func:`selective_scan_fn` with mamba_ssm's
  signature and semantics (z gating, last state, complex A), on the dispatched backends;
  :func:`selective_scan_ref` (:mod:`~contrast_sr.ops.scan.reference`) is its sequential loop.
* :mod:`~contrast_sr.ops.scan.layout` (mamba layout -> channels-last) and
  :mod:`~contrast_sr.ops.scan.checks` (argument checks), leaf modules.
* backends, each importing only :mod:`~contrast_sr.ops.scan.checks` and its own dependencies:
  ``reference`` (sequential loop), ``blocked`` ("torch": blocked two-level scan, hand-written
  backward), ``numba_cpu`` + ``numba_kernels`` ("numba": fused CPU kernel, optional),
  ``triton_gpu`` + ``triton_kernels`` ("triton": fused GPU kernels, optional),
  ``chunked`` (loop-free, used while tracing / exporting).
"""

from contrast_sr.ops.scan.dispatch import (
    ENV_BACKEND,
    list_scan_backends,
    observe_scans,
    register_scan_backend,
    resolve_scan_backend,
    scan_backend,
    selective_scan,
    selective_scan_channels_last,
)
from contrast_sr.ops.scan.mamba_compat import selective_scan_fn
from contrast_sr.ops.scan.reference import selective_scan_ref

__all__ = [
    "ENV_BACKEND",
    "list_scan_backends",
    "observe_scans",
    "register_scan_backend",
    "resolve_scan_backend",
    "scan_backend",
    "selective_scan",
    "selective_scan_channels_last",
    "selective_scan_fn",
    "selective_scan_ref",
]
