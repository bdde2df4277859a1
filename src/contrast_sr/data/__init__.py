"""Training and validation data: random SR patch pairs and full validation images."""

from contrast_sr.data.paired import PairedPatches, TrainSampler, list_images, make_lr

__all__ = ["PairedPatches", "TrainSampler", "list_images", "make_lr"]
