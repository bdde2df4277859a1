"""Contrast model family: typed config, configurable network, named variants, checkpoints."""

from contrast_sr.models.blocks.attention_backend import attention_backends
from contrast_sr.models.checkpoint import load_model, resolve_model, save_model
from contrast_sr.models.config import BLOCK_KINDS, ContrastConfig, register_block
from contrast_sr.models.contrast import ContrastSR, count_parameters
from contrast_sr.models.detect import detect_architecture
from contrast_sr.models.registry import VARIANTS, create_model, list_models, model_info
from contrast_sr.models.state_dict import read_state_dict, rename_original_keys, unwrap_state_dict

__all__ = [
    "BLOCK_KINDS",
    "VARIANTS",
    "ContrastConfig",
    "ContrastSR",
    "attention_backends",
    "count_parameters",
    "create_model",
    "detect_architecture",
    "list_models",
    "load_model",
    "model_info",
    "read_state_dict",
    "register_block",
    "rename_original_keys",
    "resolve_model",
    "save_model",
    "unwrap_state_dict",
]
