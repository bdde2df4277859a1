"""Image I/O that never surprises: every kind in, the same kind back out, one-line errors.

``read_image(path) -> (tensor, info)`` reads PNG, BMP, JPEG, TIFF and WebP files, 8- or 16-bit,
gray, gray+alpha, RGB, RGBA, palette and CMYK, and returns a float32 tensor ``(C, H, W)`` in
[0, 1]:

- ``C = 1`` gray, ``C = 3`` RGB, plus one last alpha channel when the file has one (``C = 2``
  or ``4``); ``info.channels`` is the number of colour channels, ``info.has_alpha`` says whether
  the last channel is alpha (see :func:`split_alpha`).
- palette images become RGB (RGBA if the palette has transparency), CMYK / YCbCr / LAB become
  RGB, bilevel becomes gray; EXIF orientation is applied so pixels are upright.
- 16-bit files keep their precision (divided by 65535); 16-bit colour PNGs, which Pillow would
  truncate to 8 bits, are decoded here directly.

``write_image(path, tensor, info)`` writes a tensor in [0, 1] atomically, in the format named by
the file extension, as the same kind of image ``info`` describes: gray stays gray, 16-bit stays
16-bit where the format can hold it (PNG; TIFF for gray), alpha is kept where the format has it
(not JPEG or BMP), and the ICC colour profile is carried over. WebP has no gray: gray is stored
as RGB there. Pillow reads 16-bit colour TIFFs at 8 bits, so they come back as 8-bit.

Any file that cannot be read raises :class:`~contrast_sr.errors.InputError` with one line naming
the file and the reason; images larger than ``max_pixels`` are refused before decoding
(decompression-bomb guard).
"""

