"""Model family: parameter counts, reference outputs, converter, odd sizes, attention, edge conv."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from contrast_sr.errors import ConfigError, ContrastError, InputError, UnknownModelError, UsageError
from contrast_sr.models import (
    count_parameters,
    create_model,
    list_models,
    load_model,
    rename_original_keys,
    resolve_model,
    save_model,
)
from contrast_sr.models.blocks.attention import clipped_softmax, window_attention
from contrast_sr.models.blocks.edge_conv import EdgeConv2d, ring_index
from contrast_sr.models.blocks.ocab import OCAB
from contrast_sr.models.blocks.window_attention import WindowAttention
from contrast_sr.models.checkpoint import checkpoint_metadata
from contrast_sr.models.contrast import pad_reflect
from contrast_sr.models.original import convert_checkpoint, convert_state_dict, infer_scale
from tests.conftest import cli_env

COUNTS = {
    ("baseline", 4): 745_572,
    ("baseline_no_pe", 4): 718_194,
    ("baseline_no_pe_no_cab", 4): 764_202,
    ("mamba", 4): 759_108,
    ("hat_light", 4): 771_099,
    ("contrast_light", 4): 430_710,
    ("contrast_s", 2): 7_402_295,
    ("contrast_s", 3): 7_586_935,
    ("contrast_s", 4): 7_550_007,
    ("contrast", 2): 13_816_775,
    ("contrast", 3): 14_330_425,
    ("contrast", 4): 14_293_497,
    ("contrast_l", 4): 147_101_067,
    ("gated_convffn_light", 4): 960_654,
    ("gated_convffn_no_gated_light", 4): 794_442,
    ("baseline_v3_light", 4): 635_904,
    ("baseline_v2", 4): 19_073_892,
    ("baseline_v4", 4): 19_470_279,
    ("baseline_v4_norm", 4): 6_853_179,
    ("baseline_v4_no_norm", 4): 6_852_939,
    ("baseline_v4_no_norm_no_leaky_relu", 4): 6_852_939,
    ("baseline_v4_no_norm_psd", 4): 6_538_488,
    ("baseline_v4_no_gcffn", 4): 6_568_245,
}

# light variants whose original key lists are in the spec: file stem -> registered name
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

# a tiny configuration exercising every block kind, OCAB with dynamic bias and SGFN
TINY = {
    "dim": 12,
    "depths": [3],
    "num_heads": 2,
    "window_size": 4,
    "block_pattern": ["ss2d", "attn"],
    "ssm_d_state": 1,
}


@pytest.mark.parametrize(("name", "scale"), sorted(COUNTS))
def test_parameter_counts(name, scale):
    with torch.device("meta"):
        model = create_model(name, scale)
    assert count_parameters(model) == COUNTS[(name, scale)]
    assert model.scale == scale and checkpoint_metadata(model)["scale"] == str(scale)
    json.dumps(model.config.to_dict())  # JSON-able


def test_registry_lists_every_variant_and_rejects_unknown():
    names = list_models()
    assert {n for n, _ in COUNTS} <= set(names)
    assert "contrast_v1_light" in names
    with pytest.raises(UnknownModelError, match="unknown model"):
        create_model("no_such_model")
    with pytest.raises(ConfigError, match="model config field 'not_an_option': unknown") as info:
        create_model("contrast_light", not_an_option=1)
    assert info.value.field == "not_an_option"
    with pytest.raises(UsageError, match="scale 2"):
        create_model("baseline_v2", 2)


def test_mamba_attention_ratio_is_one_setting():
    with torch.device("meta"):
        model = create_model("contrast_light", block_pattern=["ss2d"] * 2 + ["attn"])
    kinds = [b.kind for b in model.layers[0].residual_group.blocks]
    assert kinds == ["ss2d", "ss2d", "attn"] * 2
    shifts = [b.mixer.shift for b in model.layers[0].residual_group.blocks if b.kind == "attn"]
    assert shifts == [0, 8]  # every second attention block is shifted by ws/2


@pytest.mark.parametrize(
    ("variant", "upstream", "ref_io"),
    [
        ("baseline", "upstream_light_baseline", "ref_io"),
        ("contrast_light", "upstream_contrast_final_light", "ref_io_contrast_final_light"),
    ],
)
def test_original_checkpoints_reproduce_reference_outputs(
    spec_dir, tmp_path, variant, upstream, ref_io
):
    ref = spec_dir / "reference"
    out = tmp_path / f"{variant}.safetensors"
    convert_checkpoint(ref / f"{upstream}.safetensors", out, variant)
    model = load_model(out)
    assert model.variant == variant and model.scale == 4
    io = load_file(str(ref / f"{ref_io}.safetensors"))
    with torch.no_grad():
        y = model(io["input"])
    assert y.shape == io["output"].shape
    assert (y - io["output"]).abs().max().item() < 1e-5


def _random_state_from_keys(path, model):
    """Random tensors with the listed shapes; derived buffers take the model's true values."""
    from contrast_sr.models.original import _expected_buffer

    state = {}
    gen = torch.Generator().manual_seed(0)
    for line in path.read_text().splitlines():
        key, shape = line.split("\t")
        shape = tuple(int(s) for s in shape.split(","))
        expected = _expected_buffer(model, key)
        state[key] = expected if expected is not None else torch.randn(shape, generator=gen)
        assert tuple(state[key].shape) == shape
    return state


