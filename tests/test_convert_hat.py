"""`contrast-sr convert` without flags: architecture detected from the shapes (HAT-S, HAT, HAT-L
and the original Contrast checkpoints), `--set` overrides, no pickled code executed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from contrast_sr.cli import main
from contrast_sr.errors import ContrastError, InputError
from contrast_sr.models import create_model, load_model
from contrast_sr.models.detect import (
    detect_architecture,
    detect_config,
    model_signature,
    shape_signature,
)
from contrast_sr.models.original import convert_checkpoint
from tests.hat_reference import hat_forward, hat_state_dict

# official HAT configurations (embed_dim, depths, heads, window, compress, squeeze)
HAT_S = dict(dim=144, depths=[6] * 6, heads=6, ws=16, compress=24, squeeze=24)
HAT = dict(dim=180, depths=[6] * 6, heads=6, ws=16, compress=3, squeeze=30)
HAT_L = dict(dim=180, depths=[6] * 12, heads=6, ws=16, compress=3, squeeze=30)


def _save_basicsr(path: Path, state: dict) -> Path:
    """As BasicSR's save_network: the EMA weights under params_ema (here beside other params)."""
    other = {k: torch.zeros_like(v) for k, v in state.items()}
    torch.save({"params": other, "params_ema": state}, path)
    return path


def _double(state: dict) -> dict:
    return {k: v.double() if v.is_floating_point() else v for k, v in state.items()}


def _run_json(argv: list[str], capsys) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_hat_s_checkpoint_converts_without_flags_and_reproduces_hat(tmp_path, capsys):
    torch.manual_seed(0)
    state = hat_state_dict(**HAT_S, scale=4)
    src = _save_basicsr(tmp_path / "HAT-S_SRx4.pth", state)
    info = _run_json(["convert", str(src), str(tmp_path / "hat_s.safetensors")], capsys)
    assert info["variant"] is None and info["detected"] and info["scale"] == 4
    cfg = info["config"]
    expected = {
        "dim": 144, "depths": [6] * 6, "num_heads": 6, "window_size": 16, "overlap_ratio": 0.5,
        "mlp_ratio": 2.0, "block_pattern": ["attn"], "cab": True, "compress_ratio": 24,
        "squeeze_factor": 24, "ocab": True, "ocab_bias": "table", "ffn": "mlp",
        "final_norm": True, "upsampler": "pixelshuffle", "upsample_features": 64,
        "mean_norm": True, "img_range": 1.0, "resi_connection": "1conv",
    }  # fmt: skip
    assert {k: cfg[k] for k in expected} == expected
    assert {"mean_norm", "img_range", "leaky_relu", "conv_scale"} <= set(info["assumed"])
    # float64: 36 blocks of peaked random attention amplify float32 rounding to ~1e-3
    model = load_model(tmp_path / "hat_s.safetensors").double()
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        ours, theirs = model(x), hat_forward(_double(state), x, HAT_S["depths"], 6, 16, scale=4)
    assert ours.shape == (1, 3, 64, 64)
    assert (ours - theirs).abs().max() < 1e-8 * theirs.abs().max()


@pytest.mark.parametrize("scale", [2, 3])
def test_small_hat_converts_and_reproduces_hat_at_each_scale(tmp_path, scale):
    torch.manual_seed(scale)
    spec = dict(dim=60, depths=[2, 3], heads=6, ws=8, compress=3, squeeze=30)
    state = hat_state_dict(**spec, scale=scale, seed=scale)
    src = _save_basicsr(tmp_path / "hat.pth", state)
    result = convert_checkpoint(src, tmp_path / "hat.safetensors")
    assert result.detected is not None and result.model.scale == scale
    assert result.model.config.depths == (2, 3) and result.model.config.window_size == 8
    x = torch.rand(2, 3, 16, 24, dtype=torch.float64)
    with torch.no_grad():
        ours = load_model(tmp_path / "hat.safetensors").double()(x)
        theirs = hat_forward(_double(state), x, spec["depths"], 6, 8, scale=scale)
    assert (ours - theirs).abs().max() < 1e-8 * theirs.abs().max()


@pytest.mark.parametrize(("spec", "scale"), [(HAT, 4), (HAT, 2), (HAT_L, 3)])
def test_hat_and_hat_l_shapes_are_detected(spec, scale):
    state = hat_state_dict(**spec, scale=scale, device="meta")
    found = detect_architecture(state)
    assert found.variant is None and found.scale == scale
    cfg = found.config
    assert (cfg.dim, cfg.depths, cfg.num_heads, cfg.window_size) == (
        spec["dim"], tuple(spec["depths"]), spec["heads"], spec["ws"],
    )  # fmt: skip
    assert (cfg.compress_ratio, cfg.squeeze_factor) == (spec["compress"], spec["squeeze"])
    assert model_signature(cfg, scale) == shape_signature(state)


def test_set_overrides_and_their_errors(tmp_path, capsys):
    spec = dict(dim=60, depths=[2], heads=6, ws=8, compress=3, squeeze=30)
    src = _save_basicsr(tmp_path / "hat.pth", hat_state_dict(**spec, scale=2))
    argv = ["convert", str(src), str(tmp_path / "a.safetensors"), "--set", "mean_norm=false"]
    info = _run_json([*argv, "--set", "model.img_range=255"], capsys)
    assert info["config"]["mean_norm"] is False and info["config"]["img_range"] == 255.0
    assert "mean_norm" not in info["assumed"] and "img_range" not in info["assumed"]
    assert load_model(tmp_path / "a.safetensors").config.img_range == 255.0
    bad = ["convert", str(src), str(tmp_path / "b.safetensors"), "--set", "mean_nrm=false"]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "mean_nrm" in err and "did you mean mean_norm" in err
    # a registered variant plus overrides: HAT-light's layout with HAT's head
    wrong = ["convert", str(src), str(tmp_path / "c.safetensors"), "--variant", "hat_light"]
    assert main(wrong) == 1
    assert "omit --variant" in capsys.readouterr().err