from __future__ import annotations

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
from contrast_sr.utils.fs import atomic_save, atomic_write

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "ImageInfo",
    "list_images",
    "read_image",
    "split_alpha",
    "to_uint8",
    "write_image",
]

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
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageInfo:
    """What is needed to write a result back as the same kind of image.

    Attributes:
        format: Pillow format name of the source (``"PNG"``, ``"JPEG"``, ...).
        mode: the file's original Pillow mode (``"L"``, ``"RGB"``, ``"P"``, ``"CMYK"``, ``"I;16"``,
            ...; ``"RGB;16"`` / ``"RGBA;16"`` / ``"LA;16"`` for 16-bit colour PNGs).
        channels: colour channels in the tensor, 1 (gray) or 3 (RGB).
        has_alpha: the tensor has one more, last, alpha channel.
        bit_depth: 8 or 16 bits per sample.
        width, height: size in pixels.
        icc_profile: embedded colour profile to write back (``None`` if none or not RGB/gray).
    """

    format: str
    mode: str
    channels: int
    has_alpha: bool
    bit_depth: int
    width: int
    height: int
    icc_profile: bytes | None = None

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


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float in [0, 1] -> uint8, clamped and rounded half to even (as ``np.round``)."""
    return torch.round(x.detach().float().clamp(0, 1) * 255.0).to(torch.uint8)


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
            if depth == 16 and color in (2, 4, 6):
                _check_pixels(path, width, height, max_pixels)
                return _read_png16(path, width, height, color)
        return _read_with_pillow(path, max_pixels)
    except InputError:
        raise
    except PermissionError:
        raise _fail(path, "permission denied") from None
    except UnidentifiedImageError:
        raise _fail(path, "not a recognised image file (PNG, BMP, JPEG, TIFF or WebP)") from None
    except Image.DecompressionBombError as exc:
        raise _fail(path, f"refused as a possible decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, zlib.error, struct.error, EOFError) as exc:
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
                img = ImageOps.exif_transpose(img)
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


def _read_png16(path: Path, width: int, height: int, color: int) -> tuple[torch.Tensor, ImageInfo]:
    """Decode a 16-bit colour PNG (colour types 2, 4, 6), which Pillow reduces to 8 bits."""
    data = path.read_bytes()
    channels = {2: 3, 4: 2, 6: 4}[color]
    pos, idat, icc = 8, [], None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise _fail(path, "truncated or corrupt image data (chunk cut short)")
        if ctype == b"IHDR" and body[12] != 0:
            raise _fail(path, "interlaced 16-bit colour PNGs are not supported")
        if ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"iCCP":
            name_end = body.find(b"\x00")
            icc = zlib.decompress(body[name_end + 2 :]) if name_end >= 0 else None
        elif ctype == b"IEND":
            break
        pos += 12 + length
    else:
        raise _fail(path, "truncated or corrupt image data (no IEND chunk)")
    stride = width * channels * 2
    expected = height * (stride + 1)
    inflater = zlib.decompressobj()
    raw = inflater.decompress(b"".join(idat), expected + 1)
    if len(raw) != expected:
        raise _fail(path, f"truncated or corrupt image data ({len(raw)} of {expected} bytes)")
    pixels = _unfilter(np.frombuffer(raw, np.uint8).reshape(height, stride + 1), channels * 2, path)
    array = pixels.view(">u2").reshape(height, width, channels).astype(np.uint16)
    has_alpha = color in (4, 6)
    mode = {2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}[color]
    info = ImageInfo("PNG", mode, channels - int(has_alpha), has_alpha, 16, width, height, icc)
    return _to_tensor(array, 16), info


def _unfilter(rows: np.ndarray, bpp: int, path: Path) -> np.ndarray:
    """Undo PNG row filters: ``(H, 1 + stride)`` filtered bytes -> ``(H, stride)`` bytes."""
    height, stride = rows.shape[0], rows.shape[1] - 1
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum per byte lane
            cur = np.cumsum(line.reshape(-1, bpp), axis=0).reshape(-1) & 0xFF
        elif kind == 2:  # Up
            cur = (line + prev) & 0xFF
        elif kind in (3, 4):  # Average, Paeth: sequential along the row, one pixel at a time
            cur = np.zeros(stride, np.int32)
            zero = np.zeros(bpp, np.int32)
            for x in range(0, stride, bpp):
                a = cur[x - bpp : x] if x else zero
                b = prev[x : x + bpp]
                if kind == 3:
                    pred = (a + b) >> 1
                else:
                    c = prev[x - bpp : x] if x else zero
                    p = a + b - c
                    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
                    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
                cur[x : x + bpp] = (line[x : x + bpp] + pred) & 0xFF
        else:
            raise _fail(path, f"truncated or corrupt image data (bad PNG filter {kind})")
        out[y] = cur
        prev = cur
    return out


# -------------------------------------------------------------------------------------- write


def write_image(
    path: str | os.PathLike,
    x: torch.Tensor,
    info: ImageInfo | None = None,
    quality: int = 95,
) -> Path:
    """Write ``x`` (``(C, H, W)`` or ``(H, W)`` float in [0, 1]) atomically to ``path``.

    The format comes from the extension. ``info`` (from :func:`read_image`) chooses the kind:
    16-bit stays 16-bit in PNG (and gray TIFF), alpha is kept where the format supports it
    (dropped for JPEG and BMP), and the ICC profile is written back. WebP is written lossless
    unless the source was a JPEG. Without ``info``: 8-bit, channels as given (1 gray,
    2 gray+alpha, 3 RGB, 4 RGBA).
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
    if has_alpha and fmt in ("JPEG", "BMP"):  # formats without (readable) alpha
        x, has_alpha = x[:-1], False
    depth = 16 if info is not None and info.bit_depth == 16 else 8
    channels = x.shape[0]
    if depth == 16 and not (fmt == "PNG" or (fmt == "TIFF" and channels == 1)):
        depth = 8
    icc = info.icc_profile if info is not None else None
    if depth == 16 and channels > 1:
        data = _encode_png16(x, icc)
        with atomic_write(path) as handle:
            handle.write(data)
        return path
    if depth == 16:
        arr = torch.round(x[0].clamp(0, 1) * 65535.0).numpy().astype(np.uint16)
        img = Image.fromarray(arr, mode="I;16") if _needs_mode_arg() else Image.fromarray(arr)
    else:
        arr = to_uint8(x).permute(1, 2, 0).numpy()
        img = Image.fromarray(arr[..., 0] if channels == 1 else arr)
    options: dict = {}
    if icc and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        options["icc_profile"] = icc
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


def _encode_png16(x: torch.Tensor, icc: bytes | None) -> bytes:
    """Encode ``(C, H, W)`` in [0, 1], C in 2..4, as a 16-bit PNG (filter Up on every row)."""
    channels, height, width = x.shape
    arr = torch.round(x.clamp(0, 1) * 65535.0).permute(1, 2, 0).numpy().astype(">u2")
    rows = arr.reshape(height, width * channels).view(np.uint8).astype(np.int16)
    up = (rows - np.vstack([np.zeros((1, rows.shape[1]), np.int16), rows[:-1]])) & 0xFF
    raw = np.hstack([np.full((height, 1), 2, np.uint8), up.astype(np.uint8)]).tobytes()
    color = {2: 4, 3: 2, 4: 6}[channels]

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    parts = [
        _PNG_SIGNATURE,
        chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color, 0, 0, 0)),
    ]
    if icc:
        parts.append(chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
    parts += [chunk(b"IDAT", zlib.compress(raw, 6)), chunk(b"IEND", b"")]
    return b"".join(parts)