@pytest.mark.parametrize("stem", sorted(KEY_LISTS))
def test_converter_maps_every_light_key_list(spec_dir, stem):
    model = create_model(KEY_LISTS[stem], 4)
    state = _random_state_from_keys(spec_dir / "reference" / f"keys_{stem}.txt", model)
    assert infer_scale(state) == 4
    converted = convert_state_dict(state, model)
    model.load_state_dict(converted, strict=True)
    original = rename_original_keys(state)  # the mixers' original names -> `mixer`
    for key, value in model.state_dict().items():
        assert torch.equal(value, original[key])


def test_converter_is_strict(spec_dir):
    model = create_model("baseline_no_pe", 4)
    state = _random_state_from_keys(spec_dir / "reference" / "keys_baseline_no_pe.txt", model)
    with pytest.raises(ContrastError, match="shape"):
        convert_state_dict(state, create_model("baseline_no_pe_no_cab", 4))
    extra = {**state, "layers.0.extra.weight": torch.zeros(1)}
    with pytest.raises(ContrastError, match="lacks"):
        convert_state_dict(extra, model)
    missing = dict(state)
    del missing["norm.weight"]
    with pytest.raises(ContrastError, match="lacks weights the model needs"):
        convert_state_dict(missing, model)
    bad_buffer = {**state, "relative_position_index_OCA": torch.zeros(256, 576, dtype=torch.long)}
    with pytest.raises(ContrastError, match="buffer"):
        convert_state_dict(bad_buffer, model)


def test_convert_reads_pth_with_params_ema_and_never_overwrites_input(spec_dir, tmp_path):
    state = load_file(str(spec_dir / "reference" / "upstream_light_baseline.safetensors"))
    pth = tmp_path / "orig.pth"
    torch.save({"params_ema": state, "params": {}}, pth)
    out = tmp_path / "conv.safetensors"
    model = convert_checkpoint(pth, out, "baseline", 4).model
    assert torch.equal(
        load_model(out).state_dict()["conv_first.weight"], state["conv_first.weight"]
    )
    assert model.scale == 4
    same = tmp_path / "orig.safetensors"
    save_file(state, str(same))
    before = same.read_bytes()
    with pytest.raises(UsageError, match="input"):
        convert_checkpoint(same, same, "baseline")
    assert same.read_bytes() == before
    with pytest.raises(ContrastError, match="x4"):
        convert_checkpoint(pth, tmp_path / "x2.safetensors", "baseline", 2)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(
    ("variant", "extra"),
    [
        ("contrast_light", {}),
        ("hat_light", {"block_pattern": ["attn"], "cab": True, "squeeze_factor": 4}),
        ("contrast_s", {"upsample_features": 8}),
        ("mamba", {}),
    ],
)
def test_any_input_size(variant, extra, scale):
    torch.manual_seed(0)
    cfg = {**TINY, **extra}
    if variant == "mamba":
        cfg["block_pattern"] = ["ss2d"]
    model = create_model(variant, scale, **cfg).eval()
    for h, w in [(1, 1), (17, 33), (5, 2)]:
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            y = model(x)
        assert y.shape == (1, 3, h * scale, w * scale)
        assert torch.isfinite(y).all()


def test_pad_reflect_any_size():
    for h, w in [(1, 1), (1, 7), (3, 2), (16, 16)]:
        x = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
        y = pad_reflect(x, 16)
        assert y.shape[-2] % 16 == 0 and y.shape[-1] % 16 == 0
        assert torch.equal(y[..., :h, :w], x)
    x = torch.arange(5.0).view(1, 1, 1, 5)
    assert pad_reflect(x, 8)[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]


