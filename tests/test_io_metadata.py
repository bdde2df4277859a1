"""Metadata that travels with the pixels (ICC, EXIF, DPI scaled with the size), alpha
composited for formats without it, and the banded pixel conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image

from contrast_sr.infer import upscale
from contrast_sr.io import read_image, to_uint8, write_image
from contrast_sr.io.pixels import composite, to_hwc

from ._tiny_models import TinySR


def _exif(width: int) -> bytes:
    exif = Image.Exif()
    exif[0x0110] = "TestCam"
    exif.get_ifd(ExifTags.IFD.Exif)[0xA002] = width
    return exif.tobytes()


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_read_write_keeps_exif_and_scales_dpi(tmp_path, ext):
    img = Image.fromarray(np.full((6, 8, 3), 90, np.uint8))
    img.save(tmp_path / f"a{ext}", exif=_exif(8), dpi=(300, 300))
    x, info = read_image(tmp_path / f"a{ext}")
    assert info.exif and (info.dpi is None if ext == ".webp" else round(info.dpi[0]) == 300)
    big = info.resized(32, 24)
    write_image(tmp_path / f"b{ext}", torch.nn.functional.interpolate(x[None], (24, 32))[0], big)
    out = Image.open(tmp_path / f"b{ext}")
    assert out.getexif()[0x0110] == "TestCam"
    assert out.getexif().get_ifd(ExifTags.IFD.Exif)[0xA002] == 32
    if ext != ".webp":  # WebP has no resolution field
        assert round(out.info["dpi"][0]) == 1200


def test_jpeg_orientation_is_applied_once(tmp_path):
    """Pixels are turned upright and the orientation tag is dropped, so viewers do not turn
    the result a second time."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.new("RGB", (8, 4), (200, 0, 0)).save(tmp_path / "o.jpg", exif=exif.tobytes())
    x, info = read_image(tmp_path / "o.jpg")
    assert x.shape[-2:] == (8, 4) and info.exif  # turned: 8 rows of 4
    exif_out = Image.Exif()
    exif_out.load(info.exif)
    assert exif_out.get(0x0112, 1) == 1


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_files_keep_dpi_and_png_keeps_exif(tmp_path, ext):
    x = torch.rand(3, 5, 6)
    from contrast_sr.io import ImageInfo

    info = ImageInfo("PNG", "RGB;16", 3, False, 16, 6, 5, None, _exif(6), (72.0, 96.0))
    write_image(tmp_path / f"a{ext}", x, info)
    got = read_image(tmp_path / f"a{ext}")[1]
    assert got.bit_depth == 16 and got.dpi == pytest.approx((72.0, 96.0), rel=1e-3)
    if ext == ".png":
        assert got.exif and Image.open(tmp_path / "a.png").getexif()[0x0110] == "TestCam"


def test_api_keeps_icc_exif_and_scaled_dpi_of_pil_images():
    img = Image.fromarray(np.full((6, 8, 3), 90, np.uint8))
    img.info.update(icc_profile=b"fake-icc", exif=_exif(8), dpi=(300.0, 300.0))
    out = upscale(img, model=TinySR(scale=2), scale=2, device="cpu")
    assert out.info["icc_profile"] == b"fake-icc" and out.info["dpi"] == (600.0, 600.0)
    exif = Image.Exif()
    exif.load(out.info["exif"])
    assert exif.get_ifd(ExifTags.IFD.Exif)[0xA002] == 16 and exif[0x0110] == "TestCam"
    cmyk = Image.new("CMYK", (4, 4))
    cmyk.info["icc_profile"] = b"cmyk-profile"  # describes CMYK, not the RGB result
    assert "icc_profile" not in upscale(cmyk, model=TinySR(scale=2), scale=2, device="cpu").info


def test_composite_hides_colour_under_transparent_pixels():
    rgba = torch.zeros(4, 2, 3)
    rgba[0] = 1.0  # red everywhere...
    rgba[3, :, 0] = 1.0  # ...opaque in the first column only
    out = composite(rgba, (0.0, 0.0, 1.0))
    assert torch.equal(out[:, :, 0], torch.tensor([[1.0, 1.0], [0, 0], [0, 0]]))
    assert torch.equal(out[:, :, 1:], torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1).expand(3, 2, 2))
    la = torch.tensor([[[0.2]], [[0.0]]])
    assert composite(la, (1.0, 1.0, 1.0)).item() == pytest.approx(1.0)
    assert rgba[0].min() == 1.0  # the input is untouched


def test_banded_conversions_match_the_direct_ones(monkeypatch):
    from contrast_sr.io import pixels

    monkeypatch.setattr(pixels, "_BAND_ELEMENTS", 7)  # many bands, a partial last one
    x = torch.rand(3, 11, 5) * 1.2 - 0.1
    direct = torch.round(x.clamp(0, 1) * 255).to(torch.uint8)
    assert torch.equal(to_uint8(x), direct)
    hwc = to_hwc(x, 65535, np.uint16)
    assert hwc.shape == (11, 5, 3) and hwc.dtype == np.uint16
    assert np.array_equal(hwc, torch.round(x.clamp(0, 1) * 65535).permute(1, 2, 0).numpy())
