"""MATLAB-compatible bicubic resize: ``imresize(img, scale, 'bicubic')``.

This is the resize every SR paper uses to make its LR inputs, so evaluation numbers only match
the literature when it is reproduced exactly:

- cubic convolution kernel with ``a = -0.5`` (Keys), support 4;
- when downscaling (``scale < 1``) the kernel is widened by ``1 / scale`` and scaled by ``scale``
  (antialiasing);
- output pixel ``x`` (1-based) samples input position ``u = x / scale + 0.5 * (1 - 1 / scale)``;
- weights of each output pixel are normalised to sum to one, an all-zero first / last tap is
  dropped, and out-of-range taps read the image mirrored symmetrically (``...2 1 | 1 2 ...``);
- height is resized first, then width (MATLAB's order when both scales are equal).

Each 1-D pass is a dense ``(out, in)`` weight matrix product (symmetric padding folded into the
matrix; fastest for ordinary image sizes) or, for very long axes, a banded gather of the ``taps``
source rows of every output pixel, linear in the size. Both are vectorised and batched.
"""

from __future__ import annotations

import math

import torch

__all__ = ["contributions", "cubic", "imresize", "resize_weights"]


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys cubic convolution kernel with ``a = -0.5`` (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _mirror(index: torch.Tensor, length: int) -> torch.Tensor:
    """Map 0-based indices outside ``[0, length)`` into range by symmetric reflection."""
    period = 2 * length
    index = torch.remainder(index, period)
    return torch.where(index >= length, period - 1 - index, index)


def contributions(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """MATLAB's ``contributions``: source indices and weights of each output pixel along one axis.

    Returns:
        ``(indices, weights)``, both ``(out_length, taps)``: 0-based source indices already
        mirrored into ``[0, in_length)`` (long) and normalised weights (float64).
    """
    kernel_width = 4.0
    shrink = scale < 1 and antialiasing
    if shrink:
        kernel_width = kernel_width / scale
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # 1-based
    distance = u[:, None] - indices
    weights = scale * cubic(distance * scale) if shrink else cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # MATLAB drops a first / last tap that is zero for every output pixel.
    zero_columns = (weights == 0).all(dim=0)
    keep = torch.ones(taps, dtype=torch.bool)
    keep[0] = not bool(zero_columns[0])
    keep[-1] = not bool(zero_columns[-1])
    indices, weights = indices[:, keep], weights[:, keep]
    return _mirror(indices.long() - 1, in_length), weights


def resize_weights(
    in_length: int,
    out_length: int,
    scale: float,
    antialiasing: bool = True,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Dense ``(out_length, in_length)`` matrix of MATLAB bicubic weights along one axis."""
    indices, weights = contributions(in_length, out_length, scale, antialiasing)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, indices, weights)
    return matrix.to(dtype)


# Up to this many weight-matrix entries a pass is one dense matrix product (BLAS is fastest for
# images of a few megapixels); beyond it, a banded gather keeps the cost linear in the size.
DENSE_LIMIT = 1 << 22


def _resize_axis(
    x: torch.Tensor, dim: int, out_length: int, scale: float, antialiasing: bool
) -> torch.Tensor:
    """One 1-D pass along ``dim`` (``-2`` rows or ``-1`` columns)."""
    in_length = x.shape[dim]
    if in_length * out_length <= DENSE_LIMIT:
        m = resize_weights(in_length, out_length, scale, antialiasing, x.dtype).to(x.device)
        return torch.matmul(m, x) if dim == -2 else torch.matmul(x, m.transpose(0, 1))
    if dim == -1:  # gather whole rows: resize the transposed image
        return _resize_axis(x.transpose(-1, -2), -2, out_length, scale, antialiasing).transpose(
            -1, -2
        )
    indices, weights = contributions(in_length, out_length, scale, antialiasing)
    indices, weights = indices.to(x.device), weights.to(x.device, x.dtype)
    out = None
    for t in range(indices.shape[1]):
        term = x.index_select(-2, indices[:, t]) * weights[:, t, None]
        out = term if out is None else out.add_(term)
    return out


def _output_size(
    height: int, width: int, scale: float | tuple[float, float] | None, size
) -> tuple[tuple[int, int], tuple[float, float]]:
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of scale or size")
    if size is not None:
        out_h, out_w = (int(size), int(size)) if isinstance(size, int) else map(int, size)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"imresize: output size must be positive, got {size}")
        return (out_h, out_w), (out_h / height, out_w / width)
    sh, sw = (float(scale), float(scale)) if isinstance(scale, int | float) else map(float, scale)
    if sh <= 0 or sw <= 0:
        raise ValueError(f"imresize: scale must be positive, got {scale}")
    return (math.ceil(height * sh), math.ceil(width * sw)), (sh, sw)


def imresize(
    x: torch.Tensor,
    scale: float | tuple[float, float] | None = None,
    size: int | tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> torch.Tensor:
    """Resize ``x`` exactly like MATLAB ``imresize(x, scale, 'bicubic')``.

    Args:
        x: float tensor ``(H, W)``, ``(C, H, W)`` or ``(B, C, H, W)`` (any value range; no
            clamping or rounding is applied).
        scale: factor (or ``(scale_h, scale_w)``); output side is ``ceil(side * scale)``.
        size: output ``(H', W')`` instead of ``scale`` (the scale is then ``H' / H``, ``W' / W``).
        antialiasing: widen the kernel when downscaling (MATLAB's default ``true``).

    Returns:
        Tensor with the same leading dims and dtype as ``x`` and spatial size ``(H', W')``.
        Float64 inputs are resized in float64, all others in float32 (as BasicSR does).
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"imresize expects a floating-point tensor, got {x.dtype}")
    if x.dim() < 2 or x.dim() > 4:
        raise ValueError(
            f"imresize expects (H, W), (C, H, W) or (B, C, H, W), got {tuple(x.shape)}"
        )
    height, width = x.shape[-2:]
    (out_h, out_w), (sh, sw) = _output_size(height, width, scale, size)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = x.to(work)
    if (out_h, out_w) != (height, width) or (sh, sw) != (1.0, 1.0):
        y = _resize_axis(y, -2, out_h, sh, antialiasing)  # height first, as MATLAB does
        y = _resize_axis(y, -1, out_w, sw, antialiasing)
    return y.to(x.dtype)
