"""ONNX export with dynamic height/width, verified against PyTorch with onnxruntime.

The model is exported as it is: the ops whose eager path cannot be traced choose their traceable
formulation themselves while exporting (the scan dispatch picks the loop-free "chunked" backend,
:mod:`contrast_sr.ops.scan.chunked`; cross scan / merge use plain reshape / flip). The file is
written atomically and only after the check passed: onnxruntime's output equals PyTorch's (eager,
with its normal ops) within ``tolerance`` at the example size and, for a dynamic export, at a
second, different size.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from contrast_sr.errors import ArgumentError, ContrastError


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
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
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
        except Exception as exc:  # unsupported operator etc.: one line, not a graph dump
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ContrastError("onnx export", f"tracing failed: {first}") from exc


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
        raise ArgumentError("opset", f"{opset} is too old (CumSum needs 11 or newer)")
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
