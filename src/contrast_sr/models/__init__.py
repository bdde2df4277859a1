"""Contrast model family: configurable network, named variants, checkpoints, converter."""

from contrast_sr.models.checkpoint import load_model, resolve_model, save_model
from contrast_sr.models.contrast import ContrastSR, count_parameters
from contrast_sr.models.registry import VARIANTS, create_model, list_models, model_info

__all__ = [
    "VARIANTS",
    "ContrastSR",
    "count_parameters",
    "create_model",
    "list_models",
    "load_model",
    "model_info",
    "resolve_model",
    "save_model",
]
