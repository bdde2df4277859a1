"""Typed model config: validation naming the field, round trips, block kinds, old checkpoints."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from contrast_sr.errors import ArgumentError, ConfigError, InputError, UnknownModelError
from contrast_sr.models import (
    BLOCK_KINDS,
    ContrastConfig,
    create_model,
    load_model,
    register_block,
    save_model,
    unwrap_state_dict,
)
from contrast_sr.models.blocks.block import Block
from contrast_sr.models.blocks.ffn import Mlp
from contrast_sr.weights import bundled_weights
from tests.conftest import cli_env

TINY = {"dim": 12, "depths": [2], "num_heads": 2, "window_size": 4, "upsample_features": 8}


def test_config_round_trips_through_json_and_is_frozen():
    cfg = create_model("contrast_v1_clip_light", 3, **TINY).config
    assert cfg.depths == (2,) and cfg.block_pattern == ("ss2d",) * 5 + ("attn",)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert ContrastConfig.from_dict(data) == cfg and hash(ContrastConfig.from_dict(data)) == hash(
        cfg
    )
    assert data["depths"] == [2]  # plain JSON: lists
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.dim = 3  # type: ignore[misc]
    assert cfg.replace(dim=16).dim == 16 and cfg.dim == 12
    assert ContrastConfig(mlp_ratio=2).mlp_ratio == 2.0 and ContrastConfig() == ContrastConfig()


def test_misspelt_field_fails_with_one_line_naming_it():
    code = "import contrast_sr; contrast_sr.create_model('contrast_light', depht=[6])"
    out = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True
    )
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last == (
        "contrast_sr.errors.ConfigError: model config field 'depht': unknown (did you mean depths?)"
    )
    with pytest.raises(ConfigError) as info:
        ContrastConfig().replace(windw_size=8)
    assert info.value.field == "windw_size" and "window_size" in info.value.why


@pytest.mark.parametrize(
    ("fields", "field", "why"),
    [
        ({"dim": "48"}, "dim", "expected an integer"),
        ({"dim": 0}, "dim", ">= 1"),
        ({"depths": [6, 0]}, "depths", ">= 1 block"),
        ({"depths": "66"}, "depths", "expected a list of integers"),
        ({"cab": 1}, "cab", "expected true or false"),
        ({"mlp_ratio": -1}, "mlp_ratio", "positive"),
        ({"ffn": "sgnf"}, "ffn", "did you mean 'sgfn'"),
        ({"dw_padding": "refl"}, "dw_padding", "choose from zeros, reflect"),
        ({"upsampler": "pixelshufle"}, "upsampler", "did you mean 'pixelshuffle'"),
        ({"ssm_dt_rank": "x"}, "ssm_dt_rank", "an integer or 'auto'"),
        ({"block_pattern": ["ss2d", "atn"]}, "block_pattern", "did you mean 'attn'"),
        ({"block_pattern": []}, "block_pattern", "at least one"),
        ({"num_heads": 5}, "num_heads", "does not divide dim 48"),
        ({"window_size": 6}, "overlap_ratio", "must be even"),
        ({"upsampler": "pixelshuffle_v2", "dim": 42, "num_heads": 6}, "dim", "multiple of 4"),
    ],
)
def test_invalid_values_name_the_field(fields, field, why):
    with pytest.raises(ConfigError) as info:
        ContrastConfig.from_dict(fields)
    assert info.value.field == field and why in info.value.why
    assert info.value.message.startswith(f"model config field '{field}': ")


def test_library_errors_are_typed():
    with pytest.raises(UnknownModelError) as unknown:
        create_model("contrast_lite")
    assert unknown.value.name == "contrast_lite" and "contrast_light" in unknown.value.choices
    with pytest.raises(ArgumentError) as scale:
        create_model("baseline_v2", 2)
    assert scale.value.argument == "scale"
    with pytest.raises(ArgumentError) as config:
        from contrast_sr.models import ContrastSR

        ContrastSR({"dim": 12})  # type: ignore[arg-type]
    assert config.value.argument == "config"
    with pytest.raises(TypeError):
        Mlp(4, 8, dw_padding="zeros")  # no argument is swallowed


def test_derived_facts():
    cfg = ContrastConfig.from_dict
    assert (
        not cfg({"ocab": False}).uses_windows and not cfg({"ocab": False, "cab": True}).uses_windows
    )
    assert cfg({}).uses_windows  # OCAB
    assert cfg({"ocab": False, "block_pattern": ["ss2d", "attn"]}).uses_windows
    assert (
        create_model("mamba").pad_multiple == 1 and create_model("contrast_tiny").pad_multiple == 8
    )


def test_register_block_is_one_call():
    class Scale(torch.nn.Module):
        def __init__(self, dim: int, factor: float) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.full((dim,), factor))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.weight

    with pytest.raises(ConfigError, match="block_pattern"):
        create_model("mamba", block_pattern=["scale"], **TINY)
    register_block("scale")(lambda cfg, index: Scale(cfg.dim, cfg.mlp_ratio + index))
    try:
        model = create_model("mamba", block_pattern=["ss2d", "scale"], **TINY).eval()
        blocks = model.layers[0].residual_group.blocks
        assert [b.kind for b in blocks] == ["ss2d", "scale"] and isinstance(blocks[1], Block)
        assert torch.equal(blocks[1].mixer.weight, torch.full((12,), 2.0))
        assert model(torch.rand(1, 3, 5, 7)).shape == (1, 3, 20, 28)
        assert not model.config.uses_windows and model.pad_multiple == 1
    finally:
        del BLOCK_KINDS["scale"]


def _with_original_mixer_keys(model) -> dict[str, torch.Tensor]:
    """The model's state dict under the pre-ContrastConfig names (``mamba.``/``attn.``)."""
    state = dict(model.state_dict())
    for name, module in model.named_modules():
        if isinstance(module, Block):
            old = f"{name}.{BLOCK_KINDS[module.kind].original_key}."
            for key in [k for k in state if k.startswith(f"{name}.mixer.")]:
                state[old + key[len(f"{name}.mixer.") :]] = state.pop(key)
    return state


