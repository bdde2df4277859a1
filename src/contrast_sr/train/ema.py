"""Exponential moving average of a model's weights (``ema = decay * ema + (1 - decay) * w``).

The EMA copy is what research code validates and ships (BasicSR's ``net_g_ema``); it smooths the
last few thousand steps of noise out of the weights. Buffers are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Shadow copy of ``model`` updated in place after every optimizer step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_params = dict(self.module.named_parameters())
        for name, p in model.named_parameters():
            e = ema_params[name]
            e.mul_(self.decay).add_(p.detach().to(e.dtype), alpha=1.0 - self.decay)
        ema_buffers = dict(self.module.named_buffers())
        for name, b in model.named_buffers():
            ema_buffers[name].copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
