"""Inference: the upscale API, tiling with blended overlaps, self-ensemble, the default model."""

from __future__ import annotations

from contrast_sr.infer.api import upscale
from contrast_sr.infer.defaults import DEFAULT_MODEL_NAME, default_model, get_model
from contrast_sr.infer.ensemble import self_ensemble
from contrast_sr.infer.tiling import tiled_forward
from contrast_sr.infer.upscaler import Upscaler

__all__ = [
    "DEFAULT_MODEL_NAME",
    "Upscaler",
    "default_model",
    "get_model",
    "self_ensemble",
    "tiled_forward",
    "upscale",
]