def test_variant_overrides_fit_a_hat_checkpoint(tmp_path, capsys):
    spec = dict(dim=48, depths=[5, 5, 5], heads=6, ws=16, compress=3, squeeze=30)
    src = _save_basicsr(tmp_path / "hat.pth", hat_state_dict(**spec, scale=4))
    argv = ["convert", str(src), str(tmp_path / "d.safetensors"), "--variant", "hat_light"]
    sets = ["--set", "upsampler=pixelshuffle", "--set", "upsample_features=64"]
    info = _run_json([*argv, *sets, "--set", "mean_norm=true"], capsys)
    assert info["variant"] is None and info["config"]["upsampler"] == "pixelshuffle"


def test_pickled_code_in_a_checkpoint_is_never_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    state = hat_state_dict(dim=12, depths=[1], heads=2, ws=4, compress=3, squeeze=6, scale=2)
    path = tmp_path / "evil.pth"
    torch.save({"params_ema": state, "extra": Payload()}, path)
    with pytest.raises(InputError, match="cannot be read"):
        convert_checkpoint(path, tmp_path / "out.safetensors")
    assert not marker.exists()


def test_shapes_no_configuration_builds_are_refused():
    state = hat_state_dict(dim=12, depths=[1], heads=2, ws=4, compress=3, squeeze=6, scale=2)
    state["absolute_pos_embed"] = torch.zeros(1, 64, 12)  # HAT's ape=True: not supported here
    with pytest.raises(ContrastError, match="no configuration reproduces"):
        detect_architecture(state)
    with pytest.raises(ContrastError, match="not a Contrast or HAT"):
        detect_architecture({"weight": torch.zeros(3)})


# ---------------------------------------------------------------- registered / original


@pytest.mark.parametrize(
    ("name", "scale"),
    [
        ("baseline", 4), ("baseline_no_pe", 3), ("mamba", 2), ("mamba2", 4), ("hat_light", 4),
        ("contrast_light", 4), ("contrast_v1_m2_light", 4), ("contrast_v1_edge_light", 2),
        ("contrast_tiny", 4), ("contrast_s", 3), ("gated_convffn_light", 4),
        ("gated_convffn_no_gated_light", 4), ("baseline_v3_light", 4), ("baseline_v2", 4),
        ("baseline_v4_no_gcffn", 4), ("baseline_v4_no_norm_psd", 2),
    ],
)  # fmt: skip
def test_registered_variants_are_recognised_from_their_shapes(name, scale):
    with torch.device("meta"):
        state = create_model(name, scale).state_dict()
    config, found_scale, _ = detect_config(state)  # the shapes alone, no registry
    assert found_scale == scale and model_signature(config, scale) == shape_signature(state)
    found = detect_architecture(state)
    assert name in (found.variant, *found.also) and found.assumed == ()


def test_same_shapes_name_every_matching_variant():
    with torch.device("meta"):
        state = create_model("contrast_v1_clip_light", 4).state_dict()
    found = detect_architecture(state)  # clipped softmax is not in the weights
    assert (found.variant, found.also) == ("contrast_v1_light", ("contrast_v1_clip_light",))


KEY_LISTS = {
    "baseline": "baseline",
    "baseline_no_pe": "baseline_no_pe",
    "baseline_no_pe_no_cab": "baseline_no_pe_no_cab",
    "mamba_pure": "mamba",
    "hat_light": "hat_light",
    "contrast_final_light": "contrast_light",
    "gated_convffn_light": "gated_convffn_light",
    "gated_convffn_no_gated_light": "gated_convffn_no_gated_light",
    "baseline_v3_light": "baseline_v3_light",
}


@pytest.mark.parametrize("stem", sorted(KEY_LISTS))
def test_original_key_lists_detect_their_variant(spec_dir, stem):
    state = {}
    for line in (spec_dir / "reference" / f"keys_{stem}.txt").read_text().splitlines():
        key, shape = line.split("\t")
        state[key] = torch.empty(tuple(int(s) for s in shape.split(",")), device="meta")
    found = detect_architecture(state)
    assert found.variant == KEY_LISTS[stem] and found.scale == 4


@pytest.mark.parametrize(
    ("variant", "upstream", "ref_io"),
    [
        ("baseline", "upstream_light_baseline", "ref_io"),
        ("contrast_light", "upstream_contrast_final_light", "ref_io_contrast_final_light"),
    ],
)
def test_original_checkpoints_convert_without_flags(spec_dir, tmp_path, variant, upstream, ref_io):
    ref = spec_dir / "reference"
    out = tmp_path / f"{variant}.safetensors"
    result = convert_checkpoint(ref / f"{upstream}.safetensors", out)
    assert result.model.variant == variant and result.detected.variant == variant
    model = load_model(out)
    io = load_file(str(ref / f"{ref_io}.safetensors"))
    with torch.no_grad():
        assert (model(io["input"]) - io["output"]).abs().max().item() < 1e-5
