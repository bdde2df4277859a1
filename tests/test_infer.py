"""Inference engine: tiling and blending, self-ensemble, precision guard, OOM retry, API types."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from contrast_sr.errors import ArgumentError, ContrastError, InputError, UsageError
from contrast_sr.infer import Upscaler, self_ensemble, tiled_forward, upscale
from contrast_sr.infer.ensemble import TRANSFORMS, apply_transform
from contrast_sr.infer.precision import check_precision, has_attention
from contrast_sr.infer.tiling import blend_weights, tile_starts

from ._tiny_models import TinyAttentionSR, TinyChannelAttentionSR, TinySR


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


@pytest.fixture(scope="module")
def model() -> TinySR:
    return TinySR(scale=4).eval()


@pytest.fixture(scope="module")
def real_image(data_dir) -> torch.Tensor:
    img = Image.open(data_dir / "benchmark" / "Set5" / "HR" / "butterfly.png").convert("RGB")
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255


# -- tiling --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(100, 32, 8), (257, 64, 32), (64, 64, 16), (10, 64, 8), (65, 64, 32)],
)
def test_tile_starts_cover_with_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and min(starts[-1] + tile, length) == length
    covered = torch.zeros(length, dtype=torch.bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered.all()
    for a, b in itertools.pairwise(starts):
        assert a + tile - b >= min(overlap, tile // 2)  # real overlap at least as asked


def test_blend_weights_are_positive_and_fade_only_where_asked():
    w = blend_weights(64, 16, 8)
    assert (w > 0).all() and (w <= 1).all()
    assert torch.all(w[16:56] == 1) and w[0] < 0.01 and w[-1] < 0.05
    assert torch.all(w[:16].diff() > 0) and torch.all(w[56:].diff() < 0)


def test_tiling_is_exact_for_a_pointwise_model():
    pointwise = torch.nn.Conv2d(3, 3, 1)
    x = torch.rand(2, 3, 50, 70)
    with torch.no_grad():
        full = pointwise(x)
        tiled = tiled_forward(pointwise, x, scale=1, tile=24, overlap=8)
    torch.testing.assert_close(tiled, full, atol=1e-6, rtol=1e-5)


def test_rectangular_tiles_and_banded_normalisation_are_exact(monkeypatch):
    """(h, w) tiles, separable weight sums and the final division in many small bands (so an
    interrupt is acted on between them) still reproduce a pointwise model exactly."""
    from contrast_sr.infer import tiling

    monkeypatch.setattr(tiling, "_BAND_ELEMENTS", 50)
    pointwise = torch.nn.Conv2d(3, 3, 1)
    x = torch.rand(1, 3, 45, 70)
    with torch.no_grad():
        full = pointwise(x)
        tiled = tiled_forward(pointwise, x, scale=1, tile=(20, 36), overlap=6)
    torch.testing.assert_close(tiled, full, atol=1e-6, rtol=1e-5)


def test_tiled_matches_untiled_on_a_real_image(model, real_image):
    """No seams: 32 px overlap gives >= 45 dB against the untiled result."""
    full = Upscaler(model, device="cpu", tile=0)(real_image)
    tiled = Upscaler(model, device="cpu", tile=96, tile_overlap=32)(real_image)
    assert tiled.shape == full.shape == (1, 3, 1024, 1024)
    assert psnr(tiled, full) >= 45.0
    without_blend = Upscaler(model, device="cpu", tile=96, tile_overlap=0)(real_image)
    assert psnr(without_blend, full) < psnr(tiled, full)  # overlap is what removes the seams


def test_tile_progress_callback_counts_tiles(model):
    seen = []

    def progress(total):
        seen.append(total)
        return lambda: seen.append("tick")

    Upscaler(model, device="cpu", tile=32, tile_overlap=8, progress=progress)(torch.rand(3, 60, 40))
    assert seen[0] == 3 * 2 and seen.count("tick") == 6


# -- self-ensemble -------------------------------------------------------------------------
@pytest.mark.parametrize(("k", "flip"), TRANSFORMS)
def test_self_ensemble_is_equivariant(model, k, flip):
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        y = self_ensemble(model, x)
        y_t = self_ensemble(model, apply_transform(x, k, flip))
    torch.testing.assert_close(y_t, apply_transform(y, k, flip), atol=1e-5, rtol=1e-5)


def test_plain_model_is_not_equivariant_but_ensemble_differs_from_it(model):
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        plain_flipped = model(x.flip(-1))
        assert (plain_flipped - model(x).flip(-1)).abs().max() > 1e-3  # the test can fail
        assert (self_ensemble(model, x) - model(x)).abs().max() > 1e-4


def test_upscaler_self_ensemble_option(model):
    x = torch.rand(1, 3, 16, 16)
    a = Upscaler(model, device="cpu", self_ensemble=True)(x)
    b = Upscaler(model, device="cpu", self_ensemble=True)(x.flip(-2))
    torch.testing.assert_close(b, a.flip(-2), atol=1e-5, rtol=1e-5)


# -- precision -----------------------------------------------------------------------------
def test_fp16_refused_for_attention_models_and_on_cpu():
    assert has_attention(TinyAttentionSR()) and not has_attention(TinySR())
    with pytest.raises(UsageError, match="attention"):
        check_precision(TinyAttentionSR(), torch.device("cuda"), "fp16")
    check_precision(TinySR(), torch.device("cuda"), "fp16")  # conv-only: allowed on GPU
    with pytest.raises(UsageError, match="CPU"):
        check_precision(TinySR(), torch.device("cpu"), "fp16")
    with pytest.raises(UsageError):
        check_precision(TinySR(), torch.device("cpu"), "fp8")


def test_fp16_guard_goes_by_module_type_not_class_name():
    # CAB's ChannelAttention is named like attention but has no softmax: fp16 is allowed
    cab_only = TinyChannelAttentionSR()
    assert any("attention" in type(m).__name__.lower() for m in cab_only.modules())
    assert not has_attention(cab_only)
    check_precision(cab_only, torch.device("cuda"), "fp16")
    with pytest.raises(ArgumentError, match="attention") as caught:
        check_precision(TinyAttentionSR(), torch.device("cuda"), "fp16")
    assert caught.value.argument == "precision"


def test_bf16_on_cpu_is_close_to_fp32(model):
    x = torch.rand(1, 3, 24, 24)
    fp32 = Upscaler(model, device="cpu")(x)
    bf16 = Upscaler(model, device="cpu", precision="bf16")(x)
    assert bf16.dtype == torch.float32 and 30 < psnr(bf16, fp32) < float("inf")


# -- tile values -----------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["x", "4", 3, -5])
def test_bad_tile_values(model, bad):
    with pytest.raises(ArgumentError, match="tile") as caught:
        Upscaler(model, device="cpu", tile=bad)
    assert caught.value.argument == "tile" and "--tile" in caught.value.as_flag().message


def test_tile_values_from_the_command_line(model):
    assert Upscaler(model, device="cpu", tile="96").tile == 96
    assert Upscaler(model, device="cpu", tile="0").tile is None
    assert Upscaler(model, device="cpu", tile="auto").tile == "auto"
    assert Upscaler(model, device="cpu").tile == "auto"  # the default is memory-bounded


@pytest.mark.parametrize(("tile", "overlap"), [(31, 32), (64, 32), (64, 64), (16, 8)])
def test_overlap_of_half_the_tile_or_more_is_refused(model, tile, overlap):
    with pytest.raises(ArgumentError, match="half the tile") as caught:
        Upscaler(model, device="cpu", tile=tile, tile_overlap=overlap)
    assert caught.value.argument == "tile_overlap"
    Upscaler(model, device="cpu", tile=tile, tile_overlap=(tile - 1) // 2)  # just below: fine


# -- channels and API types ------------------------------------------------------------------
def test_gray_is_the_mean_of_the_replicated_rgb_result(model):
    g = torch.rand(1, 1, 12, 10)
    up = Upscaler(model, device="cpu")
    with torch.no_grad():
        expected = model(g.expand(-1, 3, -1, -1)).mean(1, keepdim=True).clamp(0, 1)
    out = up(g)
    assert out.shape == (1, 1, 48, 40)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("alpha", ["bicubic", "model"])
def test_alpha_is_upscaled_separately(model, alpha):
    rgba = torch.rand(1, 4, 12, 10)
    rgba[:, 3] = 0.5
    out = Upscaler(model, device="cpu", alpha=alpha)(rgba)
    up_rgb = Upscaler(model, device="cpu")(rgba[:, :3])
    torch.testing.assert_close(out[:, :3], up_rgb)
    if alpha == "bicubic":
        torch.testing.assert_close(out[:, 3], torch.full_like(out[:, 3], 0.5))
    else:
        assert out.shape == (1, 4, 48, 40)


PIL_KINDS = [
    ("L", "L"),
    ("LA", "LA"),
    ("RGB", "RGB"),
    ("RGBA", "RGBA"),
    ("1", "L"),
    ("P", "RGB"),
    ("CMYK", "RGB"),
    ("I;16", "I;16"),
    ("I", "I"),
    ("F", "F"),
]


def _pil(mode: str) -> Image.Image:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8))
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (9, 11), dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(0, 65536, (9, 11)).astype(np.int32))
    if mode == "F":
        return Image.fromarray(rng.random((9, 11), dtype=np.float32))
    if mode == "P":
        return rgb.convert("P")
    return rgb.convert(mode)


@pytest.mark.parametrize(("mode", "expected"), PIL_KINDS)
def test_pil_kinds(model, mode, expected):
    img = _pil(mode)
    out = upscale(img, model=model, device="cpu")
    assert isinstance(out, Image.Image) and out.mode == expected and out.size == (44, 36)


def test_pil_16bit_keeps_the_full_range(model):
    ramp = (np.linspace(0, 65535, 12 * 12).reshape(12, 12)).astype(np.uint16)
    out = np.asarray(upscale(Image.fromarray(ramp), model=model, device="cpu"))
    assert out.dtype == np.uint16 and len(np.unique(out)) > 256  # not squeezed through 8 bits


def test_palette_with_transparency_becomes_rgba(model):
    img = Image.new("P", (6, 5), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    assert upscale(img, model=model, device="cpu").mode == "RGBA"


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((9, 11), np.uint8),
        ((9, 11, 3), np.uint8),
        ((9, 11, 4), np.uint16),
        ((9, 11, 1), np.float32),
        ((9, 11, 2), np.float64),
        ((9, 11, 3), np.float32),
    ],
)
def test_numpy_types(model, shape, dtype):
    rng = np.random.default_rng(1)
    arr = (
        rng.random(shape) * (np.iinfo(dtype).max if dtype in (np.uint8, np.uint16) else 1)
    ).astype(dtype)
    out = upscale(arr, model=model, device="cpu")
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    assert out.shape == (36, 44, *shape[2:])


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((3, 9, 11), torch.float32),
        ((2, 3, 9, 11), torch.float32),
        ((1, 9, 11), torch.float64),
        ((4, 9, 11), torch.bfloat16),
        ((3, 9, 11), torch.uint8),
    ],
)
def test_torch_types(model, shape, dtype):
    t = (torch.rand(shape) * (255 if dtype == torch.uint8 else 1)).to(dtype)
    out = upscale(t, model=model, device="cpu")
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device == t.device
    assert out.shape == (*shape[:-2], 36, 44)


def test_api_result_matches_the_engine(model):
    arr = np.random.default_rng(2).random((10, 12, 3)).astype(np.float32)
    expected = Upscaler(model, device="cpu")(torch.from_numpy(arr).permute(2, 0, 1))
    out = upscale(arr, model=model, device="cpu")
    np.testing.assert_allclose(out, expected.permute(1, 2, 0).numpy(), atol=1e-6)


def test_other_scale_resizes_the_model_output(model):
    out = upscale(torch.rand(3, 10, 12), model=model, scale=2, device="cpu")
    assert out.shape == (3, 20, 24)


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4, 5), np.uint8), np.zeros((4, 4), np.int64), torch.zeros(5, 4, 4), "img"]
)
def test_api_rejects_unsupported_inputs(model, bad):
    with pytest.raises(ContrastError):
        upscale(bad, model=model, device="cpu")


@pytest.mark.parametrize(
    "empty", [np.zeros((0, 5, 3), np.uint8), np.zeros((4, 0), np.float32), torch.zeros(3, 0, 4)]
)
def test_empty_images_are_a_typed_error(model, empty):
    with pytest.raises(InputError, match="empty"):
        upscale(empty, model=model, device="cpu")
