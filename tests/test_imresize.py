"""MATLAB bicubic imresize: hand-derived values and an independent loop implementation."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from contrast_sr.ops import imresize
from contrast_sr.ops.imresize import cubic


def _cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _resize_1d_loop(x: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """MATLAB's ``contributions`` + ``resizeAlongDim`` written as plain loops (float64)."""
    in_len = len(x)
    width = 4.0
    kernel = _cubic
    if scale < 1:
        width = 4.0 / scale

        def kernel(t: float) -> float:
            return scale * _cubic(scale * t)

    aux = list(range(1, in_len + 1)) + list(range(in_len, 0, -1))
    out = np.zeros(out_len)
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + j for j in range(math.ceil(width) + 2)]
        w = np.array([kernel(u - k) for k in taps])
        w /= w.sum()
        src = [aux[(k - 1) % len(aux)] - 1 for k in taps]
        out[i - 1] = sum(wj * x[s] for wj, s in zip(w, src, strict=True))
    return out


def _resize_2d_loop(img: np.ndarray, scale: float) -> np.ndarray:
    h, w = img.shape
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    tmp = np.stack([_resize_1d_loop(img[:, c], oh, scale) for c in range(w)], axis=1)
    return np.stack([_resize_1d_loop(tmp[r], ow, scale) for r in range(oh)], axis=0)


def test_cubic_kernel_values():
    t = torch.tensor([0.0, 0.25, 0.75, 1.0, 1.25, 1.75, 2.0, 2.5], dtype=torch.float64)
    expected = [1.0, 0.8671875, 0.2265625, 0.0, -0.0703125, -0.0234375, 0.0, 0.0]
    assert cubic(t).tolist() == pytest.approx(expected, abs=1e-15)


def test_upscale_two_pixels_by_two_hand_derived(path):
    # u = x/2 + 1/4 -> taps weighted by cubic(0.25)=0.8671875, cubic(0.75)=0.2265625, ...
    # with symmetric padding [b a | a b | b a]: MATLAB imresize([0 1], 2) along one axis.
    x = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    out = imresize(x, scale=(1, 2))
    assert out.shape == (1, 4)
    assert out[0].tolist() == pytest.approx([-0.09375, 0.203125, 0.796875, 1.09375], abs=1e-15)


def test_downscale_ramp_interior_is_exact(path):
    # The (widened) cubic kernel reproduces linear functions: away from the borders, halving a
    # ramp 1..16 samples it at u = 2x - 0.5.
    x = torch.arange(1, 17, dtype=torch.float64)[None, :]
    out = imresize(x, scale=(1, 0.5))[0]
    assert out.shape == (8,)
    assert out[2:6].tolist() == pytest.approx([5.5, 7.5, 9.5, 11.5], abs=1e-12)


def test_downscale_impulse_matches_widened_kernel():
    # One output pixel of a x1/4 shrink centred on an impulse: weight = s*cubic(s*d) / sum.
    x = torch.zeros(1, 32, dtype=torch.float64)
    x[0, 13] = 1.0  # 1-based position 14; output pixel 4 samples u = 4*4 - 1.5 = 14.5
    out = imresize(x, scale=(1, 0.25))[0]
    taps = np.arange(math.floor(14.5 - 8), math.floor(14.5 - 8) + 18)
    w = np.array([0.25 * _cubic(0.25 * (14.5 - k)) for k in taps])
    assert out[3].item() == pytest.approx(w[taps == 14][0] / w.sum(), abs=1e-15)


@pytest.fixture(params=["dense", "banded"])
def path(request, monkeypatch):
    """Run a test through the dense-matrix path and through the banded-gather path."""
    mod = importlib.import_module("contrast_sr.ops.imresize")  # the package re-exports the function
    monkeypatch.setattr(mod, "DENSE_LIMIT", 1 << 40 if request.param == "dense" else 0)
    return request.param


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3, 1 / 4, 1.5, 0.7])
def test_matches_loop_reference(scale, path):
    rng = np.random.default_rng(0)
    img = rng.random((13, 11))
    expected = _resize_2d_loop(img, scale)
    got = imresize(torch.from_numpy(img), scale=scale).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_tiny_inputs_2x2_and_4x4_upscale(path):
    for n in (2, 4):
        img = np.arange(n * n, dtype=np.float64).reshape(n, n) / (n * n)
        got = imresize(torch.from_numpy(img), scale=2).numpy()
        np.testing.assert_allclose(got, _resize_2d_loop(img, 2), atol=1e-12)


def test_batched_shapes_dtype_and_consistency(path):
    x = torch.rand(2, 3, 10, 12)
    out = imresize(x, scale=1 / 2)
    assert out.shape == (2, 3, 5, 6) and out.dtype == torch.float32
    np.testing.assert_allclose(out[1, 2].numpy(), imresize(x[1, 2], scale=0.5).numpy(), atol=1e-6)
    assert imresize(x, size=(7, 9)).shape == (2, 3, 7, 9)
    assert imresize(x[0], scale=3).shape == (3, 30, 36)


def test_constant_image_is_preserved():
    x = torch.full((1, 1, 9, 7), 0.3, dtype=torch.float64)
    for s in (4, 1 / 3):
        assert torch.allclose(imresize(x, scale=s), torch.tensor(0.3, dtype=torch.float64))


def test_bad_arguments():
    with pytest.raises(ValueError):
        imresize(torch.rand(4, 4), scale=2, size=8)
    with pytest.raises(ValueError):
        imresize(torch.rand(4, 4), scale=-1)
    with pytest.raises(TypeError):
        imresize(torch.zeros(4, 4, dtype=torch.uint8), scale=2)


def test_dense_weight_matrix_equals_banded_pass():
    from contrast_sr.ops.imresize import resize_weights

    x = torch.rand(3, 20, 9, dtype=torch.float64)
    for s in (0.25, 3):
        m = resize_weights(20, math.ceil(20 * s), s)
        np.testing.assert_allclose(
            imresize(x, scale=(s, 1)).numpy(), torch.matmul(m, x).numpy(), atol=1e-12
        )
        assert torch.allclose(m.sum(dim=1), torch.ones(m.shape[0], dtype=torch.float64))
