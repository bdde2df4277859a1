"""On-the-fly "real photo" degradations for training (Real-ESRGAN's pipeline, configurable).

An HR patch ``(3, H, W)`` in [0, 1] goes through one or two *stages* — blur (isotropic,
anisotropic or generalized Gaussian kernel), a random resize (area / bilinear / bicubic, up,
down or kept), Gaussian or Poisson noise (colour or gray), JPEG at a random quality — then a
*final* resize to ``(H / scale, W / scale)`` and an optional last JPEG; the LR is rounded to
8 bits. Every random choice comes from the generator passed in, which the dataset seeds with
``(seed, sample id)``: the LR of a sample is a pure function of them, so resumed training is
exact. Left out from Real-ESRGAN: sinc (ringing) and plateau kernels.

Training YAML (every key optional; ranges are ``[low, high]``, sampled uniformly)::

    data:
      train:
        degradation:
          stages:
            - blur: {prob: 1.0, kernel_size: [7, 21], sigma: [0.2, 3.0], beta: [0.5, 4.0],
                     kinds: {iso: 0.45, aniso: 0.25, generalized: 0.3}}
              resize: {prob: [0.2, 0.7, 0.1], scale: [0.15, 1.5], modes: [area, bilinear, bicubic]}
              noise: {prob: 0.5, sigma: [1, 30], poisson_prob: 0.5, poisson_scale: [0.05, 3.0],
                      gray_prob: 0.4}
              jpeg: {prob: 1.0, quality: [30, 95]}
          final: {modes: [area, bilinear, bicubic], jpeg: {prob: 0.0, quality: [30, 95]}}

Noise ``sigma`` is in 8-bit levels (sigma 5 = 5/255).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from contrast_sr.errors import ConfigError

RESIZE_MODES = ("area", "bilinear", "bicubic")
BLUR_KINDS = ("iso", "aniso", "generalized")


@dataclass(frozen=True)
class Blur:
    prob: float = 1.0
    kernel_size: tuple[int, int] = (7, 21)  # odd sizes in this range
    sigma: tuple[float, float] = (0.2, 3.0)
    beta: tuple[float, float] = (0.5, 4.0)  # generalized Gaussian shape (2 = Gaussian)
    kinds: dict[str, float] = field(
        default_factory=lambda: {"iso": 0.45, "aniso": 0.25, "generalized": 0.3}
    )


@dataclass(frozen=True)
class Resize:
    prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    scale: tuple[float, float] = (0.15, 1.5)
    modes: tuple[str, ...] = RESIZE_MODES


@dataclass(frozen=True)
class Noise:
    prob: float = 0.5
    sigma: tuple[float, float] = (1.0, 30.0)  # Gaussian, 8-bit levels
    poisson_prob: float = 0.5  # of the noisy samples, the share with Poisson instead
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_prob: float = 0.4


@dataclass(frozen=True)
class Jpeg:
    prob: float = 1.0
    quality: tuple[int, int] = (30, 95)


@dataclass(frozen=True)
class Stage:
    blur: Blur | None = field(default_factory=Blur)
    resize: Resize | None = field(default_factory=Resize)
    noise: Noise | None = field(default_factory=Noise)
    jpeg: Jpeg | None = field(default_factory=Jpeg)


@dataclass(frozen=True)
class Final:
    modes: tuple[str, ...] = RESIZE_MODES
    jpeg: Jpeg | None = None


@dataclass(frozen=True)
class Degradation:
    stages: tuple[Stage, ...] = (Stage(),)
    final: Final = field(default_factory=Final)


# ----------------------------------------------------------------------------- parsing


def _error(where: str, why: str) -> ConfigError:
    return ConfigError(where, why, section="data.train")


_PARTS = {"blur": Blur, "resize": Resize, "noise": Noise, "jpeg": Jpeg}
_WHERE = "degradation"


def _range(value: Any, where: str, lo: float, hi: float | None, integer: bool = False):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _error(where, f"expected [low, high], got {value!r}")
    a, b = value
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise _error(where, f"expected numbers, got {value!r}")
    if integer and not all(float(v).is_integer() for v in value):
        raise _error(where, f"expected integers, got {value!r}")
    if a > b or a < lo or (hi is not None and b > hi):
        bounds = f"{lo} <= low <= high" + (f" <= {hi}" if hi is not None else "")
        raise _error(where, f"{value!r}: need {bounds}")
    return (int(a), int(b)) if integer else (float(a), float(b))


def _prob(value: Any, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise _error(where, f"expected a probability in [0, 1], got {value!r}")
    return float(value)


def _modes(value: Any, where: str) -> tuple[str, ...]:
    ok = isinstance(value, (list, tuple)) and value and all(m in RESIZE_MODES for m in value)
    if not ok:
        raise _error(where, f"expected a list of {', '.join(RESIZE_MODES)}, got {value!r}")
    return tuple(value)


def _part(cls: type, raw: Any, where: str):
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _error(where, f"expected a mapping, got {raw!r}")
    known = {f for f in cls.__dataclass_fields__}
    for key in raw:
        if key not in known:
            raise _error(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(known))})")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        w = f"{where}.{key}"
        if key in ("prob", "poisson_prob", "gray_prob") and cls is not Resize:
            out[key] = _prob(value, w)
        elif key == "prob":  # resize: (up, down, keep)
            if not isinstance(value, (list, tuple)) or len(value) != 3:
                raise _error(w, f"expected [up, down, keep] probabilities, got {value!r}")
            probs = [_prob(v, w) for v in value]
            if abs(sum(probs) - 1) > 1e-6:
                raise _error(w, f"{value!r} must sum to 1")
            out[key] = tuple(probs)
        elif key == "kernel_size":
            size = _range(value, w, 1, 41, integer=True)
            if not any(k % 2 for k in range(size[0], size[1] + 1)):
                raise _error(w, f"{value!r} holds no odd size")
            out[key] = size
        elif key == "quality":
            out[key] = _range(value, w, 1, 100, integer=True)
        elif key in ("sigma", "poisson_scale", "scale", "beta"):
            low = 0.01 if key in ("scale", "beta") else 0.0
            out[key] = _range(value, w, low, None)
        elif key == "modes":
            out[key] = _modes(value, w)
        elif key == "kinds":
            if not isinstance(value, dict) or not value or any(k not in BLUR_KINDS for k in value):
                raise _error(w, f"expected weights for {', '.join(BLUR_KINDS)}, got {value!r}")
            out[key] = {k: _prob(v, f"{w}.{k}") for k, v in value.items()}
            if sum(out[key].values()) <= 0:
                raise _error(w, "the weights sum to 0")
    return cls(**out)


def parse_degradation(raw: Any) -> Degradation | None:
    """The typed pipeline of a ``data.train.degradation`` mapping (None: bicubic only).

    Raises ConfigError naming the dotted key of the first bad value."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _error(_WHERE, f"expected a mapping, got {raw!r}")
    for key in raw:
        if key not in ("stages", "final"):
            raise _error(f"{_WHERE}.{key}", "unknown key (known: final, stages)")
    stages_raw = raw.get("stages", [{}])
    if not isinstance(stages_raw, list) or not 1 <= len(stages_raw) <= 2:
        raise _error(f"{_WHERE}.stages", "expected a list of one or two stages")
    stages = []
    for i, st in enumerate(stages_raw):
        where = f"{_WHERE}.stages[{i}]"
        st = st or {}
        if not isinstance(st, dict):
            raise _error(where, f"expected a mapping, got {st!r}")
        for key in st:
            if key not in _PARTS:
                raise _error(f"{where}.{key}", f"unknown step (known: {', '.join(_PARTS)})")
        stages.append(
            Stage(**{k: _part(cls, st.get(k, {}), f"{where}.{k}") for k, cls in _PARTS.items()})
        )
    final_raw = raw.get("final", {}) or {}
    if not isinstance(final_raw, dict) or any(k not in ("modes", "jpeg") for k in final_raw):
        raise _error(f"{_WHERE}.final", "expected a mapping with modes and/or jpeg")
    final = Final(
        modes=_modes(final_raw.get("modes", list(RESIZE_MODES)), f"{_WHERE}.final.modes"),
        jpeg=_part(Jpeg, final_raw.get("jpeg"), f"{_WHERE}.final.jpeg"),
    )
    return Degradation(tuple(stages), final)


