"""Which SDPA kernel each attention module of a model gets, for a device, dtype and mode.

PyTorch picks the kernel per call from the inputs: FlashAttention needs fp16/bf16, no mask and
a head dim that is a multiple of 8 (<= 256); the memory-efficient kernel takes a float additive
mask (with gradient) and fp32; on CPU the fused kernel takes no mask that requires grad; 5-D
inputs or a 3-D mask fall back to "math" everywhere. The answer here is PyTorch's own:
the inputs a module would hand to SDPA are built (:func:`sdpa_inputs`, at one or two windows)
and given to PyTorch's backend selection, under the current ``sdpa_kernel`` context.
``verify=True`` also runs them with only that kernel enabled (``torch.nn.attention.sdpa_kernel``),
forward and, when training, backward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from contrast_sr.models.blocks.attention import sdpa_head_dim, sdpa_inputs

_NAMES = {
    SDPBackend.FLASH_ATTENTION: "flash",
    SDPBackend.EFFICIENT_ATTENTION: "efficient",
    SDPBackend.CUDNN_ATTENTION: "cudnn",
    SDPBackend.MATH: "math",
}
_BY_NAME = {name: backend for backend, name in _NAMES.items()}


@dataclass(frozen=True)
class AttentionGeometry:
    """What decides an attention module's SDPA kernel (sizes per window).

    ``bias``: "none", "head" (one (h, n, m) bias for all windows) or "window" (a different
    bias per window: position bias + shift mask). ``learned_bias``: the bias has a gradient.
    """

    heads: int
    head_dim: int
    queries: int
    keys: int
    bias: str
    learned_bias: bool
    impl: str = "sdpa"
    clipped: bool = False
    cpu_kernel: str | None = None  # an own CPU kernel the module runs instead of SDPA


def _own_cpu_kernel(geometry: AttentionGeometry, training: bool, verify: bool) -> dict:
    """The entry of a module that runs its own CPU kernel ("numba"; verified by one call)."""
    entry: dict = {"backend": geometry.cpu_kernel, "sdpa_head_dim": geometry.head_dim}
    if verify:
        from contrast_sr.ops.fused_attention import fused_window_attention

        g = geometry
        q = torch.randn(1, 1, g.heads, g.queries, g.head_dim, requires_grad=training)
        k, v = (torch.randn(1, 1, g.heads, g.keys, g.head_dim) for _ in range(2))
        bias = None if g.bias == "none" else torch.randn(g.heads, g.queries, g.keys)
        out = fused_window_attention(q, k, v, bias)
        if training:
            out.sum().backward()
        entry["verified"] = bool(torch.isfinite(out).all())
    return entry


def sdpa_backend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float | None = None,
) -> str:
    """Name of the kernel SDPA would run for these inputs: flash, efficient, cudnn, math, none."""
    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is not None:
        try:
            return _NAMES.get(SDPBackend(choose(q, k, v, mask, 0.0, False, scale=scale)), "none")
        except RuntimeError:  # every allowed kernel refused the inputs
            return "none"
    if q.is_cuda:  # older PyTorch without the selection op: its public checks
        params = torch.backends.cuda.SDPAParams(q, k, v, mask, 0.0, False, False)
        if mask is None and torch.backends.cuda.can_use_flash_attention(params):
            return "flash"
        if torch.backends.cuda.can_use_efficient_attention(params):
            return "efficient"
    return "math"


def probe_inputs(
    geometry: AttentionGeometry, device: torch.device, dtype: torch.dtype, training: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The 4-D SDPA inputs of one such module on one image (two windows for a per-window bias)."""
    g = geometry
    windows = 2 if g.bias == "window" else 1
    opts = {"device": device, "dtype": dtype, "requires_grad": training}
    q = torch.randn(1, windows, g.heads, g.queries, g.head_dim, **opts)
    k = torch.randn(1, windows, g.heads, g.keys, g.head_dim, **opts)
    v = torch.randn(1, windows, g.heads, g.keys, g.head_dim, **opts)
    bias = None
    if g.bias != "none":
        per_window = (windows,) if g.bias == "window" else ()
        shape = (*per_window, g.heads, g.queries, g.keys)
        bias = torch.randn(shape, device=device, requires_grad=training and g.learned_bias)
    return sdpa_inputs(q, k, v, bias)


def _run_only(backend: str, inputs, scale: float | None, training: bool) -> str:
    """'' when ``inputs`` run (and back-propagate) with only ``backend`` enabled, else why not."""
    try:
        with sdpa_kernel([_BY_NAME[backend]]):
            out = F.scaled_dot_product_attention(*inputs[:3], attn_mask=inputs[3], scale=scale)
            if training:
                out.float().sum().backward()
    except RuntimeError as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ""


def attention_backend(
    geometry: AttentionGeometry,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
    training: bool = False,
    verify: bool = False,
) -> dict:
    """{backend, sdpa_head_dim[, verified, error]} for one attention module.

    ``dtype`` is the dtype q/k/v have (bf16 under bf16 autocast); ``training``: inputs and a
    learned bias require grad. Clipped softmax and ``impl="explicit"`` report "explicit".
    """
    device = torch.device(device)
    padded = sdpa_head_dim(geometry.head_dim, device)
    if geometry.clipped or geometry.impl != "sdpa":
        return {"backend": "explicit", "sdpa_head_dim": geometry.head_dim}
    if device.type == "cpu" and geometry.cpu_kernel and dtype == torch.float32:
        return _own_cpu_kernel(geometry, training, verify)
    inputs = probe_inputs(geometry, device, dtype, training)
    scale = None if padded == geometry.head_dim else geometry.head_dim**-0.5  # as the forward
    entry: dict = {"backend": sdpa_backend(*inputs, scale), "sdpa_head_dim": padded}
    if verify and entry["backend"] in _BY_NAME:
        error = _run_only(entry["backend"], inputs, scale, training)
        entry["verified"] = not error
        if error:
            entry["error"] = error
    return entry


def attention_backends(
    model: nn.Module,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    training: bool | None = None,
    verify: bool = False,
) -> list[dict]:
    """One entry per attention module of ``model`` (those with ``attention_geometry()``).

    Each: module (qualified name), kind, heads, head_dim, sdpa_head_dim, queries, keys, bias,
    backend (flash | efficient | cudnn | math | explicit | numba | none) and, with ``verify``,
    verified. ``device`` defaults to the model's, ``training`` to ``model.training``. Modules
    with their own CPU kernel (OCAB with numba) report it ("numba") on the CPU.
    """
    if device is None:
        device = next(model.parameters()).device
    training = model.training if training is None else training
    entries = []
    for name, module in model.named_modules():
        describe = getattr(module, "attention_geometry", None)
        if describe is None:
            continue
        g: AttentionGeometry = describe()
        entry = {"module": name, "kind": type(module).__name__, "heads": g.heads}
        entry.update(head_dim=g.head_dim, queries=g.queries, keys=g.keys, bias=g.bias)
        entry.update(attention_backend(g, device, dtype, training, verify))
        entries.append(entry)
    return entries
