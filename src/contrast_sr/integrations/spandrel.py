"""Contrast-SR checkpoints in spandrel, and so in ComfyUI, chaiNNer and the other tools built on it.

spandrel picks a checkpoint's architecture by its keys (``Architecture.detect``) and builds the
model from its tensors' shapes (``Architecture.load``). :data:`CONTRAST_ARCH` does both for the
Contrast family: detection by keys only Contrast has, the hyperparameters by
:func:`~contrast_sr.models.detect.detect_architecture`. It reads project checkpoints, original
research checkpoints and raw state dicts alike.

Importing this module changes nothing in spandrel (as with ``spandrel_extra_arches``, whose
``install()`` adds its architectures); :func:`register` adds the architecture::

    import spandrel
    from contrast_sr.integrations.spandrel import register

    register()
    model = spandrel.ModelLoader().load_from_file("contrast_tiny_x4.safetensors")

spandrel passes the tensors, never a file's metadata, so fields no shape shows come from the
registered variant with those shapes, else ContrastConfig's defaults, which are HAT's and the
research code's (``mean_norm``, ``img_range``, ``clipped_softmax``, ...; see
:mod:`contrast_sr.models.detect`); a window size, head count or overlap that no tensor shows
is refused rather than guessed. :func:`load_file` reads a project checkpoint's metadata: the
exact configuration.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

try:
    from spandrel import (
        MAIN_REGISTRY,
        Architecture,
        ArchRegistry,
        ArchSupport,
        ImageModelDescriptor,
        ModelTiling,
        SizeRequirements,
        StateDict,
    )
except ImportError as exc:  # spandrel itself, or torchvision, which spandrel imports
    raise ImportError(
        "contrast_sr.integrations.spandrel needs spandrel and its dependencies "
        f'(pip install "contrast-sr[spandrel]"): {exc}'
    ) from exc

from contrast_sr.errors import ContrastError
from contrast_sr.infer.precision import has_attention
from contrast_sr.models.checkpoint import FORMAT, load_model, read_metadata
from contrast_sr.models.config import BLOCK_KINDS
from contrast_sr.models.contrast import ContrastSR
from contrast_sr.models.detect import detect_architecture
from contrast_sr.models.original import convert_state_dict
from contrast_sr.models.state_dict import read_state_dict

__all__ = [
    "ARCH_ID",
    "CONTRAST_ARCH",
    "CONTRAST_REGISTRY",
    "ContrastArch",
    "describe",
    "is_contrast_state_dict",
    "load_file",
    "register",
]

ARCH_ID = "ContrastSR"

# a block's token mixer: layers.<g>.residual_group.blocks.<b>.<mixer name>.<tensor>
_MIXER_KEY = re.compile(r"layers\.\d+\.residual_group\.blocks\.\d+\.(\w+)\.(\w+)$")
_SS2D_TENSORS = frozenset({"A_logs", "x_proj_weight", "dt_projs_weight"})  # SS2D, SS2D-Mamba-2
_MIXER_TENSORS = _SS2D_TENSORS | {"relative_position_bias_table"}  # + window attention
_ORIGINAL_MIXERS = frozenset(k.original_key for k in BLOCK_KINDS.values() if k.original_key)
# fields that shape how attention sees the image and have no conventional default: a guess
# would give a wrong picture, so a checkpoint whose tensors do not show them is refused
_NO_GUESS = frozenset({"window_size", "num_heads", "overlap_ratio"})


def is_contrast_state_dict(state: Mapping[str, object]) -> bool:
    """True for a state dict of the Contrast family: ``conv_first.weight`` and a residual
    group's block whose mixer is named ``mixer`` (project checkpoints, any block kind) or holds
    SS2D's tensors (``A_logs``, ``x_proj_weight``, ``dt_projs_weight``) under an original mixer
    name. HAT, SwinIR and the other spandrel architectures have neither: a HAT-shaped state dict
    (window attention named ``attn`` in every block) stays spandrel's HAT."""
    if "conv_first.weight" not in state:
        return False
    for key in state:
        match = _MIXER_KEY.search(key)
        if match is None or match[2] not in _MIXER_TENSORS:
            continue
        if match[1] == "mixer" or (match[1] in _ORIGINAL_MIXERS and match[2] in _SS2D_TENSORS):
            return True
    return False


