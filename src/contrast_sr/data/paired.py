"""Random (LR, HR) training patches, a pure function of ``(seed, sample id)``.

Two layouts:

* **HR only** (``lr_dir`` unset): the LR patch is made on the fly with the MATLAB bicubic of the
  evaluation (:func:`contrast_sr.data.degrade.bicubic_lr`), rounded to 8 bits, exactly as if
  the whole HR image had been downscaled and saved as PNG first (the crop is taken with a margin
  wider than the kernel, so borders match the full-image result).
* **LR/HR pairs** (BasicSR/EDSR layout): ``lr_dir/<filename_tmpl.format(hr_stem)><ext>``, e.g.
  ``0001.png`` <-> ``0001x4.png`` with ``filename_tmpl: "{}x4"``.

Sample ``k`` (counted over the whole run) is image ``perm_e[k mod n]`` of epoch ``e = k // n``;
crop position and flips come from a generator seeded with ``(seed, k)``. The data order therefore
depends on nothing but the seed and the iteration: resuming, changing the number of workers, or
sharding over DDP ranks (:class:`TrainSampler`) all read the same samples.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from contrast_sr.data.degradations import Degradation, degrade
from contrast_sr.data.degrade import bicubic_lr
from contrast_sr.errors import UsageError
from contrast_sr.io import IMAGE_EXTENSIONS, list_images

_MARGIN = 4  # LR pixels of context around an on-the-fly crop (bicubic reaches 2 LR pixels)


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8; grayscale and palette images are converted to RGB."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return _chw(array).float().div_(255.0)


def _chw(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) uint8."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


class PairedPatches(Dataset):
    """``dataset[k]`` -> ``(lr (3, p, p), hr (3, p*s, p*s))`` float32 for global sample id ``k``."""

    def __init__(
        self,
        hr_dir: str | Path,
        scale: int,
        patch_size: int,
        lr_dir: str | Path | None = None,
        filename_tmpl: str = "{}",
        hflip: bool = True,
        rot90: bool = True,
        seed: int = 0,
        cache: bool = False,
        degradation: Degradation | None = None,
    ) -> None:
        if degradation is not None and lr_dir is not None:
            raise UsageError(
                "config key 'data.train.degradation'",
                "needs HR-only data (remove data.train.lr_dir)",
            )
        self.degradation = degradation
        self.scale, self.patch = scale, patch_size
        self.hflip, self.rot90, self.seed, self.cache = hflip, rot90, seed, cache
        hr_paths = list_images(hr_dir)
        if not hr_paths:
            raise UsageError("config key 'data.train.hr_dir'", f"no images in {hr_dir}")
        lr_paths = [None] * len(hr_paths)
        if lr_dir is not None:
            lr_paths = [_find_lr(Path(lr_dir), filename_tmpl, p) for p in hr_paths]
        self.items = []
        skipped = 0
        for hr, lr in zip(hr_paths, lr_paths, strict=True):
            with Image.open(hr) as im:
                w, h = im.size
            if min(h, w) < patch_size * scale:
                skipped += 1
                continue
            if lr is not None:
                with Image.open(lr) as im:
                    lw, lh = im.size
                if (lw * scale > w or lh * scale > h) or (lw < w // scale or lh < h // scale):
                    raise UsageError(
                        "config key 'data.train.lr_dir'",
                        f"{lr.name} is {lw}x{lh}, expected {w // scale}x{h // scale} for "
                        f"{hr.name} ({w}x{h}) at scale {scale}",
                    )
            self.items.append((hr, lr))
        if skipped:
            print(
                f"warning: {skipped} training image(s) smaller than the HR patch "
                f"({patch_size * scale}px) are left out",
                file=sys.stderr,
            )
        if not self.items:
            raise UsageError(
                "config key 'data.train.patch_size'",
                f"no training image is at least {patch_size * scale}px (patch {patch_size} x "
                f"scale {scale}) on both sides",
            )
        self._images: dict[int, tuple] = {}
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def image_index(self, k: int) -> int:
        epoch, pos = divmod(k, len(self.items))
        if self._perm is None or self._perm[0] != epoch:
            rng = np.random.default_rng([self.seed, 0, epoch])
            self._perm = (epoch, rng.permutation(len(self.items)))
        return int(self._perm[1][pos])

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if i in self._images:
            return self._images[i]
        hr_path, lr_path = self.items[i]
        pair = (read_rgb(hr_path), None if lr_path is None else read_rgb(lr_path))
        if self.cache:
            self._images[i] = pair
        return pair

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        hr_img, lr_img = self._load(self.image_index(k))
        rng = np.random.default_rng([self.seed, 1, k])
        s, p = self.scale, self.patch
        lr_h, lr_w = hr_img.shape[0] // s, hr_img.shape[1] // s
        y, x = int(rng.integers(0, lr_h - p + 1)), int(rng.integers(0, lr_w - p + 1))
        if self.degradation is not None:
            hr = _augment(to_tensor(hr_img[y * s : (y + p) * s, x * s : (x + p) * s]), self, rng)
            lr = degrade(hr, s, self.degradation, np.random.default_rng([self.seed, 2, k]))
            return lr.contiguous(), hr.contiguous()
        if lr_img is not None:
            lr = to_tensor(lr_img[y : y + p, x : x + p])
            hr = to_tensor(hr_img[y * s : (y + p) * s, x * s : (x + p) * s])
        else:
            # crop with a margin (clipped at the image border), downscale, keep the interior
            y0, x0 = max(0, y - _MARGIN), max(0, x - _MARGIN)
            y1, x1 = min(lr_h, y + p + _MARGIN), min(lr_w, x + p + _MARGIN)
            region = hr_img[y0 * s : y1 * s, x0 * s : x1 * s]
            lr = bicubic_lr(_chw(region), s).float().div_(255.0)
            lr = lr[:, y - y0 : y - y0 + p, x - x0 : x - x0 + p]
            hr = to_tensor(hr_img[y * s : (y + p) * s, x * s : (x + p) * s])
        lr, hr = _augment_pair(lr, hr, self, rng)
        return lr.contiguous(), hr.contiguous()


def _flips(ds: PairedPatches, rng: np.random.Generator) -> tuple[bool, bool, bool]:
    """(horizontal flip, vertical flip, transpose) of a sample, as configured."""
    flip, vflip, transpose = rng.random(3) < 0.5
    return bool(ds.hflip and flip), bool(ds.rot90 and vflip), bool(ds.rot90 and transpose)


def _apply(t: torch.Tensor, flips: tuple[bool, bool, bool]) -> torch.Tensor:
    if flips[0]:
        t = t.flip(-1)
    if flips[1]:
        t = t.flip(-2)
    return t.transpose(-1, -2) if flips[2] else t


def _augment_pair(lr, hr, ds: PairedPatches, rng: np.random.Generator):
    flips = _flips(ds, rng)
    return _apply(lr, flips), _apply(hr, flips)


def _augment(hr: torch.Tensor, ds: PairedPatches, rng: np.random.Generator) -> torch.Tensor:
    """The HR patch flipped as the sample says (degraded afterwards)."""
    return _apply(hr, _flips(ds, rng))


def _find_lr(lr_dir: Path, tmpl: str, hr_path: Path) -> Path:
    stem = tmpl.format(hr_path.stem)
    exact = lr_dir / f"{stem}{hr_path.suffix}"
    if exact.is_file():
        return exact
    for ext in IMAGE_EXTENSIONS:
        for candidate in (lr_dir / f"{stem}{ext}", lr_dir / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    raise UsageError(
        "config key 'data.train.lr_dir'",
        f"no LR image {stem}.* for {hr_path.name} in {lr_dir} (check data.train.filename_tmpl)",
    )


class TrainSampler(Sampler[int]):
    """Global sample ids of this rank, iteration by iteration, from ``start_iter`` (0-based).

    Iteration ``i`` uses ids ``[i * B, (i + 1) * B)`` with ``B = batch * world_size``; rank ``r``
    takes the ``r``-th slice of ``batch`` ids. Like ``DistributedSampler``, ranks see disjoint
    samples and together cover each epoch's permutation, but the order is a pure function of
    the iteration, so a resumed run reads exactly the batches the uninterrupted run would have.
    """

    def __init__(self, start_iter: int, iters: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.iters, self.batch, self.rank, self.world = (
            start_iter,
            iters,
            batch,
            rank,
            world,
        )

    def __len__(self) -> int:
        return max(0, self.iters - self.start) * self.batch

    def __iter__(self) -> Iterator[int]:
        for i in range(self.start, self.iters):
            base = (i * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)


def seed_worker(worker_id: int) -> None:
    """Per-worker seeds for any global RNG a transform might use (samples do not need them)."""
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
