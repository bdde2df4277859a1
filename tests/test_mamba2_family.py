"""The Mamba-2 variants do everything the family does: train, eval, upscale (tiled), LAM,
features, bench, ONNX export, bf16; and their sizes match the Mamba-1 models they replace."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from contrast_sr import create_model, load_model
from contrast_sr.cli import main
from contrast_sr.export.onnx import export_onnx
from contrast_sr.infer.upscaler import Upscaler
from contrast_sr.models import save_model
from contrast_sr.models.registry import model_info

# a tiny hybrid: one group of Mamba-2, window attention, Mamba-2 blocks, then OCAB
TINY = {
    "dim": 12,
    "depths": [3],
    "num_heads": 2,
    "window_size": 4,
    "upsample_features": 12,
    "block_pattern": ["ss2d_m2", "attn"],
    "ssd_chunk": 8,
}


@pytest.mark.parametrize(
    ("name", "mamba1", "count"),
    [("contrast_v1_m2_light", "contrast_v1_light", 457_584), ("mamba2", "mamba", 759_812)],
)
def test_parameter_counts_pinned_and_within_one_percent(name, mamba1, count):
    params, reference = model_info(name)["params"], model_info(mamba1)["params"]
    assert params == count
    assert abs(params - reference) / reference < 0.01
    kinds = {b.kind for g in create_model(name).layers for b in g.residual_group.blocks}
    assert "ss2d_m2" in kinds and "ss2d" not in kinds


def _png(path, h, w, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = create_model("contrast_v1_m2_light", scale=2, **TINY)
    return save_model(model, tmp_path / "m2.safetensors")


def test_train_step_learns_and_saves(tmp_path):
    hr = tmp_path / "hr"
    hr.mkdir()
    for i in range(3):
        _png(hr / f"{i}.png", 40, 40, seed=i)
    config = tmp_path / "c.yml"
    model = {"name": "contrast_v1_m2_light", "scale": 2, **TINY}
    config.write_text(
        json.dumps(
            {
                "model": model,
                "data": {
                    "train": {"hr_dir": str(hr), "patch_size": 8, "batch_size": 2, "workers": 0},
                    "val": None,
                },
                "train": {"iters": 3, "lr": 1e-3, "checkpoint_every": 3, "log_every": 1},
            }
        )
    )
    assert main(["train", str(config), "-o", str(tmp_path / "run")]) == 0
    trained = load_model(tmp_path / "run" / "model.safetensors")
    assert trained.config.block_pattern == ("ss2d_m2", "attn")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)


def test_eval_upscale_tiled_lam_features_bench(tmp_path, tiny_checkpoint, capsys):
    hr = tmp_path / "hr"
    hr.mkdir()
    _png(hr / "a.png", 24, 20)
    assert main(["eval", "--model", str(tiny_checkpoint), "--data", str(hr), "--scale", "2",
                 "--json", "--no-progress"]) == 0  # fmt: skip
    assert np.isfinite(json.loads(capsys.readouterr().out)["psnr_y"])

    model = load_model(tiny_checkpoint)
    x = torch.rand(1, 3, 30, 26)
    whole = Upscaler(model, device="cpu")(x)
    tiled = Upscaler(model, device="cpu", tile=16, tile_overlap=6)(x)  # 4 blended tiles
    one_tile = Upscaler(model, device="cpu", tile=32, tile_overlap=6)(x)
    assert whole.shape == tiled.shape == (1, 3, 60, 52) and torch.isfinite(tiled).all()
    assert torch.equal(one_tile, whole)  # (an untrained global model differs across seams)
    assert not torch.equal(tiled, whole)

    image = _png(tmp_path / "img.png", 16, 16)
    lam_args = ["--image", str(image), "--box", "4,4,8", "--steps", "4", "--scale", "2"]
    assert main(["lam", "--model", str(tiny_checkpoint), *lam_args,
                 "-o", str(tmp_path / "lam.png"), "--json"]) == 0  # fmt: skip
    lam = json.loads(capsys.readouterr().out)
    assert (tmp_path / "lam.png").is_file() and lam
    assert main(["features", "--model", str(tiny_checkpoint), "--image", str(image),
                 "--scale", "2", "-o", str(tmp_path / "f.png"), "--json"]) == 0  # fmt: skip
    assert len(json.loads(capsys.readouterr().out)["layers"]) == 1
    assert main(["bench", "--models", str(tiny_checkpoint), "--size", "8", "--repeat", "1",
                 "--warmup", "0", "--scale", "2", "--json"]) == 0  # fmt: skip
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert row["flops"] > 0 and row["time_s"] > 0


def test_onnx_export_two_sizes(tmp_path, tiny_checkpoint):
    model = load_model(tiny_checkpoint)
    # traced at a size that needs window padding, so the pad is in the graph for every size
    report = export_onnx(model, tmp_path / "m2.onnx", size=10)
    assert report.dynamic and report.checked_sizes == [[10, 10], [40, 56], [33, 17]]
    assert report.max_abs_err <= 1e-4


def test_bf16_autocast_close_to_fp32(tiny_checkpoint):
    model = load_model(tiny_checkpoint)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        y32 = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y16 = model(x)
    assert torch.isfinite(y16).all()
    assert (y16.float() - y32).abs().max() < 0.05
