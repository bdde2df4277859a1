"""contrast_sr.integrations.spandrel against the real spandrel package (skipped without it)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tests.hat_reference import hat_state_dict, rpi_oca, rpi_sa
from tests.spandrel_env import import_spandrel

spandrel = import_spandrel()

from contrast_sr.errors import ContrastError  # noqa: E402
from contrast_sr.integrations import spandrel as contrast_spandrel  # noqa: E402
from contrast_sr.models import VARIANTS, create_model, load_model, save_model  # noqa: E402
from contrast_sr.ops import scan_backend  # noqa: E402
from contrast_sr.weights import bundled_weights  # noqa: E402

REGISTERED_BY_IMPORT = contrast_spandrel.ARCH_ID in spandrel.MAIN_REGISTRY


@pytest.fixture(autouse=True)
def _torch_scan():
    with scan_backend("torch"):  # no numba compile: both sides run the same scan
        yield


def _tiny(scale: int = 3, **overrides) -> torch.nn.Module:
    """contrast_tiny's layout (SS2D blocks, OCAB, GCFFN), narrower and shallower."""
    torch.manual_seed(0)
    return create_model("contrast_tiny", scale, dim=16, depths=[1, 1], **overrides).eval()


def _first_claim(registry, state) -> str:
    for support in registry.architectures("detection"):
        if support.detect(state):
            return support.architecture.id
    return "none"


def test_register_is_explicit_and_idempotent():
    assert not REGISTERED_BY_IMPORT  # importing the module left spandrel's registry alone
    contrast_spandrel.register()
    assert contrast_spandrel.ARCH_ID in spandrel.MAIN_REGISTRY
    assert contrast_spandrel.register() == []  # a second call adds nothing
    with pytest.raises(spandrel.DuplicateArchitectureError):
        contrast_spandrel.register(ignore_duplicates=False)


def test_project_checkpoint_loads_with_model_loader(tmp_path):
    torch.manual_seed(0)
    model = create_model("contrast_tiny", 3).eval()  # the bundled models' architecture
    path = save_model(model, tmp_path / "tiny_x3.safetensors")
    contrast_spandrel.register()
    desc = spandrel.ModelLoader().load_from_file(path)
    assert isinstance(desc, spandrel.ImageModelDescriptor)
    assert desc.architecture.id == "ContrastSR" and desc.purpose == "SR"
    assert (desc.scale, desc.input_channels, desc.output_channels) == (3, 3, 3)
    assert desc.model.config == model.config
    assert desc.size_requirements.none and desc.tiling == spandrel.ModelTiling.SUPPORTED
    assert not desc.supports_half and desc.supports_bfloat16  # OCAB overflows float16
    x = torch.rand(1, 3, 5, 7)  # not a multiple of the window: the model pads itself
    with torch.no_grad():
        expected = model(x).clamp(0, 1)
    out = desc(x)
    assert out.shape == (1, 3, 15, 21)
    assert torch.allclose(out, expected, atol=1e-6)
    bf16 = desc.bfloat16()(x.bfloat16())
    assert bf16.dtype == torch.bfloat16 and (bf16.float() - expected).abs().max() < 0.05
    with pytest.raises(spandrel.UnsupportedDtypeError):
        desc.half()


def test_bundled_default_model_loads_as_itself():
    path = bundled_weights("contrast_tiny", 4)  # trained; an older file: mixers named mamba.
    contrast_spandrel.register()
    desc = spandrel.ModelLoader().load_from_file(path)
    model = load_model(path)
    assert desc.model.variant == "contrast_tiny" and desc.model.config == model.config
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.equal(desc(x), model(x).clamp(0, 1))


