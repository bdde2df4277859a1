"""Deployable exports: ONNX (verified with onnxruntime) and safetensors."""

from __future__ import annotations

from contrast_sr.export.onnx import OnnxReport, export_onnx
from contrast_sr.export.safetensors import export_safetensors

__all__ = ["OnnxReport", "export_onnx", "export_safetensors"]
