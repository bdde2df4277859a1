"""Paper-protocol evaluation of a super-resolver on a folder of HR images.

For every HR image (see ``docs/evaluation.md``):

1. crop to a multiple of the scale ``S`` (top-left kept);
2. LR = MATLAB bicubic downscale by ``1/S``, quantised to uint8 (round half to even) as a saved
   PNG would be -- or the matching file from a prepared LR folder;
3. SR = ``sr_fn(LR)``, quantised to uint8;
4. PSNR / SSIM on Y (gray images: on their own channel) with ``S`` border pixels cropped.

The super-resolver is any callable ``sr_fn(lr) -> sr`` mapping a float tensor ``(1, C, h, w)`` in
[0, 1] to ``(1, C, S*h, S*w)``; :func:`bicubic_sr` is the baseline and :func:`model_sr` wraps a
model from :mod:`contrast_sr.models`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from contrast_sr.data.degrade import bicubic_lr, degraded_lr, parse_lr_degradation
from contrast_sr.errors import ArgumentError, InputError
from contrast_sr.io import list_images, read_image, split_alpha, to_uint8, write_image
from contrast_sr.metrics import calculate_psnr_y, calculate_ssim_y
from contrast_sr.ops.imresize import imresize

__all__ = [
    "EvalResult",
    "ImageResult",
    "SRFunction",
    "bicubic_sr",
    "evaluate",
    "find_lr",
    "model_sr",
]

SRFunction = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ImageResult:
    name: str
    psnr_y: float
    ssim_y: float


@dataclass
class EvalResult:
    """Per-image and mean PSNR / SSIM (Y) of one model on one dataset at one scale."""

    model: str
    dataset: str
    scale: int
    images: list[ImageResult] = field(default_factory=list)

    @property
    def psnr_y(self) -> float:
        return sum(r.psnr_y for r in self.images) / len(self.images)

    @property
    def ssim_y(self) -> float:
        return sum(r.ssim_y for r in self.images) / len(self.images)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "scale": self.scale,
            "psnr_y": self.psnr_y,
            "ssim_y": self.ssim_y,
            "images": [
                {"name": r.name, "psnr_y": r.psnr_y, "ssim_y": r.ssim_y} for r in self.images
            ],
        }

    def table(self) -> str:
        """Human-readable table: one row per image, then the mean."""
        width = max([len("mean"), *(len(r.name) for r in self.images)])
        head = f"{self.model} on {self.dataset} x{self.scale}"
        lines = [head, f"{'image':<{width}}  {'PSNR-Y':>8}  {'SSIM-Y':>7}"]
        lines += [f"{r.name:<{width}}  {r.psnr_y:8.4f}  {r.ssim_y:7.4f}" for r in self.images]
        lines.append(f"{'mean':<{width}}  {self.psnr_y:8.4f}  {self.ssim_y:7.4f}")
        return "\n".join(lines)


def bicubic_sr(scale: int) -> SRFunction:
    """The baseline: MATLAB bicubic upscale by ``scale``."""

    def sr_fn(lr: torch.Tensor) -> torch.Tensor:
        return imresize(lr, scale=scale)

    return sr_fn


def model_sr(
    model: torch.nn.Module, device: torch.device | None = None, precision: str = "fp32"
) -> SRFunction:
    """Wrap an RGB model (``(B, 3, H, W)`` -> ``(B, 3, sH, sW)``) as an ``sr_fn``.

    Runs in ``eval()`` mode under ``no_grad`` (and autocast for bf16/fp16). Gray inputs are fed as
    three equal channels and the output is averaged back to one channel.
    """
    from contrast_sr.infer.channels import gray_as_rgb
    from contrast_sr.utils.device import autocast

    device = device or torch.device("cpu")
    model = model.to(device).eval()

    def rgb_forward(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), autocast(device, precision):
            y = model(x)
        return y.float()

    def sr_fn(lr: torch.Tensor) -> torch.Tensor:
        return gray_as_rgb(rgb_forward, lr.to(device))

    return sr_fn


def find_lr(lr_dir: Path, hr_path: Path, scale: int, lr_files: dict[str, Path]) -> Path:
    """The LR file for ``hr_path`` in ``lr_dir``, matched by stem.

    Accepts the usual layouts: same stem (``baby.png``), EDSR/BasicSR (``babyx4.png``,
    ``baby_x4.png``) and SelfExSR (``img_001_SRF_4_HR.png`` -> ``img_001_SRF_4_LR.png``).
    """
    stem = hr_path.stem
    candidates = [stem, f"{stem}x{scale}", f"{stem}_x{scale}", f"{stem}_lr", f"{stem}_LR"]
    if "HR" in stem:
        candidates.append(stem.replace("HR", "LR"))
    for name in candidates:
        if name.lower() in lr_files:
            return lr_files[name.lower()]
    raise InputError(
        str(hr_path), f"no LR image for it in {lr_dir} (looked for {', '.join(candidates[:3])}...)"
    )


def _dataset_name(hr_dir: Path) -> str:
    hr_dir = hr_dir.resolve()
    return hr_dir.parent.name if hr_dir.name.upper() == "HR" else hr_dir.name


def _color_uint8(path: Path) -> torch.Tensor:
    """Read an image as uint8 colour channels ``(C, H, W)`` (alpha dropped)."""
    x, info = read_image(path)
    color, _ = split_alpha(x, info)
    return to_uint8(color)


def evaluate(
    sr_fn: SRFunction,
    hr_dir: str | os.PathLike,
    scale: int,
    lr_dir: str | os.PathLike | None = None,
    save_dir: str | os.PathLike | None = None,
    model_name: str = "model",
    device: torch.device | None = None,
    progress: bool = True,
    limit: int | None = None,
    lr_degradation: str | None = None,
) -> EvalResult:
    """Run the evaluation protocol over every image in ``hr_dir`` (or its first ``limit``
    images in name order); see the module docstring. ``lr_degradation`` makes the LR of the
    degraded benchmark instead of plain bicubic (``"photo"``: blur 1.0, bicubic down, noise
    5/255, JPEG 75; see :func:`~contrast_sr.data.degrade.parse_lr_degradation`).

    Raises:
        ArgumentError: bad scale or folders (exit code 2; the CLI names its flags).
        InputError: an unreadable image, a missing LR file, or a wrong SR/LR size (exit code 1).
    """
    from tqdm import tqdm

    if not isinstance(scale, int) or scale < 1:
        raise ArgumentError("scale", f"must be a positive integer, got {scale!r}")
    hr_dir = Path(hr_dir)
    if not hr_dir.is_dir():
        raise ArgumentError("hr_dir", f"{hr_dir} is not a folder of HR images")
    hr_paths = list_images(hr_dir)
    if not hr_paths:
        raise ArgumentError("hr_dir", f"no images found in {hr_dir} (png, bmp, jpg, tif, webp)")
    if limit is not None:
        if limit < 1:
            raise ArgumentError("limit", f"must be >= 1, got {limit}")
        hr_paths = hr_paths[:limit]
    lr_files: dict[str, Path] = {}
    if lr_dir is not None:
        lr_dir = Path(lr_dir)
        if not lr_dir.is_dir():
            raise ArgumentError("lr_dir", f"{lr_dir} is not a folder")
        lr_files = {p.stem.lower(): p for p in list_images(lr_dir)}
    if save_dir is not None:
        save_dir = Path(save_dir)
        inputs = {hr_dir.resolve()} | ({Path(lr_dir).resolve()} if lr_dir else set())
        if save_dir.resolve() in inputs:
            raise ArgumentError(
                "save_dir",
                f"{save_dir} is an input folder; choose another one so no input is overwritten",
            )
    settings = None if lr_degradation is None else parse_lr_degradation(lr_degradation)
    if settings is not None and lr_dir is not None:
        raise ArgumentError("lr_degradation", "makes its own LR; do not give an LR folder too")
    device = device or torch.device("cpu")
    result = EvalResult(model=model_name, dataset=_dataset_name(hr_dir), scale=scale)
    with tqdm(
        hr_paths, desc=f"eval x{scale}", unit="img", file=sys.stderr, disable=not progress
    ) as bar:
        for hr_path in bar:
            bar.set_postfix_str(hr_path.stem, refresh=False)
            result.images.append(
                _evaluate_image(sr_fn, hr_path, scale, device, lr_dir, lr_files, save_dir, settings)
            )
    return result


def _evaluate_image(
    sr_fn: SRFunction,
    hr_path: Path,
    scale: int,
    device: torch.device,
    lr_dir: Path | None,
    lr_files: dict[str, Path],
    save_dir: Path | None,
    settings: dict[str, float] | None = None,
) -> ImageResult:
    """Steps 1-5 of the protocol for one HR image."""
    hr = _color_uint8(hr_path)
    h, w = (hr.shape[1] // scale) * scale, (hr.shape[2] // scale) * scale
    if min(h, w) - 2 * scale < 11:  # SSIM needs an 11x11 window after the border crop
        raise InputError(
            str(hr_path),
            f"too small for x{scale} evaluation ({hr.shape[2]}x{hr.shape[1]}; needs "
            f"{11 + 2 * scale} pixels per side after cropping to a multiple of {scale})",
        )
    hr = hr[:, :h, :w]
    if lr_dir is not None:
        lr_path = find_lr(lr_dir, hr_path, scale, lr_files)
        lr = _color_uint8(lr_path)
        if lr.shape[0] == 3 and hr.shape[0] == 1:
            hr = hr.expand(3, -1, -1)  # gray HR with an RGB LR copy: compare as RGB
        elif lr.shape[0] != hr.shape[0]:
            raise InputError(
                str(lr_path), f"LR has {lr.shape[0]} channel(s) but its HR has {hr.shape[0]}"
            )
        if tuple(lr.shape[1:]) != (h // scale, w // scale):
            raise InputError(
                str(lr_path),
                f"LR is {lr.shape[2]}x{lr.shape[1]}, expected {w // scale}x{h // scale} "
                f"for x{scale} of {hr_path.name}",
            )
    elif settings is not None:
        lr = degraded_lr(hr, scale, settings, hr_path.name)
    else:
        lr = bicubic_lr(hr, scale)
    lr_in = (lr.to(torch.float32) / 255.0)[None].to(device)
    sr = sr_fn(lr_in)
    if sr.dim() != 4 or tuple(sr.shape[-2:]) != (h, w) or sr.shape[1] != lr.shape[0]:
        raise InputError(
            str(hr_path),
            f"super-resolver returned shape {tuple(sr.shape)}, expected "
            f"(1, {lr.shape[0]}, {h}, {w})",
        )
    sr_u8 = to_uint8(sr[0].cpu())
    if save_dir is not None:
        _save(save_dir, hr_path, sr_u8, {hr_path.resolve()})
    return ImageResult(
        name=hr_path.stem,
        psnr_y=calculate_psnr_y(sr_u8, hr, crop_border=scale),
        ssim_y=calculate_ssim_y(sr_u8, hr, crop_border=scale),
    )


def _save(save_dir: Path, hr_path: Path, sr_u8: torch.Tensor, inputs: set[Path]) -> None:
    target = save_dir / f"{hr_path.stem}.png"
    if target.resolve() in inputs:
        raise ArgumentError("save_dir", f"{target} would overwrite an input")
    write_image(target, sr_u8.float() / 255.0)
