"""Learning-rate schedules as pure functions of the iteration (exact on resume by construction).

Iterations count from 1. Iteration ``n`` uses ``lr * lr_factor(cfg, n)``:

* warmup (``warmup_iters = W > 0``): the factor is multiplied by ``n / W`` while ``n <= W``;
* ``multistep``: ``gamma ** k`` with ``k`` = number of milestones ``<= n`` (BasicSR's MultiStepLR,
  so iteration 250000 of the research recipe already runs at ``lr * gamma``);
* ``cosine``: from ``lr`` after warmup down to ``min_lr`` at the last iteration;
* ``constant``: 1.
"""

from __future__ import annotations

import bisect
import math

from contrast_sr.train.config import TrainConfig


def lr_at(cfg: TrainConfig, n: int) -> float:
    """Learning rate of iteration ``n`` (1-based)."""
    warm = min(1.0, n / cfg.warmup_iters) if cfg.warmup_iters > 0 else 1.0
    if cfg.scheduler == "multistep":
        return cfg.lr * warm * cfg.gamma ** bisect.bisect_right(cfg.milestones, n)
    if cfg.scheduler == "cosine":
        span = max(1, cfg.iters - cfg.warmup_iters)
        progress = min(1.0, max(0.0, (n - cfg.warmup_iters) / span))
        cos = 0.5 * (1.0 + math.cos(math.pi * progress))
        return warm * (cfg.min_lr + (cfg.lr - cfg.min_lr) * cos)
    return cfg.lr * warm
