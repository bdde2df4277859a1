"""On-the-fly photo degradations: each step's maths, validation that names the key, a pure
function of (seed, sample id), and bit-identical resumed training with degradations on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from contrast_sr.data import degradations as D
from contrast_sr.data.paired import PairedPatches
from contrast_sr.errors import ConfigError, UsageError
from contrast_sr.train.config import load_config
from contrast_sr.train.loop import train

FULL = {"stages": [{}, {"blur": {"sigma": [0.2, 1.5]}}], "final": {"jpeg": {"prob": 0.5}}}


def test_kernels_sum_to_one_and_have_their_shape():
    iso = D.gaussian_kernel(21, 2.0, 2.0, 0.0)
    assert iso.sum().item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(iso, iso.T)  # isotropic: symmetric
    torch.testing.assert_close(iso, iso.flip(0))
    aniso = D.gaussian_kernel(21, 4.0, 1.0, 0.0)  # wide along x, narrow along y
    assert aniso[10, 14] > aniso[14, 10]
    flat = D.gaussian_kernel(21, 3.0, 3.0, 0.0, beta=4.0)  # generalized: flatter top
    assert flat[10, 10] / flat[10, 12] < iso[10, 10] / iso[10, 12] * 1.5
    assert flat[10, 20] < iso[10, 20]  # and thinner tails


def test_blur_keeps_a_flat_image_and_the_size():
    x = torch.full((3, 20, 24), 0.5)
    y = D.blur(x, D.gaussian_kernel(9, 2.0, 2.0, 0.0))
    assert y.shape == x.shape
    torch.testing.assert_close(y, x)


def test_noise_levels_and_gray_noise():
    x = torch.full((3, 64, 64), 0.5)
    rng = np.random.default_rng(0)
    noisy = D.gaussian_noise(x, 10.0, False, rng) - x
    assert noisy.std().item() == pytest.approx(10 / 255, rel=0.05)
    gray = D.gaussian_noise(x, 10.0, True, rng) - x
    torch.testing.assert_close(gray[0], gray[1])  # one noise image for all channels
    # shot noise grows with the signal (variance proportional to the intensity)
    ramp = torch.rand(3, 64, 64)  # many distinct levels -> 256 levels
    dark = D.poisson_noise(ramp * 0 + 0.1, 1.0, False, np.random.default_rng(1))
    bright = D.poisson_noise(ramp * 0 + 0.9, 1.0, False, np.random.default_rng(1))
    assert (bright - 0.9).std() > 2 * (dark - 0.1).std() > 0


def test_jpeg_quality_orders_the_error():
    x = torch.rand(3, 32, 32)
    low = (D.jpeg(x, 10) - x).abs().mean()
    high = (D.jpeg(x, 95) - x).abs().mean()
    assert high < low


def test_degrade_gives_8bit_lr_of_the_right_size_and_is_deterministic():
    pipeline = D.parse_degradation(FULL)
    hr = torch.rand(3, 64, 48)
    a = D.degrade(hr, 4, pipeline, np.random.default_rng([0, 2, 5]))
    b = D.degrade(hr, 4, pipeline, np.random.default_rng([0, 2, 5]))
    c = D.degrade(hr, 4, pipeline, np.random.default_rng([0, 2, 6]))
    assert a.shape == (3, 16, 12)
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.testing.assert_close(a * 255, (a * 255).round())
    assert a.min() >= 0 and a.max() <= 1


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"stages": [{"blur": {"sigma": [3.0, 1.0]}}]}, "degradation.stages[0].blur.sigma"),
        ({"stages": [{"jpeg": {"quality": [0, 95]}}]}, "degradation.stages[0].jpeg.quality"),
        ({"stages": [{"resize": {"prob": [0.5, 0.6, 0.1]}}]}, "degradation.stages[0].resize.prob"),
        ({"stages": [{"noise": {"gray_prob": 2}}]}, "degradation.stages[0].noise.gray_prob"),
        ({"stages": [{"blurr": {}}]}, "degradation.stages[0].blurr"),
        ({"stages": [{}, {}, {}]}, "degradation.stages"),
        ({"final": {"modes": ["nearest"]}}, "degradation.final.modes"),
        ({"stages": [{"blur": {"kinds": {"box": 1}}}]}, "degradation.stages[0].blur.kinds"),
    ],
)
def test_bad_values_name_their_key(raw, key):
    with pytest.raises(ConfigError) as err:
        D.parse_degradation(raw)
    assert err.value.field == key


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("hr")
    for path in sorted((data_dir / "train" / "T91").glob("*.bmp"))[:4]:
        Image.open(path).convert("RGB").crop((0, 0, 64, 64)).save(root / f"{path.stem}.png")
    return root


def test_dataset_samples_are_a_pure_function_of_seed_and_id(hr_dir):
    pipeline = D.parse_degradation(FULL)
    ds = PairedPatches(hr_dir, 4, 8, seed=3, degradation=pipeline)
    again = PairedPatches(hr_dir, 4, 8, seed=3, degradation=pipeline)
    other = PairedPatches(hr_dir, 4, 8, seed=4, degradation=pipeline)
    lr, hr = ds[7]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 32, 32)
    for k in (7, 2):
        assert torch.equal(ds[k][0], again[k][0])
    assert not torch.equal(ds[7][0], other[7][0])
    plain = PairedPatches(hr_dir, 4, 8, seed=3)
    assert torch.equal(plain[7][1], hr)  # same crop and flips as without degradations
    assert not torch.equal(plain[7][0], lr)
    with pytest.raises(UsageError, match="HR-only"):
        PairedPatches(hr_dir, 4, 8, lr_dir=hr_dir, degradation=pipeline)


def _config(hr_dir, tmp_path, **train):
    raw = {
        "model": {"name": "tests.tiny_sr:tiny_sr", "scale": 4, "dims": 8},
        "data": {
            "train": {
                "hr_dir": str(hr_dir),
                "patch_size": 8,
                "batch_size": 2,
                "workers": 0,
                "degradation": FULL,
            }
        },
        "train": {"iters": 6, "checkpoint_every": 2, "log_every": 2, "lr": 1e-3, **train},
    }
    path = tmp_path / "cfg.yml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_resume_with_degradations_is_bit_identical(hr_dir, tmp_path):
    from safetensors.torch import load_file

    cfg = _config(hr_dir, tmp_path)
    train(cfg, tmp_path / "full")
    train(cfg, tmp_path / "part")
    for n in (6, 4):
        (tmp_path / "part" / "checkpoints" / f"iter_{n}.pt").unlink()
    (tmp_path / "part" / "model.safetensors").unlink()
    assert train(cfg, tmp_path / "part", resume=True)["trained"] == 4
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_config_error_names_the_degradation_key(hr_dir, tmp_path):
    bad = {"stages": [{"noise": {"sigma": [5, 1]}}]}
    with pytest.raises(ConfigError, match=r"stages\[0\]\.noise\.sigma"):
        load_config(
            None,
            raw={
                "model": {"name": "contrast_tiny"},
                "data": {"train": {"hr_dir": str(hr_dir), "degradation": bad}},
            },
        )


def test_degraded_benchmark_is_deterministic_and_harder(data_dir, capsys):
    from contrast_sr.cli import main
    from contrast_sr.data.degrade import bicubic_lr, degraded_lr, parse_lr_degradation

    assert parse_lr_degradation("photo") == {"blur": 1.0, "noise": 5.0, "jpeg": 75}
    assert parse_lr_degradation("noise=3") == {"noise": 3.0}
    hr = torch.from_numpy(
        np.array(Image.open(data_dir / "benchmark" / "Set5" / "HR" / "bird.png").convert("RGB"))
    ).permute(2, 0, 1)[:, :96, :96]
    settings = parse_lr_degradation("photo")
    a, b = degraded_lr(hr, 4, settings, "bird.png"), degraded_lr(hr, 4, settings, "bird.png")
    assert a.dtype == torch.uint8 and a.shape == (3, 24, 24) and torch.equal(a, b)
    assert not torch.equal(a, bicubic_lr(hr, 4))
    folder = str(data_dir / "benchmark" / "Set5" / "HR")
    args = ["eval", "--model", "bicubic", "--data", folder, "--scale", "4", "--json"]
    assert main([*args, "--limit", "2"]) == 0
    clean = json.loads(capsys.readouterr().out)["psnr_y"]
    assert main([*args, "--limit", "2", "--lr-degradation", "photo"]) == 0
    degraded = json.loads(capsys.readouterr().out)["psnr_y"]
    assert degraded < clean - 0.3
    assert main([*args, "--lr-degradation", "blur=x"]) == 2
    assert "--lr-degradation" in capsys.readouterr().err


def test_bundled_photo_model_upscales_and_is_its_own_variant(tmp_path):
    from contrast_sr.cli import main
    from contrast_sr.models.checkpoint import read_metadata
    from contrast_sr.weights import bundled_weights

    weights = bundled_weights("photo", 4)
    assert read_metadata(weights)["variant"] == "photo"
    Image.fromarray(np.full((10, 12, 3), 128, np.uint8)).save(tmp_path / "a.jpg")
    out = tmp_path / "a_x4.png"
    assert main(["upscale", str(tmp_path / "a.jpg"), "--model", "photo", "-o", str(out)]) == 0
    assert Image.open(out).size == (48, 40)


def test_validation_on_the_degraded_benchmark(hr_dir, tmp_path):
    """``data.val.lr_degradation`` validates on the degraded benchmark's LR, as ``eval
    --lr-degradation`` scores it; a bad spec is refused before training, naming the key."""
    from safetensors.torch import load_file

    from contrast_sr.evaluate import evaluate, model_sr

    from .tiny_sr import TinySR

    _config(hr_dir, tmp_path, val_every=6)  # writes cfg.yml
    raw = yaml.safe_load((tmp_path / "cfg.yml").read_text())
    raw["data"]["val"] = {"hr_dir": str(hr_dir), "lr_degradation": "photo"}
    train(load_config(None, raw=raw), tmp_path / "run")
    record = [yaml.safe_load(ln) for ln in (tmp_path / "run" / "metrics.jsonl").open()][-1]
    logged = record["val"][hr_dir.name]["psnr"]
    model = TinySR(4, 8)
    model.load_state_dict(load_file(str(tmp_path / "run" / "model.safetensors")))
    sr = model_sr(model)
    degraded = evaluate(sr, hr_dir, 4, progress=False, lr_degradation="photo").psnr_y
    clean = evaluate(sr, hr_dir, 4, progress=False).psnr_y
    assert logged == degraded and abs(degraded - clean) > 0.1
    raw["data"]["val"]["lr_degradation"] = "noise=loud"
    with pytest.raises(ConfigError, match=r"data\.val\.lr_degradation"):
        load_config(None, raw=raw)


@pytest.mark.parametrize("name", ["narrower", "matched", "deeper", "wider"])
def test_photo_study_configs_are_valid(name):
    from .conftest import REPO_ROOT

    cfg = load_config(REPO_ROOT / "configs" / "photo_study" / f"{name}.yml")
    assert cfg.data.train.degradation and cfg.data.val.lr_degradation == "photo"
