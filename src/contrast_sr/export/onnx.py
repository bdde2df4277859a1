"""ONNX export with dynamic height/width, verified against PyTorch with onnxruntime.

The eager selective scan (a custom autograd.Function looping over blocks) cannot be traced, so
the export swaps in the loop-free chunked formulation (:mod:`contrast_sr.ops.scan_chunked`): via
the scan-backend registry when it exists, otherwise by temporarily rebinding the scan entry
points of the loaded ``contrast_sr`` modules. The file is written atomically and only after the
check passed: onnxruntime's output equals PyTorch's (with its normal scan) within ``tolerance``
at the example size and, for a dynamic export, at a second, different size.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from contrast_sr.errors import ContrastError, UsageError
from contrast_sr.ops import scan_chunked


@dataclass
class OnnxReport:
    path: str
    opset: int
    dynamic: bool
    checked_sizes: list
    max_abs_err: float
    tolerance: float
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _chunked_mamba_layout(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """The chunked scan behind the mamba layout (u, delta (b, dim, L); B, C (b, g, N, L))."""
    y = scan_chunked.selective_scan_chunked(
        u.transpose(1, 2),
        delta.transpose(1, 2),
        A,
        B.permute(0, 3, 1, 2),
        C.permute(0, 3, 1, 2),
        D,
        delta_bias,
        delta_softplus,
    )
    return y.transpose(1, 2)


def _chunked_channels_last(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    return scan_chunked.selective_scan_chunked(u, delta, A, B, C, D, delta_bias, delta_softplus)


@contextlib.contextmanager
def chunked_scan() -> Iterator[None]:
    """Route every selective scan through the loop-free chunked formulation."""
    try:
        from contrast_sr.ops import scan_backend  # type: ignore[attr-defined]
    except ImportError:
        scan_backend = None
    if scan_backend is not None:
        with scan_backend("chunked"):
            yield
        return
    replacements = {
        "selective_scan": _chunked_mamba_layout,
        "selective_scan_channels_last": _chunked_channels_last,
    }
    patched = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("contrast_sr") or module is None or name.endswith("scan_chunked"):
            continue
        for attr, new in replacements.items():
            old = getattr(module, attr, None)
            if callable(old) and not isinstance(old, type):
                patched.append((module, attr, old))
                setattr(module, attr, new)
    try:
        yield
    finally:
        for module, attr, old in reversed(patched):
            setattr(module, attr, old)


def _require_onnxruntime():
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError:
        raise ContrastError(
            "onnx export", "needs onnx and onnxruntime: pip install 'contrast-sr[onnx]'"
        ) from None
    return onnxruntime


def _trace(model: nn.Module, x: torch.Tensor, path: str, opset: int, dynamic: bool) -> None:
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), chunked_scan(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            path,
            dynamo=False,
            opset_version=opset,
            input_names=["lr"],
            output_names=["sr"],
            dynamic_axes={"lr": axes, "sr": axes} if dynamic else None,
            do_constant_folding=True,
        )


def _max_err(session, model: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        ref = model(x).float().numpy()
    out = session.run(None, {"lr": x.numpy()})[0]
    if out.shape != ref.shape:
        return float("inf")
    return float(np.abs(out - ref).max())


def export_onnx(
    model: nn.Module,
    path: str | Path,
    size: int = 32,
    opset: int = 17,
    dynamic: bool = True,
    tolerance: float = 1e-4,
) -> OnnxReport:
    """Export ``model`` (fp32, CPU) to ``path``; raises ContrastError if the check fails."""
    from contrast_sr.utils.fs import atomic_save

    ort = _require_onnxruntime()
    if opset < 11:
        raise UsageError("--opset", f"{opset} is too old (CumSum needs 11 or newer)")
    model = model.float().cpu().eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, size, size, generator=gen)
    # A second size that is neither square nor a multiple of common window sizes.
    x2 = torch.rand(1, 3, size + 5, size + 11, generator=gen)
    report: dict = {}

    def write(tmp: str) -> None:
        nonlocal dynamic
        note = ""
        _trace(model, x, tmp, opset, dynamic)
        session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        errs = [_max_err(session, model, x)]
        sizes = [[size, size]]
        if dynamic:
            try:
                errs.append(_max_err(session, model, x2))
            except Exception as exc:  # onnxruntime rejects the shape: sizes were baked in
                errs.append(float("inf"))
                note = f"{type(exc).__name__}"
            sizes.append(list(x2.shape[-2:]))
            if errs[-1] > tolerance and errs[0] <= tolerance:
                note = note or f"error {errs[-1]:.3g} at a second size"
                note = f"dynamic H/W not exportable ({note}); exported for {size}x{size} only"
                dynamic = False
                _trace(model, x, tmp, opset, False)
                session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
                errs, sizes = [_max_err(session, model, x)], [[size, size]]
        err = max(errs)
        if not err <= tolerance:
            raise ContrastError(
                "onnx export", f"onnxruntime differs from PyTorch by {err:.3g} > {tolerance:g}"
            )
        report.update(checked_sizes=sizes, max_abs_err=err, note=note)

    atomic_save(path, write)
    return OnnxReport(
        path=str(path),
        opset=opset,
        dynamic=dynamic,
        tolerance=tolerance,
        **report,
    )
