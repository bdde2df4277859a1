"""Per-layer L2-norm maps of the body's feature maps (forward hooks, no model changes).

The body layers are found structurally: the residual groups are the entries of the shallowest
``nn.ModuleList`` (``layers`` in HAT/Contrast models), the blocks are the entries of the first
``nn.ModuleList`` inside each group (``residual_group.blocks``). A top-level ``norm`` module (the
final LayerNorm before ``conv_after_body``) is hooked as the last layer when present, so
variants with and without it can be compared. Each hooked output becomes a (H, W) map of the
per-pixel L2 norm over channels; channels-first (B, C, H, W), channels-last (B, H, W, C) and token
(B, H*W, C) outputs are recognised from the LR size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LayerNorms:
    name: str
    map: torch.Tensor  # (H, W) per-pixel L2 norm over channels
    max: float
    mean: float
    channels: int


def body_layers(model: nn.Module, level: str = "group") -> list[tuple[str, nn.Module]]:
    """Named modules whose outputs are the body's layer-by-layer features."""
    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        raise ValueError("model has no nn.ModuleList of layers to hook")
    depth = min(n.count(".") for n, _ in lists)
    gname, groups = next((n, m) for n, m in lists if n.count(".") == depth)
    layers: list[tuple[str, nn.Module]] = []
    for i, group in enumerate(groups):
        if level == "group":
            layers.append((f"{gname}.{i}", group))
            continue
        if level != "block":
            raise ValueError(f"unknown level {level!r} (group or block)")
        inner = [(n, m) for n, m in group.named_modules() if isinstance(m, nn.ModuleList) and n]
        if not inner:
            layers.append((f"{gname}.{i}", group))
            continue
        bname, blocks = min(inner, key=lambda item: item[0].count("."))
        layers += [(f"{gname}.{i}.{bname}.{j}", b) for j, b in enumerate(blocks)]
    norm = getattr(model, "norm", None)
    if isinstance(norm, nn.Module) and not isinstance(norm, nn.Identity):
        layers.append(("norm", norm))
    return layers


def _first(output) -> torch.Tensor:
    out = output[0] if isinstance(output, (tuple, list)) else output
    return out.detach()[0].float()


def _run(model: nn.Module, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    """Forward ``x`` with hooks; returns each layer's output for the first batch item."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = []

    def hook_for(name):
        def hook(_module, _inputs, output):
            outputs[name] = _first(output)

        return hook

    try:
        for name, module in layers:
            hooks.append(module.register_forward_hook(hook_for(name)))
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def _layout(shape: torch.Size, h: int, w: int, probe: torch.Size | None) -> str | None:
    """ "tokens", "first" (C, H, W) or "last" (H, W, C); None if ambiguous without a probe.

    ``probe`` is the same layer's shape for a slightly larger input: the channel axis is the
    one that did not change.
    """
    if len(shape) == 2:
        return "tokens"
    if len(shape) != 3:
        raise ValueError(f"unsupported feature shape {tuple(shape)}")
    if probe is not None:
        if probe[0] == shape[0] and probe[1:] != shape[1:]:
            return "first"
        if probe[2] == shape[2] and probe[:2] != shape[:2]:
            return "last"

    def excess(a: int, b: int) -> float:
        return (a - h) + (b - w) if a >= h and b >= w else float("inf")

    first, last = excess(shape[1], shape[2]), excess(shape[0], shape[1])
    if first == last == float("inf"):
        raise ValueError(f"feature shape {tuple(shape)} does not hold a {h}x{w} image")
    if first == last:
        return None
    return "first" if first < last else "last"


def _spatial(t: torch.Tensor, h: int, w: int, layout: str) -> torch.Tensor:
    """A layer output (first batch item) -> (C, h, w)."""
    if layout == "tokens":  # (L, C): find the padded (Hp, Wp) with Hp*Wp = L
        L = t.shape[0]
        fits = [(hp, L // hp) for hp in range(h, L + 1) if L % hp == 0 and L // hp >= w]
        if not fits:
            raise ValueError(f"cannot lay out {L} tokens as an image of at least {h}x{w}")
        hp, wp = min(fits, key=lambda s: (s[0] - h) + (s[1] - w))
        t = t.reshape(hp, wp, -1).permute(2, 0, 1)
    elif layout == "last":
        t = t.permute(2, 0, 1)
    return t[:, :h, :w]


def feature_norms(model: nn.Module, lr: torch.Tensor, level: str = "group") -> list[LayerNorms]:
    """Run ``model`` on LR (1, 3, h, w) and return one :class:`LayerNorms` per body layer.

    When a layer's layout is ambiguous (e.g. 48 channels on a 48x48 input), a second forward
    pass on a slightly larger input tells the channel axis apart.
    """
    if lr.dim() == 3:
        lr = lr[None]
    h, w = lr.shape[-2:]
    layers = body_layers(model, level)
    outputs = _run(model, lr, layers)
    layouts = {name: _layout(t.shape, h, w, None) for name, t in outputs.items()}
    if None in layouts.values():
        bigger = torch.nn.functional.pad(lr, (0, 17, 0, 17), mode="replicate")
        probes = {n: t.shape for n, t in _run(model, bigger, layers).items()}
        for name, layout in layouts.items():
            if layout is None:
                layouts[name] = _layout(outputs[name].shape, h, w, probes.get(name)) or "first"
    result = []
    for name, _ in layers:
        if name not in outputs:
            continue  # a module that did not run (e.g. unused branch)
        feat = _spatial(outputs[name], h, w, layouts[name])
        norm = feat.norm(dim=0)
        result.append(
            LayerNorms(name, norm.cpu(), float(norm.max()), float(norm.mean()), feat.shape[0])
        )
    return result