def test_sdpa_equals_explicit_attention():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 12)
    for shift in (0, 2):
        attn = WindowAttention(12, 3, 4, shift=shift)
        torch.nn.init.normal_(attn.relative_position_bias_table, std=1.0)
        ref = attn(x)
        attn.impl = "explicit"
        assert torch.allclose(attn(x), ref, atol=1e-5)
    for bias in ("table", "dynamic", "none"):
        ocab = OCAB(12, 3, 4, bias=bias, ffn="sgfn")
        ref = ocab(x)
        ocab.impl = "explicit"
        assert torch.allclose(ocab(x), ref, atol=1e-5)
    # the explicit path is the textbook formula, also when chunked over windows
    q, k, v = (torch.randn(2, 20, 3, 16, 4) for _ in range(3))
    bias = torch.randn(20, 3, 16, 16)
    manual = torch.softmax(q @ k.transpose(-2, -1) / 2.0 + bias, dim=-1) @ v
    assert torch.allclose(window_attention(q, k, v, bias, impl="sdpa"), manual, atol=1e-5)
    assert torch.allclose(
        window_attention(q, k, v, bias, impl="explicit", chunk=3), manual, atol=1e-5
    )


def test_clipped_softmax_matches_definition():
    torch.manual_seed(0)
    logits = torch.randn(4, 7, 30) * 3
    zeta, gamma = -0.003, 1.003
    p = clipped_softmax(logits, zeta, gamma)
    soft = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
    expected = torch.minimum(
        torch.maximum(soft * (gamma - zeta) + zeta, torch.tensor(0.0)), torch.tensor(1.0)
    )
    assert torch.allclose(p, expected, atol=1e-7)
    assert (p == 0).any() and p.min() >= 0 and p.max() <= 1
    q, k, v = (torch.randn(1, 5, 2, 9, 4) for _ in range(3))
    out = window_attention(q, k, v, None, clip=(zeta, gamma), chunk=2)
    manual = clipped_softmax(q @ k.transpose(-2, -1) / 2.0, zeta, gamma) @ v
    assert torch.allclose(out, manual, atol=1e-6)
    model = create_model("contrast_v1_clip_light", 4, **TINY)
    assert model.layers[0].residual_group.blocks[1].mixer.clip == (zeta, gamma)