def test_older_project_checkpoints_load(tmp_path):
    torch.manual_seed(0)
    model = create_model("contrast_v1_light", 2, **{**TINY, "block_pattern": ["ss2d", "attn"]})
    model.eval()
    old = tmp_path / "old.safetensors"
    fields = {**model.config.to_dict(), "scale": 2}  # older files kept the scale in the config
    meta = {"format": "contrast-sr", "variant": "contrast_v1_light", "scale": "2"}
    state = _with_original_mixer_keys(model)
    assert any(".mamba." in k for k in state) and any(".attn." in k for k in state)
    save_file(state, str(old), metadata={**meta, "config": json.dumps(fields)})
    loaded = load_model(old)
    assert loaded.config == model.config and loaded.scale == 2
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    # a new checkpoint stores the config without the scale, and the mixers as `mixer`
    new = save_model(model, tmp_path / "new.safetensors")
    assert any(".mixer." in k for k in load_file(str(new)))
    assert load_model(new).config == model.config
    # the bundled default model is such an older file
    bundled = bundled_weights("contrast_tiny", 4)
    assert any(".mamba." in k for k in load_file(str(bundled)))
    assert load_model(bundled).config == create_model("contrast_tiny").config


def test_bad_checkpoint_config_is_an_input_error(tmp_path):
    path = tmp_path / "bad.safetensors"
    config = json.dumps({"dim": 12, "num_heads": 5})
    save_file(
        {"a": torch.zeros(1)}, str(path), metadata={"format": "contrast-sr", "config": config}
    )
    with pytest.raises(InputError, match="bad configuration: model config field 'num_heads'"):
        load_model(path)


def test_unwrap_state_dict_priority():
    a, b, c = ({"w": torch.full((1,), float(i))} for i in range(3))
    assert unwrap_state_dict({"ema": a, "model": b})["w"] == 0  # project training checkpoint
    assert unwrap_state_dict({"params_ema": a, "params": b})["w"] == 0  # BasicSR
    assert unwrap_state_dict({"params": b, "state_dict": c})["w"] == 1
    assert unwrap_state_dict({"state_dict": c})["w"] == 2
    assert list(unwrap_state_dict({"module.w": torch.zeros(1)})) == ["w"]  # DDP prefix
    with pytest.raises(InputError, match="no state dict"):
        unwrap_state_dict({"epoch": 3})


def test_group_res_scale_scales_the_group_residual():
    """DRCT-style scaling: a group returns x + s * conv(body(x)); 1.0 is the plain residual."""
    from torch import nn

    from contrast_sr.models.contrast import BlockSequence, ResidualGroup

    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3, padding=1)
    x = torch.randn(1, 5, 6, 4)  # (B, H, W, C)
    y = conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    scaled = ResidualGroup(BlockSequence([]), conv, res_scale=0.2)
    torch.testing.assert_close(scaled(x), x + 0.2 * y)
    torch.testing.assert_close(ResidualGroup(BlockSequence([]), conv)(x), x + y)
    with pytest.raises(ConfigError, match="group_res_scale"):
        ContrastConfig(group_res_scale=0.0)
