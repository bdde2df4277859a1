"""Reading and writing images: every kind in, the same kind back out (see :mod:`contrast_sr.io`)."""

from __future__ import annotations

import dataclasses
import lzma
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from contrast_sr.errors import InputError, UsageError
from contrast_sr.io.metadata import Dpi, dpi_of, exif_bytes, exif_for_size, save_options, scaled_dpi
from contrast_sr.io.pixels import RGB, composite, to_hwc
from contrast_sr.io.png16 import PngError, encode_png16, read_png16
from contrast_sr.io.tiff16 import is_tiff, read_tiff16, write_tiff16
from contrast_sr.utils.fs import atomic_save, atomic_write

IMAGE_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
# ~ 12247 x 12247; a float32 RGB copy is 1.8 GB. Pillow's own guard (~179 MP) applies as well.
MAX_PIXELS = 150_000_000

_FORMATS = {
    ".png": "PNG",
    ".bmp": "BMP",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")  # formats that keep an alpha channel
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# what Pillow, pypng and tifffile raise for damaged data
_CORRUPT = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    PngError,
)


@dataclass(frozen=True)
class ImageInfo:
    """What is needed to write a result back as the same kind of image.

    Attributes:
        format: Pillow format name of the source (``"PNG"``, ``"JPEG"``, ...).
        mode: the file's original Pillow mode (``"L"``, ``"RGB"``, ``"P"``, ``"CMYK"``, ``"I;16"``,
            ...; ``"RGB;16"`` / ``"RGBA;16"`` / ``"LA;16"`` for 16-bit colour or alpha PNGs
            and TIFFs, ``"I;16"`` for 16-bit gray).
        channels: colour channels in the tensor, 1 (gray) or 3 (RGB).
        has_alpha: the tensor has one more, last, alpha channel.
        bit_depth: 8 or 16 bits per sample.
        width, height: size in pixels.
        icc_profile: embedded colour profile to write back (``None`` if none or not RGB/gray).
        exif: the EXIF block (JPEG, PNG, WebP sources), orientation already applied.
        dpi: (x, y) print resolution in dots per inch, ``None`` if the file has none.
    """

    format: str
    mode: str
    channels: int
    has_alpha: bool
    bit_depth: int
    width: int
    height: int
    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: Dpi | None = None

    def resized(self, width: int, height: int) -> ImageInfo:
        """This info for the same picture at ``width`` x ``height``: DPI scaled with the size
        (same printed size), EXIF pixel dimensions updated."""
        fx, fy = width / max(self.width, 1), height / max(self.height, 1)
        return dataclasses.replace(
            self,
            width=int(width),
            height=int(height),
            dpi=scaled_dpi(self.dpi, fx, fy),
            exif=exif_for_size(self.exif, width, height),
        )

    @property
    def kind(self) -> str:
        """Short description, e.g. ``"16-bit gray+alpha"``."""
        color = "gray" if self.channels == 1 else "RGB"
        return f"{self.bit_depth}-bit {color}{'+alpha' if self.has_alpha else ''}"


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder`` (by extension, sorted by name)."""
    folder = Path(folder)
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def split_alpha(x: torch.Tensor, info: ImageInfo) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(C, H, W)`` -> colour channels and alpha ``(1, H, W)`` (``None`` without alpha)."""
    if info.has_alpha:
        return x[:-1], x[-1:]
    return x, None


def format_keeps_alpha(path: str | os.PathLike) -> bool:
    """Whether the format named by ``path``'s extension stores alpha (PNG, TIFF, WebP)."""
    return _FORMATS.get(Path(path).suffix.lower()) in ALPHA_FORMATS


# --------------------------------------------------------------------------------------- read


def _fail(path: Path, why: str) -> InputError:
    return InputError(str(path), why)