@pytest.mark.parametrize("kernel", [3, 5])
def test_edge_conv_is_plain_conv_at_init_and_only_changes_border(kernel):
    torch.manual_seed(0)
    edge = EdgeConv2d(4, 6, kernel)
    plain = torch.nn.Conv2d(4, 6, kernel, 1, kernel // 2)
    plain.load_state_dict({"weight": edge.weight, "bias": edge.bias})
    x = torch.randn(2, 4, 9, 11)
    assert torch.equal(edge(x), plain(x))
    with torch.no_grad():
        edge.edge_weight.normal_()
        edge.edge_bias.normal_()
    changed = (edge(x) - plain(x)).abs().amax(dim=(0, 1)) > 1e-6
    rings = ring_index(9, 11, kernel // 2)
    assert torch.equal(changed, rings > 0)  # every border pixel changes, no interior one
    # symmetric rings: with the main conv zeroed, the output is the correction alone and
    # commutes with flips (the original sketch's rings were lopsided for ring > 1)
    with torch.no_grad():
        edge.weight.zero_()
        edge.bias.zero_()
    assert torch.allclose(edge(x.flip(-1, -2)), edge(x).flip(-1, -2), atol=1e-6)
    with pytest.raises(ValueError):
        EdgeConv2d(4, 6, 3, stride=2)


def test_edge_conv_variant_starts_as_plain_model():
    torch.manual_seed(0)
    edge = create_model("contrast_v1_edge_light", 2, **TINY).eval()
    plain = create_model("contrast_v1_light", 2, **{**TINY, "dw_padding": "reflect"}).eval()
    plain.load_state_dict({k: v for k, v in edge.state_dict().items() if "edge_" not in k})
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(edge(x), plain(x), atol=1e-6)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("contrast_v1_light", 3, **TINY).eval()
    path = save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(path)
    assert loaded.config == model.config and loaded.variant == "contrast_v1_light"
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert resolve_model(str(path), 3).scale == 3
    with pytest.raises(ContrastError, match="x3"):
        resolve_model(str(path), 4)
    with pytest.raises(ContrastError, match="no bundled weights"):
        resolve_model("contrast_l", 4)
    with pytest.raises(InputError):
        resolve_model(str(tmp_path / "missing.safetensors"))
    foreign = tmp_path / "foreign.safetensors"
    save_file({"a": torch.zeros(1)}, str(foreign))
    with pytest.raises(InputError, match="convert"):
        load_model(foreign)


def test_training_step_gives_gradients_everywhere():
    torch.manual_seed(0)
    model = create_model("contrast_v1_edge_light", 2, **TINY)
    x = torch.rand(2, 3, 8, 8)
    loss = (model(x) - torch.rand(2, 3, 16, 16)).abs().mean()
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad


def test_cli_models_json_and_convert_errors(spec_dir, tmp_path, capsys):
    from contrast_sr.cli import main

    assert main(["models", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    params = {m["name"]: m["params"] for m in info["models"]}
    assert params["baseline"] == 745_572 and params["hat_light"] == 771_099
    src = spec_dir / "reference" / "upstream_light_baseline.safetensors"
    assert (
        main(["convert", str(src), str(tmp_path / "a.safetensors"), "--variant", "hat_light"]) == 1
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert main(["convert", str(src), str(tmp_path / "b.safetensors"), "--variant", "nope"]) == 2
    assert (
        main(
            [
                "convert",
                str(src),
                str(tmp_path / "c.safetensors"),
                "--variant",
                "baseline",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["params"] == 745_572


def test_import_contrast_sr_stays_light():
    code = (
        "import sys, contrast_sr; assert 'torch' not in sys.modules; "
        "print(callable(contrast_sr.create_model))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"


def test_ss2d_matches_per_direction_reference():
    """SS2D against a loop over the four scan orders with the sequential reference scan."""
    from contrast_sr.models.blocks.ss2d import SS2D
    from contrast_sr.ops.scan.reference import selective_scan_ref

    torch.manual_seed(0)
    m = SS2D(8).double()
    with torch.no_grad():
        m.A_logs.normal_(0, 0.5)
        m.Ds.normal_()
    b, h, w, c = 2, 3, 5, 8
    x = torch.randn(b, h, w, c, dtype=torch.float64)
    z = m.act(m.conv2d(m.in_proj(x).permute(0, 3, 1, 2)))  # (B, C, H, W)
    row = torch.arange(h * w)
    col = torch.arange(h * w).view(h, w).t().reshape(-1)
    orders = [row, col, row.flip(0), col.flip(0)]
    merged = torch.zeros(b, c, h * w, dtype=torch.float64)
    for k, order in enumerate(orders):
        u = z.flatten(2)[:, :, order]  # (B, C, L)
        proj = torch.einsum("bcl,rc->brl", u, m.x_proj_weight[k])
        dt, bs, cs = proj.split([m.dt_rank, 1, 1], dim=1)
        delta = torch.einsum("brl,cr->bcl", dt, m.dt_projs_weight[k])
        rows = slice(k * c, (k + 1) * c)
        y = selective_scan_ref(
            u, delta, -torch.exp(m.A_logs[rows]), bs[:, None], cs[:, None], m.Ds[rows],
            delta_bias=m.dt_projs_bias[k], delta_softplus=True,
        )  # fmt: skip
        merged[:, :, order] += y
    expected = m.out_proj(m.out_norm(merged.transpose(1, 2).reshape(b, h, w, c)))
    assert torch.allclose(m(x), expected, atol=1e-10)


def test_resolve_bundled_weights_and_wrapped_save(tmp_path, monkeypatch):
    import contrast_sr.weights

    torch.manual_seed(0)
    model = create_model("contrast_light", 2, **TINY).eval()
    monkeypatch.setattr(contrast_sr.weights, "WEIGHTS_DIR", tmp_path)
    save_model(torch.nn.DataParallel(model), tmp_path / "contrast_light_x2.safetensors")
    keys = load_file(str(tmp_path / "contrast_light_x2.safetensors")).keys()
    assert not any(k.startswith("module.") for k in keys)
    loaded = resolve_model("contrast_light", 2)
    x = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(ContrastError, match="no bundled weights for x3"):
        resolve_model("contrast_light", 3)


@pytest.mark.parametrize("variant", ["contrast_v1_m2_light", "contrast_tiny", "baseline"])
def test_blocks_pass_their_skips_to_the_last_layer_exactly(variant):
    """Every built-in mixer and FFN adds the block's skip itself (``residual``): the block's
    output is ``x + mixer(n)`` then ``y + ffn(norm2(y))`` bit for bit, at inference (fused CPU
    paths) and with gradients."""
    from contrast_sr.models.blocks.block import Block

    torch.manual_seed(0)
    model = create_model(variant, scale=2, dim=32, num_heads=4, depths=(6,), window_size=8)
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    assert {b.kind for b in blocks} >= ({"attn", "ss2d_m2"} if "m2" in variant else {"ss2d"})
    x = torch.randn(1, 72, 72, 32)  # 5184 tokens: above the fused layers' minimum
    for block in blocks:
        assert block.mixer_adds_residual

        def formula(x, block=block):
            y = x + block.mixer(block.norm1(x))
            if block.conv_block is not None:
                cab = block.conv_block(block.norm1(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
                y = y + block.conv_scale * cab
            return y + block.mlp(block.norm2(y))

        with torch.no_grad():
            assert torch.equal(block(x), formula(x))
        xg = x.clone().requires_grad_()
        assert torch.equal(block(xg), formula(xg))
