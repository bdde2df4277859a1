"""Equal-size arms: count a model spec's parameters, and tune one width to match a target."""

from __future__ import annotations

import functools
import json
from typing import Any

from contrast_sr.errors import ConfigError

# config fields an arm may tune to match the reference arm's parameter count
_TUNABLE = ("mlp_ratio", "dim")


def parameter_count(model: dict[str, Any], scale: int = 4) -> int:
    """Parameters of ``{name: variant, **overrides}`` at ``scale`` (built on the meta device)."""
    return _count(json.dumps(model, sort_keys=True), scale)


@functools.lru_cache(maxsize=512)
def _count(model_json: str, scale: int) -> int:
    import torch

    from contrast_sr.models.contrast import count_parameters
    from contrast_sr.models.registry import create_model

    spec = json.loads(model_json)
    name = spec.pop("name")
    with torch.device("meta"):
        return count_parameters(create_model(name, scale, **spec))


def match_params(model: dict[str, Any], field_name: str, target: int) -> dict[str, Any]:
    """``model`` with ``field_name`` set so its parameter count is closest to ``target``.

    ``mlp_ratio``: the FFN hidden width ``int(ratio * dim)`` is searched over 1..8·dim (the
    count grows with it), and the ratio written as ``(hidden + 0.5) / dim`` so the width is
    exact. ``dim``: every width from 2 to 4x the given one that the head count divides.
    """
    if field_name not in _TUNABLE:
        raise ConfigError("match_params", f"can tune {' or '.join(_TUNABLE)}, not {field_name!r}")
    from contrast_sr.models.registry import variant_config

    spec = dict(model)
    name = spec.pop("name")
    base = variant_config(name, 4, **spec)
    if field_name == "mlp_ratio":
        candidates = [
            {**model, "mlp_ratio": round((h + 0.5) / base.dim, 6)} for h in range(1, 8 * base.dim)
        ]
        return _bisect(candidates, target)
    heads = base.num_heads
    dims = [d for d in range(2, 4 * base.dim + 1) if d % heads == 0]
    return _bisect([{**model, "dim": d} for d in dims], target)


def _bisect(candidates: list[dict], target: int) -> dict:
    """The candidate (sorted by a count that grows along the list) closest to ``target``."""
    lo, hi = 0, len(candidates) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if parameter_count(candidates[mid]) < target:
            lo = mid + 1
        else:
            hi = mid
    near = [c for c in candidates[max(0, lo - 1) : lo + 1]]
    return min(near, key=lambda c: abs(parameter_count(c) - target))
