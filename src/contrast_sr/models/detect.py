"""The architecture of a checkpoint, read from its tensors' shapes.

:func:`detect_architecture` maps a state dict (original names or project names) to the
:class:`ContrastConfig` and scale that built it: original Contrast research checkpoints and
official HAT checkpoints (HAT-S, HAT, HAT-L: window attention + CAB + OCAB, pixelshuffle head
with 64 features), the way spandrel detects HAT. What the shapes show:

=====================  ==========================================================================
field                  evidence
=====================  ==========================================================================
in_chans, dim          ``conv_first.weight`` (dim, in_chans, 3, 3)
depths, block_pattern  the ``layers.i.residual_group.blocks.j`` present and each mixer's tensors
num_heads              the attention bias tables (.., heads), or OCAB's bias MLP output
window_size, overlap   ``relative_position_index_SA/OCA``, the bias tables' sizes
cab, compress/squeeze  ``conv_block.cab.0`` (dim // compress) and ``cab.3.attention.1`` (dim // sq.)
ffn, mlp_ratio         the FFN's tensors (``mlp.sg``, ``dwconv``, 2-D or 1x1-conv fc1) and widths
ocab, ocab_bias        ``overlap_attn`` present; its ``relative_position_bias_table`` / ``cpb_mlp``
ssm_*, ssd_*            ``in_proj``, ``A_logs``, ``dt_projs_weight``, ``x_proj_weight``, ``conv2d``
final_norm, edge_conv  ``norm.weight``, ``conv_first.edge_weight``
resi_connection        ``layers.0.conv.weight`` (1conv) or none (identity)
upsampler, scale       ``conv_before_upsample`` (pixelshuffle, F features), ``upsample.1`` (v2),
                       ``upsample.0`` alone (pixelshuffledirect)
=====================  ==========================================================================

Fields no tensor shows (``mean_norm``, ``img_range``, ``leaky_relu``, ``conv_scale``,
``dw_padding``, ``attention``, ``clipped_softmax``, ``ssd_groups``, ``ssd_chunk``, and window size
or heads when nothing stores them) keep :class:`ContrastConfig`'s defaults, which are HAT's
(mean subtraction, range 1, LeakyReLU); :attr:`Detected.assumed` lists them. When a registered
variant has exactly the checkpoint's shapes, its configuration is used instead (it also fixes
the hidden fields), and :attr:`Detected.variant` names it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from contrast_sr.errors import ContrastError
from contrast_sr.models.config import ContrastConfig
from contrast_sr.models.contrast import ContrastSR
from contrast_sr.models.registry import VARIANTS, supported_scales, variant_config
from contrast_sr.models.state_dict import DERIVED_BUFFERS, rename_original_keys

Shapes = dict[str, tuple[int, ...]]
NICE_RATIOS = (0.5, 0.0, 0.25, 0.75, 1.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Detected:
    """A checkpoint's architecture: ``config`` and ``scale`` build a model with exactly its
    shapes; ``variant`` is the first registered variant with those shapes (None if none),
    ``also`` the other ones; ``assumed`` the fields set to defaults because no shape shows them
    (empty when ``variant`` is set: the variant fixes them)."""

    config: ContrastConfig
    scale: int
    variant: str | None
    also: tuple[str, ...]
    assumed: tuple[str, ...]


def _fail(why: str) -> ContrastError:
    return ContrastError("checkpoint architecture", why)


def shape_signature(state: Mapping[str, Any]) -> Shapes:
    """``{key: shape}`` in project names, without the original's derived buffers."""
    out = {}
    for key, value in rename_original_keys(state).items():
        if key.rsplit(".", 1)[-1] not in DERIVED_BUFFERS:
            out[key] = tuple(value.shape)
    return out


def model_signature(config: ContrastConfig, scale: int) -> Shapes:
    """The ``{key: shape}`` of the model ``config`` builds (on the meta device, no memory)."""
    with torch.device("meta"):
        model = ContrastSR(config, scale=scale)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _ratio(hidden: int, dim: int) -> float:
    """A short float r with ``int(dim * r) == hidden``."""
    for digits in range(1, 6):
        r = round(hidden / dim, digits)
        if int(dim * r) == hidden:
            return r
    return hidden / dim


