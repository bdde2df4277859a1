"""Training: config schema, one readable loop, EMA, schedules, checkpoints."""

from contrast_sr.train.config import Config, load_config

__all__ = ["Config", "load_config"]
