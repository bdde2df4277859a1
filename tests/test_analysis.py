"""LAM, diffusion index, feature norms, benchmark and comparison on tiny models."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from contrast_sr.analysis.bench import add_ratios, bench_model, count_flops, scan_flops
from contrast_sr.analysis.compare import compare_models, psnr_y
from contrast_sr.analysis.features import body_layers, feature_norms
from contrast_sr.analysis.figure import colormap
from contrast_sr.analysis.lam import gini, gradient_magnitude_target, local_attribution_map
from tests.conftest import cli_env
from tests.tiny_models import OnePixel, TinyScanSR, TinySR


def _lr(h=12, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g)


def test_gini_known_values():
    assert gini(torch.ones(10)) == pytest.approx(0.0, abs=1e-12)
    assert gini(torch.tensor([0.0, 0.0, 0.0, 1.0])) == pytest.approx(0.75)
    assert gini(torch.tensor([1.0, 3.0])) == pytest.approx(0.25)


def test_lam_map_shape_normalised_and_di_range():
    torch.manual_seed(0)
    lr = _lr(12, 32)
    res = local_attribution_map(TinySR().eval(), lr, (8, 6, 8), steps=12, batch=6)
    assert res.map.shape == lr.shape[-2:]
    assert (res.map >= 0).all()
    assert float(res.map.max()) == pytest.approx(1.0)
    assert 0.0 <= res.di <= 100.0
    # 3 groups of 2 blocks + 2 convs: 8 stacked 3x3 convs reach 8 LR pixels past the box.
    # The box covers LR columns 4..7 (and 8 through the target's finite difference).
    assert float(res.map[:, 17:].sum()) == 0.0 < float(res.map[:, 12:17].sum())


def test_lam_one_pixel_model_has_di_near_zero():
    lr = _lr()
    res = local_attribution_map(OnePixel(5, 9).eval(), lr, (4, 4, 16), steps=10)
    assert res.di < 1.0
    assert divmod(int(res.map.argmax()), lr.shape[-1]) == (5, 9)
    wider = local_attribution_map(TinySR().eval(), lr, (4, 4, 16), steps=10)
    assert wider.di > 5 * res.di


@pytest.mark.parametrize("path", ["linear", "blur"])
def test_lam_completeness(path):
    """Integrated gradients: attributions add up to F(lr) - F(start of the path)."""
    torch.manual_seed(1)
    model = TinySR(groups=1).eval()
    res = local_attribution_map(model, _lr(24, 24), (6, 4, 8), steps=50, path=path, batch=17)
    expected = res.target - res.target_baseline
    assert abs(expected) > 1e-3
    assert abs(float(res.attribution.sum()) - expected) < 0.03 * abs(expected)


def test_gradient_target_zero_on_flat_output():
    flat = torch.full((1, 3, 20, 20), 0.5)
    assert float(gradient_magnitude_target(flat, (2, 2, 8))) < 1e-3


def test_feature_norms_one_entry_per_layer():
    model = TinySR(groups=3, blocks=2).eval()
    lr = _lr(10, 14)
    groups = feature_norms(model, lr, "group")
    assert [g.name for g in groups] == ["layers.0", "layers.1", "layers.2"]
    blocks = feature_norms(model, lr, "block")
    assert len(blocks) == 6 and blocks[0].name == "layers.0.blocks.0"
    for layer in groups + blocks:
        assert layer.map.shape == (10, 14)
        assert layer.max >= layer.mean > 0
    assert len(body_layers(model, "block")) == 6


def test_feature_norms_channels_last_and_tokens():
    class Wrap(torch.nn.Module):
        def __init__(self, layout):
            super().__init__()
            self.layout = layout
            self.layers = torch.nn.ModuleList([torch.nn.Identity(), torch.nn.Identity()])

        def forward(self, x):
            f = torch.nn.functional.pad(x.repeat(1, 2, 1, 1), (0, 2, 0, 3))  # (1, 6, h+3, w+2)
            f = f.permute(0, 2, 3, 1) if self.layout != "first" else f
            if self.layout == "tokens":
                f = f.flatten(1, 2)
            for layer in self.layers:
                f = layer(f)
            return f

    lr = _lr(7, 9)
    want = lr.repeat(1, 2, 1, 1)[0].norm(dim=0)
    for layout in ("first", "last", "tokens"):
        (first, _) = feature_norms(Wrap(layout), lr)
        assert torch.allclose(first.map, want, atol=1e-6), layout
    # Ambiguous: 6 channels on a 3x4 input padded to 6x6 -> (6, 6, 6) either way.
    lr = _lr(3, 4)
    want = torch.nn.functional.pad(lr.repeat(1, 2, 1, 1), (0, 2, 0, 3))[0, :, :3, :4].norm(dim=0)
    for layout in ("first", "last"):
        (first, _) = feature_norms(Wrap(layout), lr)
        assert torch.allclose(first.map, want, atol=1e-6), layout


def test_bench_schema_and_flops():
    model = TinySR(c=8, groups=1, blocks=1, scale=2)
    res = bench_model("tiny", model, "infer", batch=2, size=8, warmup=1, repeat=2)
    d = res.to_dict()
    for key in ("model", "params", "flops", "time_s", "images_per_s", "output_mp_per_s"):
        assert key in d
    # 3 convs at 8x8: 2 * k*k * cin * cout * H * W FLOPs each, batch 2.
    convs = [(3, 8), (8, 8), (8, 12)]
    assert d["flops"] == 2 * sum(2 * 9 * a * b * 64 for a, b in convs)
    assert d["params"] == sum(p.numel() for p in model.parameters())
    assert d["images_per_s"] == pytest.approx(2 / d["time_s"])
    assert len(d["times_s"]) == 2 and d["time_s"] == min(d["times_s"])
    train = bench_model("tiny", model, "train", batch=1, size=8, warmup=1, repeat=1, flops=False)
    add_ratios([res, train])
    assert res.ratios["time_s"] == 1.0 and train.ratios["params"] == 1.0


def test_flop_count_includes_selective_scan():
    model = TinyScanSR(c=4).eval()
    x = _lr(6, 5)
    total, scan = count_flops(model, x)
    assert scan == scan_flops(1, 30, 4, 1, with_d=True)
    assert total > scan > 0


def test_psnr_and_compare_figure():
    hr = _lr(32, 32)
    assert psnr_y(hr, hr) == math.inf
    noisy = (hr + 0.01).clamp(0, 1)
    assert 35 < psnr_y(noisy, hr) < 45
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    fig, numbers = compare_models([("tiny", TinySR().eval())], hr, lr, (4, 4, 16), 2)
    assert [r["model"] for r in numbers["results"]] == ["bicubic", "tiny"]
    assert fig.width > fig.height > 0


def test_colormap_ends():
    rgb = colormap(np.array([0.0, 1.0, 2.0, -1.0]))
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 3)
    assert rgb[0].sum() < 20 and rgb[1].sum() > 600 and (rgb[2] == rgb[1]).all()


def _write_png(path, h=40, w=48):
    arr = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _cli(*args, capsys=None):
    """The command line in-process (fast), or as a subprocess when no capsys is given."""
    if capsys is None:
        return subprocess.run(
            [sys.executable, "-m", "contrast_sr", *args],
            capture_output=True,
            text=True,
            env=cli_env(),
        )
    from contrast_sr.cli import main

    capsys.readouterr()
    rc = main(list(args))
    out = capsys.readouterr()
    return _Result(rc, out.out, out.err)


def test_cli_lam_and_compare_with_bicubic(tmp_path, capsys):
    image = tmp_path / "hr.png"
    _write_png(image)
    out = tmp_path / "lam.png"
    proc = _cli(
        "lam",
        "--model",
        "bicubic",
        "--image",
        str(image),
        "--box",
        "16,12,8",
        "--steps",
        "4",
        "-o",
        str(out),
        "--json",
        capsys=capsys,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["lr_size"] == [10, 12]
    assert 0 <= result["results"][0]["di"] <= 100
    assert Image.open(out).size[0] > 0
    proc = _cli(
        "compare",
        "--models",
        "bicubic",
        "--image",
        str(image),
        "--box",
        "8,8,16",
        "-o",
        str(tmp_path / "cmp.png"),
        "--json",
        capsys=capsys,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["model"] == "bicubic"


def test_cli_bad_box_is_one_line_usage_error(tmp_path):
    image = tmp_path / "hr.png"
    _write_png(image)
    proc = _cli(
        "lam",
        "--model",
        "bicubic",
        "--image",
        str(image),
        "--box",
        "40,40,16",
        "-o",
        str(tmp_path / "x.png"),
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --box") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_cli_bench_json_schema(capsys):
    proc = _cli(
        "bench",
        "--models",
        "bicubic,bicubic",
        "--size",
        "8",
        "--repeat",
        "2",
        "--warmup",
        "0",
        "--device",
        "cpu",
        "--no-isolate",
        "--json",
        capsys=capsys,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {"mode", "batch", "size", "device", "precision", "results"} <= set(report)
    assert len(report["results"]) == 2
    row = report["results"][1]
    assert {
        "params",
        "flops",
        "time_s",
        "images_per_s",
        "output_mp_per_s",
        "peak_mem_bytes",
        "mem_kind",
        "ratios",
    } <= set(row)
    assert row["ratios"]["time_s"] > 0


@pytest.mark.parametrize("name", ["baseline", "contrast_light"])
def test_cli_features_json_one_entry_per_layer(tmp_path, capsys, name):
    """Registered light variants (untrained): groups, plus the final norm where there is one."""
    from contrast_sr.models import create_model

    model = create_model(name)
    has_norm = not isinstance(getattr(model, "norm", None), (type(None), torch.nn.Identity))
    image = tmp_path / "lr.png"
    _write_png(image, 12, 16)
    out = tmp_path / "feat.png"
    proc = _cli(
        "features",
        "--model",
        name,
        "--random-init",
        "--image",
        str(image),
        "-o",
        str(out),
        "--json",
        capsys=capsys,
    )
    assert proc.returncode == 0, proc.stderr
    layers = json.loads(proc.stdout)["layers"]
    names = [f"layers.{i}" for i in range(len(model.layers))] + (["norm"] if has_norm else [])
    assert [layer["name"] for layer in layers] == names
    assert all(layer["size"] == [12, 16] and layer["max"] >= layer["mean"] > 0 for layer in layers)
    assert out.is_file()


def test_registered_name_without_weights_is_a_typed_error():
    from contrast_sr.analysis.common import load_analysis_model
    from contrast_sr.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError) as caught:
        load_analysis_model("hat_light", 4)
    assert caught.value.model == "hat_light" and caught.value.scale == 4
    untrained = load_analysis_model("hat_light", 4, random_init=True)
    assert untrained.scale == 4


def test_cli_registered_name_without_weights_suggests_random_init(tmp_path):
    image = tmp_path / "hr.png"
    _write_png(image)
    proc = _cli(
        "lam",
        "--model",
        "hat_light",
        "--image",
        str(image),
        "--box",
        "0,0",
        "-o",
        str(tmp_path / "x.png"),
    )
    assert proc.returncode == 1
    assert "--random-init" in proc.stderr and proc.stderr.count("\n") == 1