def _inverse_div(dim: int, out: int) -> int:
    """The integer r with ``dim // r == out`` (the exact quotient when there is one)."""
    if out < 1:
        raise _fail(f"a {out}-channel bottleneck cannot come from dim {dim}")
    if dim % out == 0:
        return dim // out
    for r in range(1, dim + 1):
        if dim // r == out:
            return r
    raise _fail(f"no integer ratio turns dim {dim} into {out} channels")


def _overlap_ratio(ws: int, ows: int) -> float:
    for r in NICE_RATIOS:
        if int(ws * r) == ows - ws:
            return r
    return (ows - ws) / ws + 1e-6


def _indices(shapes: Shapes, pattern: str) -> list[int]:
    found = {int(m.group(1)) for k in shapes if (m := re.match(pattern, k))}
    if found != set(range(len(found))):
        raise _fail(f"non-consecutive indices for {pattern!r}: {sorted(found)}")
    return sorted(found)


def _block_kind(shapes: Shapes, prefix: str) -> str:
    if prefix + "mixer.relative_position_bias_table" in shapes:
        return "attn"
    if prefix + "mixer.dt_projs_weight" in shapes:
        return "ss2d"
    if prefix + "mixer.A_logs" in shapes:
        return "ss2d_m2"
    raise _fail(f"{prefix}mixer is neither window attention nor an SS2D kind")


def _pattern(kinds: list[list[str]]) -> list[str]:
    longest = max(kinds, key=len)
    for p in range(1, len(longest) + 1):
        if all(k == longest[j % p] for group in kinds for j, k in enumerate(group)):
            return longest[:p]
    raise _fail("the block kinds of the groups do not repeat one pattern")


def _ffn(shapes: Shapes, prefix: str, dim: int, fields: dict) -> None:
    fc1 = shapes[prefix + "fc1.weight"]
    dw = shapes.get(prefix + "dwconv.weight")
    if prefix + "sg.norm.weight" in shapes:
        kind, hidden = "sgfn", fc1[0]
    elif len(fc1) == 2:
        kind, hidden = "mlp", fc1[0]
    elif dw is None:
        kind, hidden = "convffn_plain", fc1[0]
    elif fc1[0] == 2 * dw[0]:
        kind, hidden = ("gcffn" if fc1[1] == dim else "gcffn_grouped"), dw[0]
    else:
        kind, hidden = "convffn", fc1[0]
    fields.update(ffn=kind, mlp_ratio=_ratio(hidden, dim))


def _mixers(shapes: Shapes, dim: int, pattern: list[str], fields: dict) -> None:
    """SS2D / SS2D-Mamba-2 fields from the first block of each kind."""
    first = {k: f"layers.0.residual_group.blocks.{pattern.index(k)}.mixer." for k in pattern}
    if "ss2d" in first:
        p = first["ss2d"]
        rank = shapes[p + "dt_projs_weight"][2]
        fields.update(
            ssm_ratio=_ratio(shapes[p + "in_proj.weight"][0], dim),
            ssm_d_state=shapes[p + "A_logs"][1],
            ssm_dt_rank="auto" if rank == math.ceil(dim / 16) else rank,
            ssm_conv_bias=p + "conv2d.bias" in shapes,
        )
    if "ss2d_m2" in first:
        p = first["ss2d_m2"]
        d_inner, heads = shapes[p + "conv2d.weight"][0], shapes[p + "A_logs"][1]
        rows = shapes[p + "x_proj_weight"][1]
        fields.update(
            ssm_ratio=_ratio(d_inner, dim),
            ssd_heads="auto" if heads == math.ceil(dim / 16) else heads,
            ssd_d_state=(rows - heads) // 2,  # rows = heads + 2 * groups * N: groups taken as 1
            ssd_gated=shapes[p + "in_proj.weight"][0] == 2 * d_inner,
            ssm_conv_bias=p + "conv2d.bias" in shapes,
        )


