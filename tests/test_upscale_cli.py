"""``contrast-sr upscale``: inputs, outputs, kinds, overwrite protection and failures."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

from contrast_sr.cli import main
from contrast_sr.cli.upscale_plan import plan_jobs
from contrast_sr.infer import defaults

from ._tiny_models import TinySR


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    """The CLI runs a small deterministic x2 model instead of the bundled one."""
    net = TinySR(scale=2)
    monkeypatch.setattr(defaults, "get_model", lambda spec, scale=None: net)
    return net


def _save(path, mode="RGB", size=(12, 10), **kwargs):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (size[1], size[0]), dtype=np.uint16))
    elif mode != "RGB":
        img = img.convert(mode)
    img.save(path, **kwargs)
    return path


def _run(capsys, *argv):
    code = main(["upscale", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("mode", "name", "expected_mode"),
    [
        ("RGB", "a.png", "RGB"),
        ("L", "a.png", "L"),
        ("LA", "a.png", "LA"),
        ("RGBA", "a.png", "RGBA"),
        ("P", "a.png", "RGB"),
        ("CMYK", "a.jpg", "RGB"),
        ("I;16", "a.png", "I;16"),
        ("RGB", "a.bmp", "RGB"),
        ("L", "a.tif", "L"),
    ],
)
def test_output_keeps_the_input_kind(tmp_path, capsys, mode, name, expected_mode):
    src = _save(tmp_path / name, mode)
    code, out, err = _run(capsys, src, "-o", tmp_path / "out", "--json")
    assert code == 0, err
    result = Image.open(tmp_path / "out" / name)
    assert result.size == (24, 20)
    assert (
        result.mode.startswith(expected_mode)
        if expected_mode == "I;16"
        else result.mode == expected_mode
    )
    report = json.loads(out)
    assert report["outputs"][0]["width"] == 24 and report["failures"] == []


def test_rgba_alpha_is_upscaled(tmp_path, capsys):
    img = Image.new("RGBA", (8, 6), (200, 10, 10, 0))
    img.paste((10, 200, 10, 255), (0, 0, 4, 6))
    img.save(tmp_path / "a.png")
    assert _run(capsys, tmp_path / "a.png", "-o", tmp_path / "b.png")[0] == 0
    alpha = np.asarray(Image.open(tmp_path / "b.png"))[:, :, 3]
    assert alpha[:, :6].min() >= 250 and alpha[:, 10:].max() <= 5


def test_single_file_to_file_and_folder_and_glob(tmp_path, capsys):
    for n in ("x", "y", "z"):
        _save(tmp_path / f"{n}.png")
    assert _run(capsys, tmp_path / "x.png", "-o", tmp_path / "one.png")[0] == 0
    assert (tmp_path / "one.png").is_file()
    assert _run(capsys, tmp_path, "-o", tmp_path / "dir")[0] == 0
    assert sorted(os.listdir(tmp_path / "dir")) == ["one.png", "x.png", "y.png", "z.png"]
    assert _run(capsys, str(tmp_path / "[xy].png"), "-o", tmp_path / "glob")[0] == 0
    assert sorted(os.listdir(tmp_path / "glob")) == ["x.png", "y.png"]


def test_never_overwrites_an_input_even_with_overwrite(tmp_path, capsys):
    src = _save(tmp_path / "a.png")
    before = src.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, _, err = _run(capsys, src, "-o", src, *extra)
        assert code == 2 and "is an input" in err and len(err.strip().splitlines()) == 1
        code, _, err = _run(capsys, tmp_path, "-o", tmp_path, *extra)
        assert code == 2 and "is an input" in err
    os.link(src, tmp_path / "hard.png")  # the same file under another name
    assert _run(capsys, src, "-o", tmp_path / "hard.png", "--overwrite")[0] == 2
    assert src.read_bytes() == before


def test_existing_output_needs_overwrite(tmp_path, capsys):
    src = _save(tmp_path / "a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"keep me")
    code, _, err = _run(capsys, src, "-o", tmp_path / "out")
    assert code == 2 and "--skip-existing" in err
    assert (tmp_path / "out" / "a.png").read_bytes() == b"keep me"
    assert _run(capsys, src, "-o", tmp_path / "out", "--overwrite")[0] == 0
    assert Image.open(tmp_path / "out" / "a.png").size == (24, 20)


def test_skip_existing_continues_an_interrupted_batch(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for n in ("a", "b", "c"):
        _save(folder / f"{n}.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"done before Ctrl-C")
    code, out, _ = _run(capsys, folder, "-o", tmp_path / "out", "--skip-existing", "--json")
    report = json.loads(out)
    assert code == 0 and [os.path.basename(p) for p in report["skipped"]] == ["a.png"]
    assert sorted(os.path.basename(o["output"]) for o in report["outputs"]) == ["b.png", "c.png"]
    assert (tmp_path / "out" / "a.png").read_bytes() == b"done before Ctrl-C"
    code, _, err = _run(capsys, folder, "-o", tmp_path / "out", "--skip-existing", "--overwrite")
    assert code == 2 and "not allowed with" in err


def test_an_interrupt_names_what_is_done_and_how_to_continue(tmp_path, capsys, tiny_model):
    folder = tmp_path / "in"
    folder.mkdir()
    for n in ("a", "b"):
        _save(folder / f"{n}.png")
    calls = []

    def forward(x):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return type(tiny_model).forward(tiny_model, x)

    tiny_model.forward = forward
    code, _, err = _run(capsys, folder, "-o", tmp_path / "out")
    assert code == 130 and "1 of 2" in err and "--skip-existing" in err
    assert os.listdir(tmp_path / "out") == ["a.png"]  # whole files only, no temporary left


@pytest.mark.parametrize("name", ["x.gif", "x.heic", "x.GIF"])
def test_unsupported_output_format_is_an_error_not_a_folder(tmp_path, capsys, name):
    src = _save(tmp_path / "a.png")
    code, _, err = _run(capsys, src, "-o", tmp_path / "out" / name)
    assert code == 2 and "supported: .png" in err and ".webp" in err
    assert not (tmp_path / "out").exists()


def test_image_extension_output_is_a_file_and_other_names_are_folders(tmp_path, capsys):
    a, b = _save(tmp_path / "a.png"), _save(tmp_path / "b.png")
    code, _, err = _run(capsys, a, b, "-o", tmp_path / "x.png")
    assert code == 2 and "2 inputs" in err and not (tmp_path / "x.png").exists()
    assert _run(capsys, a, "-o", tmp_path / "results.v2")[0] == 0
    assert (tmp_path / "results.v2" / "a.png").is_file()
    assert _run(capsys, a, "-o", tmp_path / "single.jpg")[0] == 0
    assert Image.open(tmp_path / "single.jpg").format == "JPEG"


def test_rgba_to_jpeg_is_composited_onto_the_background_with_a_warning(tmp_path, capsys):
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # red hidden under full transparency
    img.paste((0, 0, 255, 255), (0, 0, 4, 8))
    img.save(tmp_path / "a.png")
    code, out, err = _run(capsys, tmp_path / "a.png", "-o", tmp_path / "w.jpg", "--json")
    assert code == 0 and err.startswith("warning: ") and "--background" in err
    assert json.loads(out)["warnings"]
    right = np.asarray(Image.open(tmp_path / "w.jpg"))[:, 10:].astype(int)
    assert right.min() >= 240  # white, not the hidden red
    _run(capsys, tmp_path / "a.png", "-o", tmp_path / "k.bmp", "--background", "#000000")
    assert np.asarray(Image.open(tmp_path / "k.bmp"))[:, 10:].max() <= 15
    code, _, err = _run(capsys, tmp_path / "a.png", "-o", tmp_path / "z.jpg", "--background", "x")
    assert code == 2 and "--background" in err


def test_exif_icc_and_scaled_dpi_are_kept(tmp_path, capsys):
    from PIL import ExifTags

    exif = Image.Exif()
    exif[0x0110] = "TestCam"
    exif.get_ifd(ExifTags.IFD.Exif)[0xA002] = 12
    src = _save(tmp_path / "a.jpg", exif=exif.tobytes(), dpi=(300, 300), icc_profile=b"fake")
    assert _run(capsys, src, "-o", tmp_path / "b.jpg")[0] == 0
    out = Image.open(tmp_path / "b.jpg")
    assert out.info["dpi"] == (600, 600)  # x2: the same printed size
    assert out.getexif()[0x0110] == "TestCam"
    assert out.getexif().get_ifd(ExifTags.IFD.Exif)[0xA002] == 24
    assert out.info.get("icc_profile") == b"fake"


def test_memory_budget_tiles_only_images_that_do_not_fit(tmp_path, capsys, monkeypatch):
    from contrast_sr.infer.memory import MemoryCost
    from contrast_sr.infer.upscaler import Upscaler

    monkeypatch.setattr(Upscaler, "memory_cost", lambda self: MemoryCost(0, 1000))
    small = _save(tmp_path / "s.png", size=(120, 100))
    big = _save(tmp_path / "b.png", size=(400, 300))
    code, out, _ = _run(capsys, small, big, "-o", tmp_path / "o", "--max-memory", "100M", "--json")
    outputs = {os.path.basename(o["input"]): o for o in json.loads(out)["outputs"]}
    assert code == 0 and outputs["s.png"]["tiles"] == 0 and outputs["s.png"]["tile"] is None
    assert outputs["b.png"]["tiles"] > 1 and json.loads(out)["max_memory"] == 100 * 2**20


def test_folder_with_bad_files_processes_the_good_ones(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _save(folder / "good1.png")
    _save(folder / "good2.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (folder / "text.bmp").write_text("hello")
    code, out, err = _run(capsys, folder, "-o", tmp_path / "out", "--json")
    assert code == 1
    report = json.loads(out)
    assert {os.path.basename(o["input"]) for o in report["outputs"]} == {"good1.png", "good2.jpg"}
    assert {os.path.basename(f["input"]) for f in report["failures"]} == {"broken.png", "text.bmp"}
    assert sorted(os.listdir(tmp_path / "out")) == ["good1.png", "good2.jpg"]  # no partial files
    assert "broken.png" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["missing.png", "-o", "out"], 1, "no such file"),
        (["*.nothing", "-o", "out"], 1, "matches no files"),
        (["SRC", "-o", "out", "--tile", "abc"], 2, "--tile"),
        (["SRC", "-o", "out", "--scale", "0"], 2, "--scale"),
        (["SRC", "-o", "out", "--precision", "fp16", "--device", "cpu"], 2, "fp16"),
        (["SRC", "-o", "out", "--device", "tpu"], 2, "--device"),
        (["SRC", "-o", "out.png", "--tile-overlap", "-1"], 2, "--tile-overlap"),
        (["SRC", "-o", "out.png", "--tile", "31"], 2, "--tile-overlap"),
        (["SRC", "-o", "out.png", "--tile", "64", "--tile-overlap", "64"], 2, "half the tile"),
        (["SRC", "-o", "out.png", "--max-memory", "lots"], 2, "--max-memory"),
        (["SRC", "-o", "out.png", "--threads", "0"], 2, "--threads"),
    ],
)
def test_usage_and_input_errors_are_one_line(tmp_path, capsys, monkeypatch, argv, code, needle):
    monkeypatch.chdir(tmp_path)
    _save(tmp_path / "src.png")
    argv = [a.replace("SRC", "src.png") for a in argv]
    got, _, err = _run(capsys, *argv)
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.png").exists()


def _png_bomb(path, width=20000, height=20000):
    """A tiny PNG file whose header claims 400 megapixels."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1) * 4)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def test_decompression_bomb_is_refused(tmp_path, capsys):
    src = _png_bomb(tmp_path / "bomb.png")
    code, _out, err = _run(capsys, src, "-o", tmp_path / "out")
    assert code == 1 and "decompression bomb" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "bomb.png").exists()


