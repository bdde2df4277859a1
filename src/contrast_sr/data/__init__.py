"""Training and validation data: random SR patch pairs, full validation images, and the bicubic
LR of the SR papers (:func:`bicubic_lr`)."""

from contrast_sr.data.degrade import bicubic_lr
from contrast_sr.data.paired import PairedPatches, TrainSampler

__all__ = ["PairedPatches", "TrainSampler", "bicubic_lr"]