def _windows(shapes: Shapes, raw: Shapes, fields: dict, assumed: list[str]) -> None:
    """window_size, overlap_ratio and num_heads from whatever stores them."""
    ws = ows = span = None
    heads = set()
    if "relative_position_index_SA" in raw:
        ws = math.isqrt(raw["relative_position_index_SA"][0])
    if "relative_position_index_OCA" in raw:
        ws, ows = (
            math.isqrt(raw["relative_position_index_OCA"][0]),
            math.isqrt(raw["relative_position_index_OCA"][1]),
        )
    for key, shape in shapes.items():
        if key.endswith("mixer.relative_position_bias_table"):
            ws = ws or (math.isqrt(shape[0]) + 1) // 2
            heads.add(shape[1])
        elif key.endswith("overlap_attn.relative_position_bias_table"):
            span = math.isqrt(shape[0]) + 1  # (ws + ows - 1)^2 entries
            heads.add(shape[1])
        elif key.endswith("overlap_attn.cpb_mlp.pos3.2.weight"):
            heads.add(shape[0])
    for key, shape in raw.items():
        if key.endswith("relative_coords_table"):
            span = span or shape[1] + 1  # (1, 2m - 1, 2m - 1, 2), m = (ws + ows) // 2
    if ws is None and span is not None:  # only ws + ows is stored: take the default overlap
        ws = next((w for w in range(1, span) if 2 * w + int(w * 0.5) == span), None)
        assumed.append("overlap_ratio")
    attention = fields["ocab"] or "attn" in fields["block_pattern"]
    if ws is not None:
        fields["window_size"] = ws
        ows = ows or (span - ws if span is not None else None)
        if ows is not None:
            fields["overlap_ratio"] = _overlap_ratio(ws, ows)
    elif attention:
        assumed.append("window_size")
    if len(heads) > 1:
        raise _fail(f"attention modules disagree on the number of heads: {sorted(heads)}")
    if heads:
        fields["num_heads"] = heads.pop()
    else:  # no table stores it; any divisor of dim builds the same shapes
        if attention:
            assumed.append("num_heads")
        default = ContrastConfig.num_heads
        fields["num_heads"] = max(h for h in range(1, default + 1) if fields["dim"] % h == 0)
    if attention:
        assumed += ["attention", "clipped_softmax"]