# ----------------------------------------------------------------------------- the steps


def gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float, beta: float = 2.0
) -> torch.Tensor:
    """(size, size) kernel exp(-0.5 (xᵀ Σ⁻¹ x)^(beta/2)), Σ rotated by ``theta``; sums to 1.
    ``beta`` 2 is the Gaussian; other values the generalized Gaussian."""
    r = (size - 1) / 2
    coords = torch.arange(size, dtype=torch.float64) - r
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * xx + s * yy, -s * xx + c * yy
    q = (u / sigma_x) ** 2 + (v / sigma_y) ** 2
    k = torch.exp(-0.5 * q ** (beta / 2))
    return (k / k.sum()).float()


def blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(C, H, W) convolved with a (k, k) kernel, reflect-padded (replicate when too small)."""
    pad = kernel.shape[-1] // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    y = F.pad(x[None], (pad, pad, pad, pad), mode=mode)
    weight = kernel.to(x.dtype)[None, None].expand(x.shape[0], 1, -1, -1)
    return F.conv2d(y, weight, groups=x.shape[0])[0]


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """(C, H, W) to (C, *size) by area, bilinear or bicubic (anti-aliased when shrinking)."""
    if mode == "area":
        return F.interpolate(x[None], size=size, mode="area")[0]
    return F.interpolate(x[None], size=size, mode=mode, align_corners=False, antialias=True)[0]


def gaussian_noise(x: torch.Tensor, sigma: float, gray: bool, rng: np.random.Generator):
    """x + N(0, (sigma/255)²), one noise image for all channels when ``gray``."""
    shape = (1, *x.shape[1:]) if gray else tuple(x.shape)
    noise = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * (sigma / 255.0)
    return x + noise


def poisson_noise(x: torch.Tensor, scale: float, gray: bool, rng: np.random.Generator):
    """Shot noise as Real-ESRGAN adds it: Poisson(x · levels) / levels - x, times ``scale``;
    ``levels`` from the number of distinct 8-bit values. Gray: computed on the luma."""
    src = x.clamp(0, 1)
    if gray:
        src = (0.299 * src[0] + 0.587 * src[1] + 0.114 * src[2])[None]
    q = torch.round(src * 255.0)
    levels = 2 ** math.ceil(math.log2(max(2, len(torch.unique(q)))))
    counts = rng.poisson(src.double().numpy() * levels)
    noise = torch.from_numpy(counts / levels).float() - src
    return x + noise * scale


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """(3, H, W) in [0, 1] through a JPEG encode/decode at ``quality`` (8-bit, 4:2:0)."""
    arr = (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        out = np.asarray(im.convert("RGB"))
    return torch.from_numpy(out.copy()).permute(2, 0, 1).float() / 255.0


# ----------------------------------------------------------------------------- the pipeline


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi)) if lo_hi[0] < lo_hi[1] else float(lo_hi[0])


def _blur_step(x: torch.Tensor, b: Blur, rng: np.random.Generator) -> torch.Tensor:
    sizes = [k for k in range(b.kernel_size[0], b.kernel_size[1] + 1) if k % 2]
    size = int(sizes[rng.integers(len(sizes))])
    kinds = list(b.kinds)
    weights = np.array([b.kinds[k] for k in kinds], dtype=np.float64)
    kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
    sx = _uniform(rng, b.sigma)
    sy = sx if kind == "iso" else _uniform(rng, b.sigma)
    theta = 0.0 if kind == "iso" else float(rng.uniform(0, math.pi))
    beta = _uniform(rng, b.beta) if kind == "generalized" else 2.0
    return blur(x, gaussian_kernel(size, sx, sy, theta, beta))


def _resize_step(x: torch.Tensor, r: Resize, rng: np.random.Generator) -> torch.Tensor:
    which = rng.choice(3, p=np.array(r.prob) / sum(r.prob))
    if which == 0:
        factor = float(rng.uniform(1.0, max(1.0, r.scale[1])))
    elif which == 1:
        factor = float(rng.uniform(r.scale[0], min(1.0, r.scale[1])))
    else:
        factor = 1.0
    mode = r.modes[rng.integers(len(r.modes))]
    h, w = x.shape[-2:]
    return resize(x, (max(1, round(h * factor)), max(1, round(w * factor))), mode)


def _noise_step(x: torch.Tensor, n: Noise, rng: np.random.Generator) -> torch.Tensor:
    gray = bool(rng.random() < n.gray_prob)
    if rng.random() < n.poisson_prob:
        return poisson_noise(x, _uniform(rng, n.poisson_scale), gray, rng)
    return gaussian_noise(x, _uniform(rng, n.sigma), gray, rng)


def _jpeg_step(x: torch.Tensor, j: Jpeg, rng: np.random.Generator) -> torch.Tensor:
    return jpeg(x, int(rng.integers(j.quality[0], j.quality[1] + 1)))


def degrade(
    hr: torch.Tensor, scale: int, pipeline: Degradation, rng: np.random.Generator
) -> torch.Tensor:
    """LR ``(3, H/scale, W/scale)`` float32 in [0, 1] (8-bit values) of HR ``(3, H, W)``."""
    x = hr.float()
    for st in pipeline.stages:
        # each step draws its decision first, so the stream of choices has a fixed shape
        if st.blur is not None and rng.random() < st.blur.prob:
            x = _blur_step(x, st.blur, rng)
        if st.resize is not None:
            x = _resize_step(x, st.resize, rng)
        if st.noise is not None and rng.random() < st.noise.prob:
            x = _noise_step(x, st.noise, rng)
        x = x.clamp(0, 1)
        if st.jpeg is not None and rng.random() < st.jpeg.prob:
            x = _jpeg_step(x, st.jpeg, rng)
    h, w = hr.shape[-2] // scale, hr.shape[-1] // scale
    f = pipeline.final
    x = resize(x, (h, w), f.modes[rng.integers(len(f.modes))]).clamp(0, 1)
    if f.jpeg is not None and rng.random() < f.jpeg.prob:
        x = _jpeg_step(x, f.jpeg, rng)
    return torch.round(x * 255.0) / 255.0
