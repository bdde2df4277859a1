"""The LR image of the SR papers' bicubic degradation: one definition for evaluation, training
patches and the analysis figures."""

from __future__ import annotations

import torch

from contrast_sr.errors import ArgumentError
from contrast_sr.ops.imresize import imresize


def bicubic_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The LR of uint8 ``hr`` ``(..., C, H, W)`` (H, W multiples of ``scale``), as uint8.

    MATLAB bicubic downscale by ``1/scale`` in float64, rounded half to even to 8 bits, exactly
    as BasicSR makes and stores LR PNGs. Callers crop and convert around it.
    """
    if hr.dtype != torch.uint8:
        raise ArgumentError("hr", f"expected a uint8 tensor, got {hr.dtype}")
    if hr.shape[-2] % scale or hr.shape[-1] % scale:
        raise ArgumentError(
            "hr", f"size {hr.shape[-1]}x{hr.shape[-2]} is not a multiple of the scale {scale}"
        )
    lr = imresize(hr.to(torch.float64) / 255.0, scale=1.0 / scale)
    return torch.round(lr.clamp(0, 1) * 255.0).to(torch.uint8)


# The degraded benchmark (issue: real photos are not bicubic): HR blurred with a Gaussian of
# sigma 1.0, MATLAB-bicubic x``scale`` down, Gaussian noise of sigma 5/255, JPEG quality 75.
DEGRADED_PRESETS = {"photo": {"blur": 1.0, "noise": 5.0, "jpeg": 75}}


def parse_lr_degradation(spec: str) -> dict[str, float]:
    """``"photo"`` or ``"blur=1.0,noise=5,jpeg=75"`` (any subset) -> the settings dict."""
    if spec in DEGRADED_PRESETS:
        return dict(DEGRADED_PRESETS[spec])
    out: dict[str, float] = {}
    for part in spec.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in ("blur", "noise", "jpeg") or not value:
            raise ArgumentError(
                "lr_degradation",
                f"{spec!r}: expected 'photo' or e.g. 'blur=1.0,noise=5,jpeg=75' (keys blur, noise, "
                "jpeg)",
            )
        try:
            out[key] = float(value)
        except ValueError:
            raise ArgumentError("lr_degradation", f"{part!r}: not a number") from None
    if "jpeg" in out and not 1 <= out["jpeg"] <= 100:
        raise ArgumentError("lr_degradation", f"jpeg quality {out['jpeg']:g} not in 1..100")
    if out.get("blur", 1.0) <= 0 or out.get("noise", 0.0) < 0:
        raise ArgumentError("lr_degradation", "blur must be > 0 and noise >= 0")
    return out


def degraded_lr(hr: torch.Tensor, scale: int, settings: dict[str, float], key: str) -> torch.Tensor:
    """The degraded benchmark's LR of uint8 ``hr`` (C, H, W), as uint8; deterministic: the
    noise generator is seeded from ``key`` (the image name)."""
    import math
    import zlib

    import numpy as np

    from contrast_sr.data.degradations import blur, gaussian_kernel, jpeg

    x = hr.to(torch.float32) / 255.0
    if "blur" in settings:
        sigma = settings["blur"]
        size = 2 * math.ceil(3 * sigma) + 1
        x = blur(x, gaussian_kernel(size, sigma, sigma, 0.0))
    x8 = torch.round(x.clamp(0, 1) * 255.0).to(torch.uint8)
    lr = bicubic_lr(x8, scale).to(torch.float32) / 255.0
    if settings.get("noise"):
        rng = np.random.default_rng(zlib.crc32(key.encode()))
        noise = rng.standard_normal(tuple(lr.shape)).astype(np.float32)
        lr = lr + torch.from_numpy(noise) * (settings["noise"] / 255.0)
    lr = torch.round(lr.clamp(0, 1) * 255.0) / 255.0
    if "jpeg" in settings:
        lr = jpeg(lr.expand(3, -1, -1), int(settings["jpeg"]))[: lr.shape[0]]
    return torch.round(lr * 255.0).to(torch.uint8)
