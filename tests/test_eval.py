"""Evaluation protocol: published bicubic numbers, the CLI, prepared LR folders, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contrast_sr.cli import main
from contrast_sr.data import bicubic_lr
from contrast_sr.errors import ArgumentError, InputError, UsageError
from contrast_sr.evaluate import bicubic_sr, evaluate
from contrast_sr.io import read_image, to_uint8, write_image
from tests.conftest import cli_env

# Bicubic, BasicSR protocol (MATLAB imresize, uint8 LR/SR with round half to even, Y in float).
REFERENCE = {
    ("Set5", 2): (33.6818, 0.9305),
    ("Set5", 3): (30.4047, 0.8690),
    ("Set5", 4): (28.4314, 0.8113),
    ("Set14", 2): (30.2357, 0.8692),
    ("Set14", 3): (27.5397, 0.7746),
    ("Set14", 4): (25.9973, 0.7031),
    ("BSD100", 2): (29.5648, 0.8436),
    ("BSD100", 3): (27.2110, 0.7392),
    ("BSD100", 4): (25.9634, 0.6682),
    ("Urban100", 2): (26.8798, 0.8407),
    ("Urban100", 3): (24.4598, 0.7353),
    ("Urban100", 4): (23.1421, 0.6582),
}
SLOW_SETS = ("BSD100", "Urban100")


def _check_reference(data_dir: Path, dataset: str, scale: int) -> None:
    psnr, ssim = REFERENCE[(dataset, scale)]
    hr_dir = data_dir / "benchmark" / dataset / "HR"
    result = evaluate(bicubic_sr(scale), hr_dir, scale, model_name="bicubic", progress=False)
    assert result.dataset == dataset
    assert abs(result.psnr_y - psnr) < 0.005, (dataset, scale, result.psnr_y)
    assert abs(result.ssim_y - ssim) < 0.0005, (dataset, scale, result.ssim_y)


@pytest.mark.parametrize(
    ("dataset", "scale"), [k for k in REFERENCE if k[0] not in SLOW_SETS], ids=str
)
def test_bicubic_reproduces_reference(data_dir, dataset, scale):
    _check_reference(data_dir, dataset, scale)


@pytest.mark.slow
@pytest.mark.parametrize(("dataset", "scale"), [k for k in REFERENCE if k[0] in SLOW_SETS], ids=str)
def test_bicubic_reproduces_reference_large_sets(data_dir, dataset, scale):
    _check_reference(data_dir, dataset, scale)


def _hr_folder(tmp_path: Path, n: int = 2, size=(37, 29)) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "Toy" / "HR"
    folder.mkdir(parents=True)
    for i in range(n):
        base = np.linspace(0, 255, size[0] * size[1]).reshape(size[1], size[0])
        img = np.clip(base[..., None] + rng.normal(0, 12, (size[1], size[0], 3)), 0, 255)
        Image.fromarray(img.astype(np.uint8)).save(folder / f"im{i}.png")
    Image.fromarray(np.full((size[1], size[0]), 90, np.uint8)).save(folder / "gray.png")
    return folder


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "contrast_sr", *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )


def test_cli_json_schema_and_save_dir(tmp_path):
    hr = _hr_folder(tmp_path)
    out = tmp_path / "sr"
    proc = _cli(
        "eval",
        "--model",
        "bicubic",
        "--data",
        str(hr),
        "--scale",
        "3",
        "--json",
        "--save-dir",
        str(out),
        "--device",
        "cpu",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"model", "dataset", "scale", "psnr_y", "ssim_y", "images"}
    assert (result["model"], result["dataset"], result["scale"]) == ("bicubic", "Toy", 3)
    assert [im["name"] for im in result["images"]] == ["gray", "im0", "im1"]
    assert result["psnr_y"] == pytest.approx(np.mean([im["psnr_y"] for im in result["images"]]))
    assert "mean" in proc.stderr  # human table goes to stderr with --json
    saved = sorted(p.name for p in out.iterdir())
    assert saved == ["gray.png", "im0.png", "im1.png"]
    x, _ = read_image(out / "im0.png")
    assert x.shape == (3, 27, 36)  # 29x37 cropped to 27x36
    _, ginfo = read_image(out / "gray.png")
    assert ginfo.channels == 1
    assert result["images"][0]["psnr_y"] > 40  # flat gray image survives bicubic almost exactly


def test_cli_table_without_json(tmp_path, capsys):
    code = main(["eval", "--model", "bicubic", "--data", str(_hr_folder(tmp_path)), "--scale", "2"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "bicubic on Toy x2" and lines[-1].startswith("mean")


def test_cli_error_subprocess_has_no_traceback(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"definitely not a png")
    proc = _cli("eval", "--model", "bicubic", "--data", str(tmp_path), "--scale", "2")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")


def test_prepared_lr_folder_gives_the_same_numbers(tmp_path):
    hr_dir = _hr_folder(tmp_path)
    lr_dir = tmp_path / "Toy" / "LR_bicubic" / "X2"
    for path in sorted(hr_dir.iterdir()):
        hr = to_uint8(read_image(path)[0])
        hr = hr[:, : hr.shape[1] // 2 * 2, : hr.shape[2] // 2 * 2]
        write_image(lr_dir / f"{path.stem}x2.png", bicubic_lr(hr, 2).float() / 255)
    made = evaluate(bicubic_sr(2), hr_dir, 2, progress=False)
    given = evaluate(bicubic_sr(2), hr_dir, 2, lr_dir=lr_dir, progress=False)
    assert made.to_dict() == given.to_dict()
    (lr_dir / "im1x2.png").unlink()
    with pytest.raises(InputError, match="no LR image"):
        evaluate(bicubic_sr(2), hr_dir, 2, lr_dir=lr_dir, progress=False)


def test_bicubic_lr_rounds_half_to_even():
    # a constant image downsamples to itself; 0.5-offsets must round to even like np.round
    hr = torch.full((1, 8, 8), 7, dtype=torch.uint8)
    assert torch.equal(bicubic_lr(hr, 2), torch.full((1, 4, 4), 7, dtype=torch.uint8))
    assert to_uint8(torch.tensor([2.5, 3.5]) / 255).tolist() == [2, 4]


def test_bicubic_lr_checks_its_input():
    with pytest.raises(ArgumentError, match="uint8"):
        bicubic_lr(torch.zeros(1, 8, 8), 2)
    with pytest.raises(ArgumentError, match="multiple"):
        bicubic_lr(torch.zeros(1, 9, 8, dtype=torch.uint8), 2)


def test_library_errors_name_arguments_and_the_cli_names_flags(tmp_path, capsys):
    with pytest.raises(ArgumentError) as caught:
        evaluate(bicubic_sr(2), tmp_path / "missing", 2, progress=False)
    assert caught.value.argument == "hr_dir"
    assert main(["eval", "--model", "bicubic", "--data", str(tmp_path / "missing"), "--scale", "2"])
    assert capsys.readouterr().err.startswith("error: --data: ")


def test_library_errors(tmp_path):
    hr = _hr_folder(tmp_path)
    with pytest.raises(UsageError):
        evaluate(bicubic_sr(2), hr, 0, progress=False)
    with pytest.raises(UsageError, match="input folder"):
        evaluate(bicubic_sr(2), hr, 2, save_dir=hr, progress=False)
    with pytest.raises(InputError, match="shape"):
        evaluate(lambda x: x, hr, 2, progress=False)


@pytest.mark.parametrize(
    ("setup", "args", "code", "needle"),
    [
        ("empty", ["--scale", "2"], 2, "no images found"),
        ("broken", ["--scale", "2"], 1, "not a recognised image"),
        ("ok", ["--scale", "0"], 2, "--scale"),
        ("ok", ["--scale", "x"], 2, "invalid int"),
        ("ok", ["--scale", "2", "--model", "no-such-model"], None, "no-such-model"),
        ("ok", ["--scale", "2", "--device", "quantum"], 2, "--device"),
        ("missing", ["--scale", "2"], 2, "not a folder"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, setup, args, code, needle):
    folder = tmp_path / "data"
    if setup != "missing":
        folder.mkdir()
    if setup == "broken":
        (folder / "bad.png").write_bytes(b"definitely not a png")
    if setup == "ok":
        Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(folder / "a.png")
    model = [] if "--model" in args else ["--model", "bicubic"]
    returned = main(["eval", *model, "--data", str(folder), *args, "--no-progress"])
    assert returned == code if code is not None else returned in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert needle in err


def test_model_checkpoint_runs_through_eval(tmp_path, capsys):
    models = pytest.importorskip("contrast_sr.models")
    model = models.create_model(
        "contrast_light", 2, dim=12, depths=[1], num_heads=6, upsample_features=8
    )
    ckpt = models.save_model(model, tmp_path / "tiny.safetensors")
    hr = _hr_folder(tmp_path, n=1, size=(30, 26))
    code = main(
        [
            "eval",
            "--model",
            str(ckpt),
            "--data",
            str(hr),
            "--scale",
            "2",
            "--json",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == str(ckpt) and len(result["images"]) == 2  # gray + RGB
    assert all(np.isfinite(im["psnr_y"]) for im in result["images"])
    # a x2 checkpoint asked to evaluate x3 is refused with a one-line error
    assert main(["eval", "--model", str(ckpt), "--data", str(hr), "--scale", "3"]) != 0
    assert capsys.readouterr().err.startswith("error: ")