def read_image(
    path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS
) -> tuple[torch.Tensor, ImageInfo]:
    """Read an image file as a float32 tensor ``(C, H, W)`` in [0, 1] plus its :class:`ImageInfo`.

    Raises:
        InputError: missing, not a file, not an image, truncated/corrupt, or more than
            ``max_pixels`` pixels (``None`` disables the guard).
    """
    path = Path(path)
    if not path.exists():
        raise _fail(path, "file not found")
    if path.is_dir():
        raise _fail(path, "is a directory, not an image file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(33)
        if head.startswith(_PNG_SIGNATURE) and len(head) >= 33 and head[12:16] == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", head[16:26])
            if depth == 16 and color in (2, 4, 6):  # Pillow would reduce these to 8 bits
                _check_pixels(path, width, height, max_pixels)
                return _from_16bit("PNG", *read_png16(path))
        if is_tiff(head):
            decoded = read_tiff16(path, lambda w, h: _check_pixels(path, w, h, max_pixels))
            if decoded is not None:
                return _from_16bit("TIFF", *decoded)
        return _read_with_pillow(path, max_pixels)
    except InputError:
        raise
    except PermissionError:
        raise _fail(path, "permission denied") from None
    except UnidentifiedImageError:
        raise _fail(path, "not a recognised image file (PNG, BMP, JPEG, TIFF or WebP)") from None
    except Image.DecompressionBombError as exc:
        raise _fail(path, f"refused as a possible decompression bomb ({exc})") from None
    except _CORRUPT as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise _fail(path, f"truncated or corrupt image data ({detail})") from None


def _check_pixels(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    if width < 1 or height < 1:
        raise _fail(path, f"invalid image size {width}x{height}")
    if max_pixels is not None and width * height > max_pixels:
        raise _fail(
            path,
            f"image is {width}x{height} = {width * height} pixels, more than the limit of "
            f"{max_pixels} (refused as a possible decompression bomb)",
        )


def _read_with_pillow(path: Path, max_pixels: int | None) -> tuple[torch.Tensor, ImageInfo]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            _check_pixels(path, img.width, img.height, max_pixels)
            fmt = img.format or "?"
            mode = img.mode
            icc = img.info.get("icc_profile")
            img.load()
            if fmt in ("JPEG", "TIFF", "WEBP", "MPO"):
                img = ImageOps.exif_transpose(img)  # also drops the orientation tag
            exif = exif_bytes(img.info) if fmt in ("JPEG", "MPO", "PNG", "WEBP") else None
            dpi = dpi_of(img.info)
            array, channels, has_alpha, depth = _pillow_to_array(img, path)
    if mode in ("CMYK", "LAB", "YCbCr", "HSV"):
        icc = None  # the profile describes the original colour space, not RGB
    info = ImageInfo(
        format=fmt,
        mode=mode,
        channels=channels,
        has_alpha=has_alpha,
        bit_depth=depth,
        width=array.shape[1],
        height=array.shape[0],
        icc_profile=icc if isinstance(icc, bytes) and icc else None,
        exif=exif,
        dpi=dpi,
    )
    return _to_tensor(array, depth), info


def standard_mode(img: Image.Image) -> Image.Image:
    """8-bit Pillow modes -> L, LA, RGB or RGBA: bilevel -> L, palette -> RGB (RGBA when it has
    transparency), premultiplied -> straight alpha, CMYK/YCbCr/LAB/HSV/RGBX -> RGB. 16-bit
    ("I;16*", "I") and float ("F") images pass through unchanged."""
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA") or mode.startswith("I") or mode == "F":
        return img
    if mode == "1":
        return img.convert("L")
    if mode == "P":
        has_t = "transparency" in img.info or (
            img.palette is not None and img.palette.mode == "RGBA"
        )
        return img.convert("RGBA" if has_t else "RGB")
    if mode in ("PA", "RGBa"):
        return img.convert("RGBA")
    if mode == "La":
        return img.convert("LA")
    return img.convert("RGB")


def _pillow_to_array(img: Image.Image, path: Path) -> tuple[np.ndarray, int, bool, int]:
    """Pillow image -> ``(H, W, C)`` integer array, colour channels, has_alpha, bit depth."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(img).astype(np.uint16)[..., None], 1, False, 16
    if mode == "I":
        arr = np.asarray(img)
        if arr.min() < 0 or arr.max() > 65535:
            raise _fail(path, "32-bit integer images are not supported (values beyond 16 bits)")
        return arr.astype(np.uint16)[..., None], 1, False, 16
    if mode == "F":
        raise _fail(path, "floating-point images (mode F) are not supported")
    img = standard_mode(img)
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[..., None]
    has_alpha = img.mode in ("LA", "RGBA")
    return arr, arr.shape[-1] - int(has_alpha), has_alpha, 8


def _to_tensor(array: np.ndarray, depth: int) -> torch.Tensor:
    scale = 65535.0 if depth == 16 else 255.0
    chw = np.ascontiguousarray(array.transpose(2, 0, 1)).astype(np.float32)
    return torch.from_numpy(chw) / scale


def _from_16bit(
    fmt: str, array: np.ndarray, has_alpha: bool, meta: dict
) -> tuple[torch.Tensor, ImageInfo]:
    """Tensor and info for an ``(H, W, C)`` uint16 array decoded by pypng or tifffile;
    ``meta`` holds what the decoder found of ``icc``, ``exif`` and ``dpi``."""
    height, width, planes = array.shape
    mode = {1: "I;16", 2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}[planes]
    info = ImageInfo(
        fmt,
        mode,
        planes - int(has_alpha),
        has_alpha,
        16,
        width,
        height,
        meta.get("icc"),
        meta.get("exif"),
        meta.get("dpi"),
    )
    return _to_tensor(array, 16), info


# -------------------------------------------------------------------------------------- write


def write_image(
    path: str | os.PathLike,
    x: torch.Tensor,
    info: ImageInfo | None = None,
    quality: int = 95,
    background: RGB = (1.0, 1.0, 1.0),
) -> Path:
    """Write ``x`` (``(C, H, W)`` or ``(H, W)`` float in [0, 1]) atomically to ``path``.

    The format comes from the extension. ``info`` (from :func:`read_image`, sized to ``x`` with
    :meth:`ImageInfo.resized`) chooses the kind: 16-bit stays 16-bit in PNG and TIFF, alpha is
    kept where the format supports it (:func:`format_keeps_alpha`), else the image is
    composited onto ``background`` (RGB in [0, 1], default white), and the ICC profile, EXIF
    and DPI are written where the format holds them. WebP is written lossless unless the
    source was a JPEG. Without ``info``: 8-bit, channels as given (1 gray, 2 gray+alpha,
    3 RGB, 4 RGBA).
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            str(path), f"unknown image extension (use one of {', '.join(IMAGE_EXTENSIONS)})"
        )
    x = x.detach().to("cpu", torch.float32)
    if x.dim() == 2:
        x = x[None]
    if x.dim() != 3 or x.shape[0] not in (1, 2, 3, 4):
        raise ValueError(f"write_image expects (C, H, W) with C in 1..4, got {tuple(x.shape)}")
    has_alpha = x.shape[0] in (2, 4) if info is None else info.has_alpha
    if has_alpha and x.shape[0] not in (2, 4):
        raise ValueError(f"info says the image has alpha but the tensor has {x.shape[0]} channels")
    if has_alpha and fmt not in ALPHA_FORMATS:  # JPEG, BMP: flatten, never expose hidden colour
        x, has_alpha = composite(x, background), False
    depth = 16 if info is not None and info.bit_depth == 16 and fmt in ("PNG", "TIFF") else 8
    channels = x.shape[0]
    icc = info.icc_profile if info is not None else None
    exif = info.exif if info is not None else None
    dpi = info.dpi if info is not None else None
    if depth == 16 and (fmt == "TIFF" or channels > 1):  # tifffile; pypng for PNG
        arr = to_hwc(x, 65535, np.uint16)
        if fmt == "TIFF":
            atomic_save(path, lambda tmp: write_tiff16(tmp, arr, icc, dpi))
        else:
            with atomic_write(path) as handle:
                handle.write(encode_png16(arr, icc, dpi, exif))
        return path
    arr = to_hwc(x, 65535 if depth == 16 else 255, np.uint16 if depth == 16 else np.uint8)
    if depth == 16:  # 16-bit gray PNG: Pillow keeps the 16 bits
        gray = arr[..., 0]
        img = Image.fromarray(gray, mode="I;16") if _needs_mode_arg() else Image.fromarray(gray)
    else:
        img = Image.fromarray(arr[..., 0] if channels == 1 else arr)
    options = save_options(fmt, icc, exif, dpi)
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        lossy = info is not None and info.format == "JPEG"  # lossless unless the source was lossy
        options.update(quality=quality, lossless=not lossy, exact=True)
    elif fmt == "TIFF":
        options["compression"] = "tiff_deflate"
    atomic_save(path, lambda tmp: img.save(tmp, format=fmt, **options))
    return path


def _needs_mode_arg() -> bool:
    """Old Pillow needs ``mode="I;16"`` for uint16 arrays; new Pillow infers it."""
    return int(Image.__version__.split(".")[0]) < 11
