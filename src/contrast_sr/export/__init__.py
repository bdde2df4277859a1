"""Deployable exports: ONNX (verified with onnxruntime) and safetensors."""

from __future__ import annotations

from contrast_sr.export.onnx import OnnxReport, export_onnx
from contrast_sr.export.safetensors import export_safetensors
from contrast_sr.export.traceable import chunked_scan, traceable_ops

__all__ = ["OnnxReport", "chunked_scan", "export_onnx", "export_safetensors", "traceable_ops"]
