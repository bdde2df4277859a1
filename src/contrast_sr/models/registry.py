"""Named variants: each is a configuration of :class:`ContrastSR`, never a separate class.

``VARIANTS[name]`` holds the :class:`ContrastConfig` fields that differ from the defaults, an
optional ``per_scale`` dict of scale-specific overrides, the scales it supports (``scales``,
default 2, 3, 4) and a one-line summary.
"""

from __future__ import annotations

from typing import Any

from contrast_sr.errors import ArgumentError, UnknownModelError
from contrast_sr.models.config import ContrastConfig
from contrast_sr.models.contrast import ContrastSR, count_parameters

# shared option sets of the original families
_BASELINE = {
    "dim": 48,
    "depths": [6, 6, 6],
    "cab": True,
    "ocab_bias": "table",
    "upsample_features": 48,
}
_FINAL = {"ffn": "sgfn", "ocab_bias": "dynamic", "final_norm": False}
_V4 = {
    "ffn": "gcffn",
    "final_norm": False,
    "upsampler": "pixelshuffle",
    "dim": 120,
    "depths": [6] * 6,
}
_ANY = (2, 3, 4)
# the bundled models' architecture (default and photo): C 32, 2 groups x (2 SS2D + OCAB)
_TINY = {
    "dim": 32,
    "depths": [2, 2],
    "num_heads": 4,
    "window_size": 8,
    "ffn": "gcffn",
    "final_norm": False,
}

VARIANTS: dict[str, dict] = {
    # ---- light models of the research notes (x4 counts pinned in tests) ----
    "baseline": {
        "summary": "HAT with all (S)W-MSA replaced by SS2D; CAB, OCAB with learned bias (745,572)",
        "config": _BASELINE,
    },
    "baseline_no_pe": {
        "summary": "baseline without OCAB position bias (718,194)",
        "config": {**_BASELINE, "ocab_bias": "none"},
    },
    "baseline_no_pe_no_cab": {
        "summary": "no position bias, no CAB, spent on width/depth: C 54, 4x6 (764,202)",
        "config": {"dim": 54, "depths": [6] * 4, "upsample_features": 48},
    },
    "mamba": {
        "summary": "pure Mamba: SS2D blocks only, no attention at all, C 60 (759,108)",
        "config": {"dim": 60, "depths": [5, 5, 6, 6], "ocab": False, "upsample_features": 96},
    },
    "mamba2": {
        "summary": "pure Mamba-2: SS2D-SSD blocks only (N 4), no attention, C 60 (759,812)",
        "config": {
            "dim": 60,
            "depths": [5, 5, 6, 6],
            "ocab": False,
            "upsample_features": 96,
            "block_pattern": ["ss2d_m2"],
        },
    },
    "hat_light": {
        "summary": "HAT-light comparison model: window attention + CAB, OCAB (771,099)",
        "config": {
            **_BASELINE,
            "depths": [5, 5, 5],
            "block_pattern": ["attn"],
            "mean_norm": False,
        },
    },
    "contrast_light": {
        "summary": "final Contrast, light: SGFN, dynamic-bias OCAB, no final norm (430,710)",
        "config": _FINAL,
    },
    # ---- v1 hybrids: real window self-attention back in, ratio = block_pattern ----
    "contrast_v1_light": {
        "summary": "v1 hybrid light: 5 SS2D : 1 window attention per group, then OCAB",
        "config": {**_FINAL, "block_pattern": ["ss2d"] * 5 + ["attn"]},
    },
    "contrast_v1_clip_light": {
        "summary": "contrast_v1_light with clipped softmax in all attention",
        "config": {**_FINAL, "block_pattern": ["ss2d"] * 5 + ["attn"], "clipped_softmax": True},
    },
    "contrast_v1_m2_light": {
        "summary": "contrast_v1_light with Mamba-2 (SSD, N 4) blocks instead of Mamba-1 (457,584)",
        "config": {**_FINAL, "block_pattern": ["ss2d_m2"] * 5 + ["attn"]},
    },
    "contrast_v1_edge_light": {
        "summary": "contrast_v1_light + edge-correction convs + reflect-padded depthwise convs",
        "config": {
            **_FINAL,
            "block_pattern": ["ss2d"] * 5 + ["attn"],
            "edge_conv": True,
            "dw_padding": "reflect",
        },
    },
    # ---- the bundled default model of `contrast-sr upscale` (configs/default_x4.yml) ----
    "contrast_tiny": {
        "summary": "bundled default: C 32, 2 groups of 2 SS2D blocks + OCAB, window 8, GCFFN",
        "config": _TINY,
    },
    "photo": {
        "summary": "bundled photo model: contrast_tiny fine-tuned with photo degradations "
        "(blur, noise, JPEG)",
        "config": _TINY,
        "scales": (4,),
    },
    # ---- full-size final models ----
    "contrast_s": {
        "summary": "Contrast-S: C 150, 6x6, window 16, pixelshuffle (7.55M at x4)",
        "config": {**_FINAL, "dim": 150, "depths": [6] * 6, "upsampler": "pixelshuffle"},
    },
    "contrast": {
        "summary": "Contrast: C 210, 6x6, window 32 (x2: C 180, 8x6) (14.29M at x4)",
        "config": {
            **_FINAL,
            "dim": 210,
            "depths": [6] * 6,
            "window_size": 32,
            "upsampler": "pixelshuffle",
        },
        "per_scale": {2: {"dim": 180, "depths": [6] * 8}},
    },
    "contrast_l": {
        "summary": "Contrast-L: C 600, 8x6, window 32 (147.1M at x4)",
        "config": {
            **_FINAL,
            "dim": 600,
            "depths": [6] * 8,
            "window_size": 32,
            "upsampler": "pixelshuffle",
        },
    },
    # ---- FFN / head ablations ----
    "gated_convffn_light": {
        "summary": "no PE/CAB, gated conv FFN (GEGLU), no final norm: C 54, 4x6 (960,654)",
        "config": {
            "dim": 54,
            "depths": [6] * 4,
            "ffn": "gcffn",
            "final_norm": False,
            "upsample_features": 48,
        },
    },
    "gated_convffn_no_gated_light": {
        "summary": "as gated_convffn_light, but conv FFN without gate, with final norm (794,442)",
        "config": {"dim": 54, "depths": [6] * 4, "ffn": "convffn", "upsample_features": 48},
    },
    "baseline_v3_light": {
        "summary": "GCFFN with grouped fc1, no final norm: C 48, 4x6 (635,904)",
        "config": {"dim": 48, "depths": [6] * 4, "ffn": "gcffn_grouped", "final_norm": False},
    },
    "baseline_v2": {
        "summary": "v2: C 180, 8x6, GCFFN, PixelShuffle-conv-PixelShuffle head, x4 only (19.07M)",
        "config": {
            "dim": 180,
            "depths": [6] * 8,
            "ffn": "gcffn",
            "final_norm": False,
            "upsampler": "pixelshuffle_v2",
        },
        "scales": (4,),
    },
    "baseline_v4": {
        "summary": "v4: C 180, 8x6, GCFFN, final norm, no LeakyReLU (19.47M)",
        "config": {
            **_V4,
            "dim": 180,
            "depths": [6] * 8,
            "final_norm": True,
            "leaky_relu": False,
        },
    },
    "baseline_v4_norm": {
        "summary": "v4 ablation: C 120, 6x6, GCFFN, with final norm (6,853,179)",
        "config": {**_V4, "final_norm": True},
    },
    "baseline_v4_no_norm": {
        "summary": "v4 ablation: as v4_norm without the final norm (6,852,939)",
        "config": _V4,
    },
    "baseline_v4_no_norm_no_leaky_relu": {
        "summary": "v4 ablation: no final norm, no LeakyReLU (6,852,939)",
        "config": {**_V4, "leaky_relu": False},
    },
    "baseline_v4_no_norm_psd": {
        "summary": "v4 ablation: no final norm, pixelshuffledirect head (6,538,488)",
        "config": {**_V4, "upsampler": "pixelshuffledirect"},
    },
    "baseline_v4_no_gcffn": {
        "summary": "v4 ablation: plain conv FFN instead of GCFFN, C 114, 8x6 (6,568,245)",
        "config": {**_V4, "dim": 114, "depths": [6] * 8, "ffn": "convffn_plain"},
    },
}