def describe(
    model: ContrastSR, state_dict: StateDict | None = None
) -> ImageModelDescriptor[ContrastSR]:
    """A spandrel descriptor of ``model``, loading ``state_dict`` (project keys; default: the
    model's own weights).

    No size requirements: the model pads any H, W >= 1 to its window size itself and crops the
    output back. fp16 only without attention modules (OCAB and window attention overflow it;
    :mod:`contrast_sr.infer.precision`), bf16 always.
    """
    cfg = model.config
    kinds = sorted(set(cfg.block_pattern))
    return ImageModelDescriptor(
        model.eval(),
        model.state_dict() if state_dict is None else state_dict,
        architecture=CONTRAST_ARCH,
        purpose="SR" if model.scale > 1 else "Restoration",
        tags=[model.variant or "detected", f"{cfg.dim}dim", *kinds],
        supports_half=not has_attention(model),
        supports_bfloat16=True,
        scale=model.scale,
        input_channels=cfg.in_chans,
        output_channels=cfg.in_chans,
        size_requirements=SizeRequirements(),
        tiling=ModelTiling.SUPPORTED,
    )


class ContrastArch(Architecture[ContrastSR]):
    """The Contrast family (``id`` "ContrastSR") as a spandrel architecture."""

    def __init__(self) -> None:
        super().__init__(id=ARCH_ID, name="Contrast-SR", detect=is_contrast_state_dict)

    def load(self, state_dict: StateDict) -> ImageModelDescriptor[ContrastSR]:
        """Build the model the shapes describe and load the tensors (original names too).

        ContrastError when no configuration reproduces the shapes, or when they do not show
        the window size, heads or overlap (a project checkpoint of an unregistered
        configuration without OCAB bias table: :func:`load_file` reads its metadata)."""
        found = detect_architecture(state_dict)
        hidden = sorted(_NO_GUESS.intersection(found.assumed))
        if hidden:
            raise ContrastError(
                "checkpoint architecture",
                f"its tensors do not show {', '.join(hidden)} and spandrel passes no file "
                "metadata; load a project checkpoint with "
                "contrast_sr.integrations.spandrel.load_file(path)",
            )
        model = ContrastSR(found.config, scale=found.scale, variant=found.variant)
        return describe(model, convert_state_dict(dict(state_dict), model))


CONTRAST_ARCH = ContrastArch()

CONTRAST_REGISTRY = ArchRegistry()
"""This package's architectures: ``MAIN_REGISTRY.add(*CONTRAST_REGISTRY)`` adds them."""
# detected before HAT: a research checkpoint mixing SS2D blocks with all of HAT's keys (CAB,
# table-bias OCAB, pixelshuffle head, index buffers) passes HAT's key check, not HAT's load
CONTRAST_REGISTRY.add(ArchSupport.from_architecture(CONTRAST_ARCH, before=("HAT",)))


def register(
    registry: ArchRegistry = MAIN_REGISTRY, *, ignore_duplicates: bool = True
) -> list[ArchSupport]:
    """Add the Contrast architecture to ``registry`` (spandrel's main registry, the one
    ``ModelLoader()`` uses); returns what was added. Calling it again adds nothing, unless
    ``ignore_duplicates=False``, which raises spandrel's DuplicateArchitectureError."""
    return registry.add(*CONTRAST_REGISTRY, ignore_duplicates=ignore_duplicates)


def load_file(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> ImageModelDescriptor[ContrastSR]:
    """A checkpoint file as a descriptor: a project checkpoint (``save_model``) with its
    metadata's exact configuration, any other ``.safetensors`` / ``.pth`` (original research,
    official HAT, raw state dicts) by its shapes. InputError / ContrastError if unusable."""
    path = Path(path)
    meta = read_metadata(path) if path.suffix == ".safetensors" else {}
    if meta.get("format") == FORMAT:
        return describe(load_model(path)).to(device)
    return CONTRAST_ARCH.load(read_state_dict(path)).to(device)
