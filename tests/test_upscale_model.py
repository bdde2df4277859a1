"""The real models behind ``upscale``/``eval``: the bundled default, tiling seams, eval wiring."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from contrast_sr.cli import main
from contrast_sr.infer import DEFAULT_MODEL_NAME, Upscaler, default_model
from contrast_sr.infer.defaults import default_weights
from contrast_sr.models import create_model, save_model

from .conftest import cli_env

bundled = pytest.mark.skipif(
    not default_weights(4).is_file(), reason="no bundled default weights in this checkout"
)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


@pytest.fixture(scope="module")
def butterfly_crop(data_dir) -> torch.Tensor:
    img = Image.open(data_dir / "benchmark" / "Set5" / "HR" / "butterfly.png").convert("RGB")
    arr = np.asarray(img)[64:192, 64:192]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255


@bundled
def test_default_model_is_the_registered_tiny_variant():
    model = default_model(4)
    assert model.scale == 4 and model.variant == DEFAULT_MODEL_NAME
    assert sum(p.numel() for p in model.parameters()) < 1_000_000  # a few MB at most
    assert default_weights(4).stat().st_size < 5 * 1024**2


@bundled
def test_tiling_seams_with_the_default_model(butterfly_crop):
    """32 px of overlap: tiled vs untiled >= 45 dB on a real image (SS2D sees the whole tile)."""
    model = default_model(4)
    torch.manual_seed(0)
    full = Upscaler(model, device="cpu", tile=0)(butterfly_crop)
    tiled = Upscaler(model, device="cpu", tile=80, tile_overlap=32)(butterfly_crop)
    assert tiled.shape == full.shape == (1, 3, 512, 512)
    assert psnr(tiled, full) >= 45.0


@bundled
def test_planned_tiles_are_seamless_with_the_default_model(butterfly_crop):
    """The memory planner's rectangular tiles (default overlap 32) on a crop that also fits
    whole: >= 45 dB against the untiled result."""
    from contrast_sr.infer.memory import MemoryCost

    model = default_model(4)
    up = Upscaler(model, device="cpu", max_memory=12_000_000)  # 8000 pixels at 1000 B/px
    up.memory_cost = lambda: MemoryCost(0.0, 1000.0)
    tiled = up(butterfly_crop)
    assert up.last_tiles > 1 and up.last_tile[0] * up.last_tile[1] <= 8000
    full = Upscaler(model, device="cpu", tile=0)(butterfly_crop)
    assert psnr(tiled, full) >= 45.0


@bundled
def test_cli_end_to_end_with_the_bundled_model(tmp_path, data_dir):
    src = data_dir / "benchmark" / "Set5" / "HR" / "bird.png"
    small = tmp_path / "bird_small.png"
    Image.open(src).crop((100, 100, 164, 148)).save(small)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "contrast_sr",
            "upscale",
            str(small),
            "-o",
            str(tmp_path / "o"),
            "--json",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["outputs"][0]["width"] == 256 and report["outputs"][0]["height"] == 192
    assert Image.open(tmp_path / "o" / "bird_small.png").size == (256, 192)


def test_eval_self_ensemble_flag(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_model(create_model(DEFAULT_MODEL_NAME, 4), tmp_path / "tiny.safetensors")
    hr = tmp_path / "hr"
    hr.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(hr / f"{i}.png")
    results = {}
    for extra in ([], ["--self-ensemble"]):
        argv = ["eval", "--model", str(ckpt), "--data", str(hr), "--scale", "4", "--json"]
        assert main([*argv, "--no-progress", "--device", "cpu", *extra]) == 0
        results[bool(extra)] = json.loads(capsys.readouterr().out)
    assert "self-ensemble" in json.dumps(results[True])
    assert json.dumps(results[True]) != json.dumps(results[False])


@bundled
def test_bundled_model_beats_srcnn_on_set5_and_bicubic_on_set14(data_dir, capsys):
    """The acceptance of the default model, measured exactly as `contrast-sr eval` reports it."""
    scores = {}
    for model in ("default", "bicubic"):
        for name in ("Set5", "Set14"):
            argv = ["eval", "--data", str(data_dir / "benchmark" / name / "HR"), "--scale", "4"]
            argv += [] if model == "default" else ["--model", "bicubic"]
            assert main([*argv, "--json", "--no-progress", "--device", "cpu"]) == 0
            scores[model, name] = json.loads(capsys.readouterr().out)["psnr_y"]
    assert scores["default", "Set5"] >= 30.50
    assert scores["default", "Set14"] > scores["bicubic", "Set14"] + 0.5


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_every_scale_has_its_own_bundled_default_model(scale):
    """x2 and x3 no longer run the x4 model and resize: each scale ships its own weights."""
    from contrast_sr.infer import default_model
    from contrast_sr.weights import bundled_weights

    assert bundled_weights("contrast_tiny", scale).stat().st_size < 1_000_000  # under ~1 MB
    model = default_model(scale)
    assert model.scale == scale
    out = model(torch.rand(1, 3, 9, 11))
    assert out.shape == (1, 3, 9 * scale, 11 * scale)