def _original_names(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict as the research code stores it: SS2D mixers named ``mamba``, plus
    the relative-position index buffers HAT's key check looks for."""
    state = {k.replace(".mixer.", ".mamba."): v for k, v in model.state_dict().items()}
    ws, ows = model.config.window_size, model.config.overlap_window_size
    index = {
        "relative_position_index_SA": rpi_sa(ws),
        "relative_position_index_OCA": rpi_oca(ws, ows),
    }
    return index | state


def test_original_hybrid_with_all_of_hats_keys_is_contrasts(tmp_path):
    # CAB, table-bias OCAB, pixelshuffle head, index buffers: HAT's detection keys, SS2D mixers
    model = _tiny(2, cab=True, squeeze_factor=8, ocab_bias="table", upsampler="pixelshuffle")
    state = _original_names(model)
    contrast_spandrel.register()
    assert spandrel.MAIN_REGISTRY["HAT"].detect(state)  # HAT's check alone would claim it
    assert _first_claim(spandrel.MAIN_REGISTRY, state) == "ContrastSR"
    path = tmp_path / "net_g_latest.pth"
    torch.save({"params_ema": state}, path)  # BasicSR's container, no metadata
    desc = spandrel.ModelLoader().load_from_file(path)
    assert desc.architecture.id == "ContrastSR" and desc.scale == 2
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(desc(x), model(x).clamp(0, 1), atol=1e-6)


def test_original_research_checkpoint_loads_and_reproduces_its_output(spec_dir):
    ref = spec_dir / "reference"  # the research code's light baseline and its recorded output
    contrast_spandrel.register()
    desc = spandrel.ModelLoader().load_from_file(ref / "upstream_light_baseline.safetensors")
    assert desc.model.variant == "baseline" and desc.scale == 4
    io = load_file(str(ref / "ref_io.safetensors"))
    assert (desc(io["input"]) - io["output"].clamp(0, 1)).abs().max() < 1e-5


def test_hat_state_dict_stays_hat():
    state = hat_state_dict(dim=24, depths=[1], heads=2, ws=4, compress=3, squeeze=12, scale=2)
    assert not contrast_spandrel.is_contrast_state_dict(state)
    registry = spandrel.MAIN_REGISTRY.copy()
    contrast_spandrel.register(registry)
    assert _first_claim(registry, state) == "HAT"
    assert registry.load(state).architecture.id == "HAT"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_is_claimed_by_contrast_alone(name):
    with torch.device("meta"):
        state = create_model(name, 4).state_dict()
    registry = spandrel.MAIN_REGISTRY.copy()
    contrast_spandrel.register(registry)
    assert [s.architecture.id for s in registry if s.detect(state)] == ["ContrastSR"]


def test_load_file_reads_the_fields_no_shape_shows(tmp_path):
    torch.manual_seed(0)
    model = create_model("contrast_tiny", 2, mean_norm=False).eval()  # same tensors as True
    path = save_model(model, tmp_path / "no_mean.safetensors")
    desc = contrast_spandrel.load_file(path)
    assert desc.model.config == model.config and desc.model.variant == "contrast_tiny"
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert torch.allclose(desc(x), model(x).clamp(0, 1), atol=1e-6)
    contrast_spandrel.register()
    by_shapes = spandrel.ModelLoader().load_from_file(path)
    assert by_shapes.model.config.mean_norm  # spandrel passes no metadata: the variant's


def test_a_window_size_no_tensor_shows_is_refused_not_guessed(tmp_path):
    model = _tiny(scale=2, window_size=4)  # unregistered shapes, OCAB without a bias table
    path = save_model(model, tmp_path / "custom.safetensors")
    contrast_spandrel.register()
    with pytest.raises(ContrastError, match=r"num_heads, window_size .*load_file"):
        spandrel.ModelLoader().load_from_file(path)
    desc = contrast_spandrel.load_file(path)
    assert desc.model.config.window_size == 4
    x = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        assert torch.allclose(desc(x), model(x).clamp(0, 1), atol=1e-6)


def test_a_model_without_attention_allows_fp16():
    torch.manual_seed(0)
    model = create_model("mamba", 2, dim=16, depths=[1], num_heads=4)
    desc = contrast_spandrel.describe(model)
    assert desc.supports_half and desc.tags[:2] == ["mamba", "16dim"]