def test_output_under_a_file_is_a_clean_error(tmp_path, capsys):
    src = _save(tmp_path / "a.png")
    code, _, err = _run(capsys, src, "-o", src / "sub" / "b.png")
    assert code == 1 and "is a file" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="needs POSIX non-root")
def test_unwritable_output_is_a_clean_error(tmp_path, capsys):
    src = _save(tmp_path / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = _run(capsys, src, "-o", locked / "sub" / "b.png")
        assert code == 1 and "not writable" in err and len(err.strip().splitlines()) == 1
    finally:
        locked.chmod(0o700)


def test_plan_file_vs_folder_output(tmp_path):
    src = _save(tmp_path / "a.png")
    assert plan_jobs([str(src)], str(tmp_path / "b.webp"))[0].target == tmp_path / "b.webp"
    assert plan_jobs([str(src)], str(tmp_path / "res"))[0].target == tmp_path / "res" / "a.png"
    assert plan_jobs([str(src)], str(tmp_path / "res") + "/")[0].target.name == "a.png"
    other = tmp_path / "sub"
    other.mkdir()
    _save(other / "a.png")
    with pytest.raises(Exception, match="both"):
        plan_jobs([str(src), str(other / "a.png")], str(tmp_path / "o"))


def test_a_single_large_image_shows_tiles_done_of_total(tmp_path, monkeypatch):
    """Default flags, one image too large for the budget: a tile bar on stderr (a terminal)
    that counts tiles done of the total."""
    import io

    from contrast_sr.infer.memory import MemoryCost
    from contrast_sr.infer.upscaler import Upscaler

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(Upscaler, "memory_cost", lambda self: MemoryCost(0, 1000))
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    src = _save(tmp_path / "big.png", size=(300, 300))
    assert main(["upscale", str(src), "-o", str(tmp_path / "o"), "--max-memory", "40M"]) == 0
    shown = term.getvalue()
    total = shown.split("0/", 1)[1].split(" ")[0] if "0/" in shown else ""
    assert "big.png tiles" in shown and total.isdigit() and int(total) > 1
