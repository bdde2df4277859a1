"""Image I/O: round trips for every kind, 16-bit colour PNG decoding, one-line errors."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contrast_sr.errors import InputError, UsageError
from contrast_sr.io import list_images, read_image, split_alpha, to_uint8, write_image

RNG = np.random.default_rng(0)


def _rand8(*shape) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _save(path: Path, img: Image.Image, **kw) -> Path:
    img.save(path, **kw)
    return path


def _as_hwc(x: torch.Tensor, maxval: int) -> np.ndarray:
    return torch.round(x * maxval).permute(1, 2, 0).numpy().astype(np.int64)


# Lossless kinds: (name, Pillow mode, channels, alpha, depth, builder(tmp_path) -> (path, pixels))
def _lossless_cases(tmp: Path):
    rgb, rgba, gray = _rand8(6, 7, 3), _rand8(6, 7, 4), _rand8(6, 7)
    g16 = RNG.integers(0, 65536, (6, 7), dtype=np.uint16)
    la = _rand8(6, 7, 2)
    yield "png-gray8", _save(tmp / "g.png", Image.fromarray(gray)), gray[..., None], (1, False, 8)
    yield "png-rgb8", _save(tmp / "c.png", Image.fromarray(rgb)), rgb, (3, False, 8)
    yield "png-rgba8", _save(tmp / "a.png", Image.fromarray(rgba)), rgba, (3, True, 8)
    yield "png-la8", _save(tmp / "la.png", Image.fromarray(la, "LA")), la, (1, True, 8)
    yield "png-gray16", _save(tmp / "g16.png", Image.fromarray(g16)), g16[..., None], (1, False, 16)
    yield (
        "tiff-gray16",
        _save(tmp / "g16.tif", Image.fromarray(g16)),
        g16[..., None],
        (1, False, 16),
    )
    yield "tiff-rgb8", _save(tmp / "c.tif", Image.fromarray(rgb)), rgb, (3, False, 8)
    yield "bmp-rgb8", _save(tmp / "c.bmp", Image.fromarray(rgb)), rgb, (3, False, 8)
    yield "bmp-gray8", _save(tmp / "g.bmp", Image.fromarray(gray)), gray[..., None], (1, False, 8)
    yield "webp-rgb", _save(tmp / "c.webp", Image.fromarray(rgb), lossless=True), rgb, (3, False, 8)
    yield (
        "webp-rgba",
        _save(tmp / "a.webp", Image.fromarray(rgba), lossless=True, exact=True),
        rgba,
        (3, True, 8),
    )


def test_lossless_kinds_read_exactly_and_round_trip(tmp_path):
    for name, path, pixels, (channels, alpha, depth) in _lossless_cases(tmp_path):
        x, info = read_image(path)
        maxval = 65535 if depth == 16 else 255
        assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1, name
        assert (info.channels, info.has_alpha, info.bit_depth) == (channels, alpha, depth), name
        assert x.shape == (pixels.shape[-1], 6, 7), name
        assert np.array_equal(_as_hwc(x, maxval), pixels.astype(np.int64)), name
        # write back as the same kind, read again: identical pixels and kind
        out = path.with_name("out_" + path.name)
        write_image(out, x, info)
        y, info2 = read_image(out)
        assert info2.kind == info.kind, name
        assert torch.equal(x, y), name


def _png16(path: Path, arr: np.ndarray, filters: list[int] | None = None) -> Path:
    """A 16-bit PNG written by hand, with the given per-row filter types (plain loops)."""
    h, w, c = arr.shape
    bpp = 2 * c
    raw = arr.astype(">u2").reshape(h, w * c).view(np.uint8).astype(np.int64)
    filters = filters or [0] * h
    out = b""
    for y in range(h):
        line, prev, kind = raw[y], raw[y - 1] if y else np.zeros_like(raw[0]), filters[y]
        enc = []
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            cc = prev[i - bpp] if i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
            enc.append((line[i] - pred) % 256)
        out += bytes([kind, *enc])
    color = {2: 4, 3: 2, 4: 6}[c]

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, 0)
    data = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(out)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_colour_png_all_filters(tmp_path, channels):
    arr = RNG.integers(0, 65536, (5, 6, channels), dtype=np.uint16)
    path = _png16(tmp_path / "c16.png", arr, filters=[0, 1, 2, 3, 4])
    x, info = read_image(path)
    assert info.bit_depth == 16 and info.has_alpha == (channels in (2, 4))
    assert np.array_equal(_as_hwc(x, 65535), arr.astype(np.int64))
    out = tmp_path / "back.png"
    write_image(out, x, info)
    y, info2 = read_image(out)
    assert info2.kind == info.kind and torch.equal(x, y)


def test_palette_images_become_rgb_or_rgba(tmp_path):
    rgb = _rand8(8, 8, 3)
    pal = Image.fromarray(rgb).quantize(16)
    x, info = read_image(_save(tmp_path / "p.png", pal))
    assert info.mode == "P" and info.channels == 3 and not info.has_alpha
    assert np.array_equal(_as_hwc(x, 255), np.asarray(pal.convert("RGB")))
    pal.info["transparency"] = 0
    x, info = read_image(_save(tmp_path / "pt.png", pal, transparency=0))
    assert info.has_alpha and x.shape[0] == 4
    assert np.array_equal(
        _as_hwc(x, 255), np.asarray(Image.open(tmp_path / "pt.png").convert("RGBA"))
    )


def test_cmyk_jpeg_becomes_rgb_and_bilevel_becomes_gray(tmp_path):
    cmyk = Image.fromarray(_rand8(16, 16, 3)).convert("CMYK")
    path = _save(tmp_path / "k.jpg", cmyk, quality=95)
    x, info = read_image(path)
    assert info.mode == "CMYK" and info.format == "JPEG" and info.channels == 3
    assert np.array_equal(_as_hwc(x, 255), np.asarray(Image.open(path).convert("RGB")))
    write_image(tmp_path / "k_out.jpg", x, info)
    assert Image.open(tmp_path / "k_out.jpg").mode == "RGB"
    bits = Image.fromarray(_rand8(9, 9) > 127)
    x, info = read_image(_save(tmp_path / "b.png", bits))
    assert info.channels == 1 and set(torch.unique(x).tolist()) <= {0.0, 1.0}


def test_jpeg_rgb_and_gray_are_close_and_alpha_dropped(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 32), (32, 1)).astype(np.uint8)
    rgb = np.stack([smooth, smooth.T, 255 - smooth], -1)
    x, info = read_image(_save(tmp_path / "c.jpg", Image.fromarray(rgb), quality=98))
    assert info.channels == 3 and (_as_hwc(x, 255) - rgb).__abs__().max() <= 8
    x, info = read_image(_save(tmp_path / "g.jpg", Image.fromarray(smooth), quality=98))
    assert info.channels == 1
    rgba = torch.rand(4, 8, 8)
    write_image(tmp_path / "a.jpg", rgba)
    assert Image.open(tmp_path / "a.jpg").mode == "RGB"


def test_icc_profile_is_kept(tmp_path):
    profile = b"fake-icc-profile-bytes" * 4
    path = _save(tmp_path / "icc.png", Image.fromarray(_rand8(4, 4, 3)), icc_profile=profile)
    x, info = read_image(path)
    assert info.icc_profile == profile
    write_image(tmp_path / "icc_out.png", x, info)
    assert Image.open(tmp_path / "icc_out.png").info.get("icc_profile") == profile


def test_write_without_info_and_helpers(tmp_path):
    x = torch.rand(3, 5, 5)
    write_image(tmp_path / "x.png", x)
    y, info = read_image(tmp_path / "x.png")
    assert info.kind == "8-bit RGB"
    assert torch.equal(to_uint8(y), to_uint8(x))
    color, alpha = split_alpha(torch.rand(4, 2, 2), info.__class__("PNG", "RGBA", 3, True, 8, 2, 2))
    assert color.shape[0] == 3 and alpha.shape[0] == 1
    assert to_uint8(torch.tensor([0.5 / 255, 1.5 / 255, 2.5 / 255])).tolist() == [0, 2, 2]
    assert [p.name for p in list_images(tmp_path)] == ["x.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(UsageError):
        write_image(tmp_path / "x.gif", x)


def _error(path) -> str:
    with pytest.raises(InputError) as info:
        read_image(path)
    message = info.value.message
    assert "\n" not in message and str(path) in message
    return message


def test_errors_name_the_file_and_reason(tmp_path):
    assert "not found" in _error(tmp_path / "missing.png")
    assert "directory" in _error(tmp_path)
    (tmp_path / "text.png").write_text("hello, not an image")
    assert "not a recognised image" in _error(tmp_path / "text.png")
    good = _save(tmp_path / "good.png", Image.fromarray(_rand8(64, 64, 3)))
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:300])
    assert "truncated or corrupt" in _error(tmp_path / "cut.png")
    jpg = _save(tmp_path / "good.jpg", Image.fromarray(_rand8(64, 64, 3)))
    (tmp_path / "cut.jpg").write_bytes(jpg.read_bytes()[:400])
    assert "truncated or corrupt" in _error(tmp_path / "cut.jpg")
    arr = RNG.integers(0, 65536, (8, 8, 3), dtype=np.uint16)
    data = _png16(tmp_path / "c16.png", arr).read_bytes()
    (tmp_path / "cut16.png").write_bytes(data[:-40])
    assert "truncated or corrupt" in _error(tmp_path / "cut16.png")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    for depth, color in ((8, 2), (16, 2)):
        ihdr = struct.pack(">IIBBBBB", 60000, 60000, depth, color, 0, 0, 0)
        idat = zlib.compress(b"\x00" * 1000)
        path = tmp_path / f"bomb{depth}.png"
        path.write_bytes(
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
        )
        assert "decompression bomb" in _error(path)
    small = _save(tmp_path / "small.png", Image.fromarray(_rand8(20, 20, 3)))
    with pytest.raises(InputError, match="decompression bomb"):
        read_image(small, max_pixels=100)


def test_alpha_is_dropped_only_where_the_format_has_none(tmp_path):
    la = torch.rand(2, 6, 6)
    for ext, channels in ((".png", 2), (".tif", 2), (".bmp", 1), (".jpg", 1)):
        write_image(tmp_path / f"la{ext}", la)
        x, info = read_image(tmp_path / f"la{ext}")
        assert x.shape[0] == channels and info.channels == 1, ext


# ----------------------------------------------------------------------- 16-bit PNG and TIFF


def _interlaced_png16(path: Path, arr: np.ndarray) -> Path:
    import png

    h, w, c = arr.shape
    writer = png.Writer(w, h, greyscale=c < 3, alpha=c in (2, 4), bitdepth=16, interlace=True)
    with open(path, "wb") as handle:
        writer.write(handle, arr.reshape(h, w * c))
    return path


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_interlaced_round_trip(tmp_path, channels):
    arr = RNG.integers(0, 65536, (9, 11, channels), dtype=np.uint16)
    path = _interlaced_png16(tmp_path / "i16.png", arr)
    x, info = read_image(path)
    assert (info.bit_depth, info.has_alpha) == (16, channels in (2, 4))
    assert info.channels == (1 if channels < 3 else 3)
    assert np.array_equal(_as_hwc(x, 65535), arr.astype(np.int64))
    write_image(tmp_path / "back.png", x, info)
    y, info2 = read_image(tmp_path / "back.png")
    assert info2.kind == info.kind and torch.equal(x, y)


def _tiff16(path: Path, arr: np.ndarray, **kw) -> Path:
    import tifffile

    c = arr.shape[-1]
    kw.setdefault("photometric", "minisblack" if c < 3 else "rgb")
    if c in (2, 4):
        kw.setdefault("extrasamples", ["unassalpha"])
    tifffile.imwrite(path, arr[..., 0] if c == 1 else arr, metadata=None, **kw)
    return path


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_tiff_round_trip_at_full_precision(tmp_path, channels):
    arr = RNG.integers(0, 65536, (7, 10, channels), dtype=np.uint16)
    planar = {"planarconfig": "contig"} if channels > 1 else {}
    for name, kw in [
        ("raw", planar),
        ("deflate", {"compression": "zlib", "predictor": "horizontal", **planar}),
    ]:
        path = _tiff16(tmp_path / f"{name}.tif", arr, **kw)
        x, info = read_image(path)
        assert (info.format, info.bit_depth, info.has_alpha) == ("TIFF", 16, channels in (2, 4))
        assert np.array_equal(_as_hwc(x, 65535), arr.astype(np.int64)), name
        out = tmp_path / f"out_{name}.tiff"
        write_image(out, x, info)
        y, info2 = read_image(out)
        assert info2.kind == info.kind and torch.equal(x, y), name
    planes = np.ascontiguousarray(np.moveaxis(arr, -1, 0))
    if channels == 3:  # planar (RRR GGG BBB) storage
        x, _ = read_image(_tiff16(tmp_path / "planar.tif", planes, photometric="rgb"))
        assert np.array_equal(_as_hwc(x, 65535), arr.astype(np.int64))


def test_16bit_tiff_written_from_8bit_tensor_keeps_16_bits(tmp_path):
    x = torch.rand(3, 6, 5)
    info = read_image(_tiff16(tmp_path / "a.tif", np.zeros((6, 5, 3), np.uint16)))[1]
    write_image(tmp_path / "b.tif", x, info)
    y, info2 = read_image(tmp_path / "b.tif")
    assert info2.kind == "16-bit RGB"
    assert torch.equal(torch.round(y * 65535), torch.round(x * 65535))


def test_16bit_icc_profiles_are_kept(tmp_path):
    profile = b"fake-icc-profile-16" * 5
    arr = RNG.integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    x, info = read_image(_tiff16(tmp_path / "icc.tif", arr, iccprofile=profile))
    assert info.icc_profile == profile
    for ext in (".png", ".tif"):
        write_image(tmp_path / f"out{ext}", x, info)
        y, info2 = read_image(tmp_path / f"out{ext}")
        assert info2.icc_profile == profile and info2.bit_depth == 16 and torch.equal(x, y), ext
    assert Image.open(tmp_path / "out.png").info.get("icc_profile") == profile


def test_16bit_tiff_orientation_tag_is_applied(tmp_path):
    import tifffile

    t = Image.Transpose
    methods = {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE}
    methods.update({6: t.ROTATE_270, 7: t.TRANSVERSE, 8: t.ROTATE_90})  # as exif_transpose
    arr = RNG.integers(0, 256, (4, 6), dtype=np.uint8)
    for orientation in range(1, 9):
        path = tmp_path / f"o{orientation}.tif"
        tag = [(274, "H", 1, orientation, True)]
        tifffile.imwrite(path, arr.astype(np.uint16) * 257, extratags=tag, metadata=None)
        x, info = read_image(path)
        upright = Image.fromarray(arr)
        if orientation > 1:
            upright = upright.transpose(methods[orientation])
        assert info.bit_depth == 16, orientation
        assert np.array_equal(_as_hwc(x, 255)[..., 0], np.asarray(upright)), orientation


def test_lzw_16bit_gray_tiff_keeps_16_bits(tmp_path):
    g16 = RNG.integers(0, 65536, (6, 7), dtype=np.uint16)
    path = _save(tmp_path / "lzw.tif", Image.fromarray(g16), compression="tiff_lzw")
    x, info = read_image(path)  # tifffile with imagecodecs, else Pillow
    assert info.kind == "16-bit gray"
    assert np.array_equal(_as_hwc(x, 65535)[..., 0], g16.astype(np.int64))


def test_16bit_errors_and_size_guard(tmp_path):
    arr = RNG.integers(0, 65536, (32, 32, 3), dtype=np.uint16)
    tif = _tiff16(tmp_path / "c.tif", arr, compression="zlib", planarconfig="contig")
    (tmp_path / "cut.tif").write_bytes(tif.read_bytes()[:-300])
    assert "truncated or corrupt" in _error(tmp_path / "cut.tif")
    png16 = _interlaced_png16(tmp_path / "c.png", arr)
    (tmp_path / "cut.png").write_bytes(png16.read_bytes()[:-300])
    assert "truncated or corrupt" in _error(tmp_path / "cut.png")
    for path in (tif, png16):
        with pytest.raises(InputError, match="decompression bomb"):
            read_image(path, max_pixels=100)
