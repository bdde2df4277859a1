"""ONNX export with dynamic height/width, verified against PyTorch with onnxruntime.

The model is exported as it is: the ops whose eager path cannot be traced choose their traceable
formulation themselves while exporting (the scan dispatch picks the loop-free "chunked" backend,
:mod:`contrast_sr.ops.scan.chunked`; cross scan / merge use plain reshape / flip; the window
padding gathers mirrored pixels and the shift mask is built from ``arange``,
:mod:`contrast_sr.models.blocks.windows`). One dynamic graph serves every batch, height and width.

The file is written atomically and only after the check passed: onnxruntime's output equals
PyTorch's (eager, with its normal ops) within ``tolerance`` at the example size and, for a
dynamic export, at every size of ``check_sizes`` (not square, not multiples of a window). A
dynamic export whose graph fails at another size raises :class:`NotDynamicError` (nothing is
written); ``dynamic=False`` exports a fixed-size graph instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from contrast_sr.errors import ArgumentError, ContrastError

#: Sizes (H, W) a dynamic graph is checked at, besides the example size.
CHECK_SIZES: tuple[tuple[int, int], ...] = ((40, 56), (33, 17))


class NotDynamicError(ContrastError):
    """The traced graph does not serve other sizes (it baked a shape in); ``size`` failed."""

    def __init__(self, size: tuple[int, int], why: str) -> None:
        self.size = size
        super().__init__("onnx export", f"the graph is not dynamic: at {size[0]}x{size[1]} {why}")


@dataclass
class OnnxReport:
    path: str
    opset: int
    dynamic: bool
    checked_sizes: list
    max_abs_err: float
    tolerance: float

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


def _session(ort, path: str):
    """An onnxruntime CPU session that logs nothing itself (failures come back as exceptions)."""
    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: no red log lines for a shape we then report
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _max_err(session, model: nn.Module, x: torch.Tensor) -> float:
    """Max abs difference of onnxruntime vs PyTorch on ``x``; raises what onnxruntime raises."""
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
    check_sizes: Sequence[tuple[int, int]] = CHECK_SIZES,
) -> OnnxReport:
    """Export ``model`` (fp32, CPU) to ``path`` and check it against PyTorch.

    The graph is traced on a (1, 3, ``size``, ``size``) input; a ``dynamic`` one is also run at
    every (H, W) of ``check_sizes``. Raises :class:`NotDynamicError` if a dynamic graph fails at
    another size and ContrastError if an error exceeds ``tolerance``; nothing is written then.
    """
    from contrast_sr.utils.fs import atomic_save

    ort = _require_onnxruntime()
    if opset < 11:
        raise ArgumentError("opset", f"{opset} is too old (CumSum needs 11 or newer)")
    model = model.float().cpu().eval()
    gen = torch.Generator().manual_seed(0)
    sizes = [(size, size), *((int(h), int(w)) for h, w in check_sizes)] if dynamic else []
    inputs = [torch.rand(1, 3, h, w, generator=gen) for h, w in sizes or [(size, size)]]
    report: dict = {}

    def write(tmp: str) -> None:
        _trace(model, inputs[0], tmp, opset, dynamic)
        session = _session(ort, tmp)
        errs = []
        for x in inputs:
            hw = (int(x.shape[-2]), int(x.shape[-1]))
            try:
                errs.append(_max_err(session, model, x))
            except Exception as exc:  # onnxruntime rejects the shape: a size was baked in
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                if x is inputs[0]:
                    raise ContrastError("onnx export", f"onnxruntime failed: {first}") from exc
                raise NotDynamicError(hw, f"onnxruntime failed ({first})") from None
            if errs[-1] > tolerance and x is not inputs[0] and errs[0] <= tolerance:
                raise NotDynamicError(hw, f"it differs from PyTorch by {errs[-1]:.3g}")
        err = max(errs)
        if not err <= tolerance:
            raise ContrastError(
                "onnx export", f"onnxruntime differs from PyTorch by {err:.3g} > {tolerance:g}"
            )
        report.update(checked_sizes=[list(x.shape[-2:]) for x in inputs], max_abs_err=err)

    atomic_save(path, write)
    return OnnxReport(path=str(path), opset=opset, dynamic=dynamic, tolerance=tolerance, **report)