ALIASES = {"mamba_pure": "mamba", "contrast_final_light": "contrast_light"}


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def list_models() -> list[str]:
    """Names of all registered variants."""
    return list(VARIANTS)


def supported_scales(name: str) -> tuple[int, ...]:
    """Scales variant ``name`` can be built for; UnknownModelError if it is not registered."""
    key = canonical_name(name)
    if key not in VARIANTS:
        raise UnknownModelError(name, list(VARIANTS))
    return tuple(VARIANTS[key].get("scales", _ANY))


def variant_config(name: str, scale: int = 4, **overrides: Any) -> ContrastConfig:
    """The configuration of variant ``name`` at ``scale``, with field ``overrides``.

    UnknownModelError for an unregistered name, ArgumentError("scale") for a scale the variant
    does not support, ConfigError (``exc.field``) for an unknown or invalid override.
    """
    key = canonical_name(name)
    scales = supported_scales(key)
    if _as_scale(scale) not in scales:
        supports = ", ".join(map(str, scales))
        why = f"scale {scale} not supported by model {key!r} (supports {supports})"
        raise ArgumentError("scale", why)
    entry = VARIANTS[key]
    fields = {
        **entry["config"],
        **entry.get("per_scale", {}).get(_as_scale(scale), {}),
        **overrides,
    }
    return ContrastConfig.from_dict(fields)


def create_model(name: str, scale: int = 4, **overrides: Any) -> ContrastSR:
    """Build variant ``name`` for ``scale`` (2, 3 or 4), with config field overrides.

    Example: ``create_model("contrast_light", block_pattern=["ss2d"] * 3 + ["attn"])``.
    Errors as :func:`variant_config`.
    """
    config = variant_config(name, scale, **overrides)
    return ContrastSR(config, scale=_as_scale(scale), variant=canonical_name(name))


def _as_scale(scale: Any) -> int:
    try:
        return int(scale)
    except (TypeError, ValueError):
        raise ArgumentError("scale", f"expected an integer, got {scale!r}") from None


def model_info(name: str, scale: int = 4) -> dict:
    """Name, summary, supported scales, parameter count (built on the meta device) and the
    scales with bundled weights (``weights``, often empty: then only ``--random-init``, a
    checkpoint or training makes it usable)."""
    import torch

    from contrast_sr.weights import bundled_scales

    key = canonical_name(name)
    with torch.device("meta"):
        params = count_parameters(create_model(key, scale))
    return {
        "name": key,
        "scale": scale,
        "params": params,
        "scales": list(supported_scales(key)),
        "summary": VARIANTS[key]["summary"],
        "weights": bundled_scales(key),
    }