def _head(shapes: Shapes, in_chans: int, fields: dict) -> int:
    """upsampler (+ features) and the scale from the reconstruction head."""
    ups = sorted(int(m.group(1)) for k in shapes if (m := re.match(r"upsample\.(\d+)\.weight$", k)))
    if "conv_before_upsample.0.weight" in shapes:
        features = shapes["conv_before_upsample.0.weight"][0]
        fields.update(upsampler="pixelshuffle", upsample_features=features)
        first = shapes["upsample.0.weight"]
        return 3 if len(ups) == 1 and first[0] == 9 * features else 2 ** len(ups)
    if ups == [1]:
        fields["upsampler"] = "pixelshuffle_v2"
        return 4
    if ups == [0]:
        fields["upsampler"] = "pixelshuffledirect"
        out = shapes["upsample.0.weight"][0]
        scale = math.isqrt(out // in_chans)
        if in_chans * scale * scale == out:
            return scale
    raise _fail(f"unrecognised reconstruction head (upsample convs {ups})")


def _detect_fields(raw: Shapes) -> tuple[dict, int, list[str]]:
    shapes = {k: v for k, v in raw.items() if k.rsplit(".", 1)[-1] not in DERIVED_BUFFERS}
    if "conv_first.weight" not in shapes:
        raise _fail("no conv_first.weight: not a Contrast or HAT checkpoint")
    dim, in_chans = shapes["conv_first.weight"][:2]
    fields: dict[str, Any] = {"dim": dim, "in_chans": in_chans}
    assumed = ["mean_norm", "img_range"] if in_chans == 3 else ["img_range"]
    groups = _indices(shapes, r"layers\.(\d+)\.")
    if not groups:
        raise _fail("no residual groups (layers.0...)")
    kinds = []
    for i in groups:
        blocks = _indices(shapes, rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.")
        prefix = f"layers.{i}.residual_group.blocks."
        kinds.append([_block_kind(shapes, f"{prefix}{j}.") for j in blocks])
    pattern = _pattern(kinds)
    fields.update(depths=[len(k) for k in kinds], block_pattern=pattern)
    block = "layers.0.residual_group.blocks.0."
    fields["cab"] = block + "conv_block.cab.0.weight" in shapes
    if fields["cab"]:
        fields["compress_ratio"] = _inverse_div(dim, shapes[block + "conv_block.cab.0.weight"][0])
        squeeze = shapes[block + "conv_block.cab.3.attention.1.weight"][0]
        fields["squeeze_factor"] = _inverse_div(dim, squeeze)
        assumed.append("conv_scale")
    _ffn(shapes, block + "mlp.", dim, fields)
    if fields["ffn"] not in ("mlp", "convffn_plain"):
        assumed.append("dw_padding")
    _mixers(shapes, dim, pattern, fields)
    if "ss2d_m2" in pattern:
        assumed += ["ssd_groups", "ssd_chunk"]
    ocab = "layers.0.residual_group.overlap_attn."
    fields["ocab"] = ocab + "qkv.weight" in shapes
    if ocab + "relative_position_bias_table" in shapes:
        fields["ocab_bias"] = "table"
    elif ocab + "cpb_mlp.pos_proj.weight" in shapes:
        fields["ocab_bias"] = "dynamic"
    else:
        fields["ocab_bias"] = "none"
    _windows(shapes, raw, fields, assumed)
    fields["final_norm"] = "norm.weight" in shapes
    fields["edge_conv"] = "conv_first.edge_weight" in shapes
    fields["resi_connection"] = "1conv" if "layers.0.conv.weight" in shapes else "identity"
    scale = _head(shapes, in_chans, fields)
    if fields["upsampler"] == "pixelshuffle":
        assumed.append("leaky_relu")
    return fields, scale, assumed


# fields detection reads unambiguously: a registered variant must agree on them to be a match
_FILTER = ("dim", "cab", "ffn", "ocab", "ocab_bias", "final_norm", "upsampler", "edge_conv")


def _kinds(pattern: Sequence[str], depths: Sequence[int]) -> list[list[str]]:
    return [[pattern[j % len(pattern)] for j in range(d)] for d in depths]


def registered_matches(signature: Shapes, scale: int, fields: Mapping[str, Any]) -> list[str]:
    """Registered variants (registry order) whose model at ``scale`` has exactly these shapes;
    ``fields`` (the detected ones) skip the variants that cannot match without building them."""
    detected_kinds = _kinds(fields["block_pattern"], fields["depths"])
    names = []
    for name in VARIANTS:
        if scale not in supported_scales(name):
            continue
        config = variant_config(name, scale)
        if any(getattr(config, f) != fields[f] for f in _FILTER):
            continue
        if _kinds(config.block_pattern, config.depths) != detected_kinds:
            continue
        if model_signature(config, scale) == signature:
            names.append(name)
    return names


def detect_config(state: Mapping[str, Any]) -> tuple[ContrastConfig, int, tuple[str, ...]]:
    """The configuration read from the shapes alone (no registry): (config, scale, assumed)."""
    renamed = {k: tuple(v.shape) for k, v in rename_original_keys(state).items()}
    fields, scale, assumed = _detect_fields(renamed)
    return ContrastConfig.from_dict(fields), scale, tuple(sorted(set(assumed)))


def detect_architecture(state: Mapping[str, Any]) -> Detected:
    """The config and scale of ``state`` (tensors, or anything with ``.shape``).

    ContrastError when the shapes fit no configuration this package can build (e.g. an absolute
    position embedding, qkv without bias)."""
    renamed = {k: tuple(v.shape) for k, v in rename_original_keys(state).items()}
    fields, scale, assumed = _detect_fields(renamed)
    signature = shape_signature(state)
    matches = registered_matches(signature, scale, fields)
    if matches:
        config = variant_config(matches[0], scale)
        return Detected(config, scale, matches[0], tuple(matches[1:]), ())
    config = ContrastConfig.from_dict(fields)
    built = model_signature(config, scale)
    if built != signature:
        extra = sorted(set(signature) - set(built))
        missing = sorted(set(built) - set(signature))
        wrong = [k for k in signature if k in built and built[k] != signature[k]]
        first = (extra or missing or wrong or ["?"])[0]
        raise _fail(
            f"no configuration reproduces its shapes ({len(extra)} unknown, {len(missing)} "
            f"missing, {len(wrong)} mis-shaped tensors; first: {first})"
        )
    return Detected(config, scale, None, (), tuple(sorted(set(assumed))))
