"""16-bit PNG with colour or alpha (colour types 2, 4, 6), through ``pypng``.

Pillow reduces these to 8 bits, so they are read and written here with pypng, which handles
every colour type, bit depth and Adam7 interlacing. 16-bit gray without alpha stays with Pillow
(its C decoder is faster and keeps the 16 bits). pypng has no ICC, EXIF or resolution support:
the ``iCCP``, ``eXIf`` and ``pHYs`` chunks are read from and inserted into the chunk stream with
pypng's chunk functions.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import png

#: pypng's error base class: malformed chunks, bad filters, truncated data.
PngError = png.Error

_ICC_NAME = b"ICC profile"
_INCH = 0.0254  # metres


def read_png16(path: Path) -> tuple[np.ndarray, bool, dict]:
    """Decode ``path`` -> ``(H, W, C)`` uint16 array, has_alpha, and its metadata: a dict with
    ``icc`` (profile bytes), ``dpi`` ((x, y)) and ``exif`` (bytes) where the file has them."""
    data = path.read_bytes()
    width, height, rows, meta = png.Reader(bytes=data).read()
    planes = meta["planes"]
    array = np.empty((height, width * planes), np.uint16)
    for y, row in enumerate(rows):  # pypng raises on missing or damaged data
        array[y] = row
    return array.reshape(height, width, planes), bool(meta["alpha"]), _metadata(data)


def _metadata(data: bytes) -> dict:
    found: dict = {}
    for kind, body in png.Reader(bytes=data).chunks():
        if kind == b"iCCP":
            name_end = body.find(b"\x00")
            if name_end >= 0:
                found["icc"] = zlib.decompress(body[name_end + 2 :])
        elif kind == b"pHYs" and len(body) == 9:
            x, y, unit = struct.unpack(">IIB", body)
            if unit == 1 and x and y:  # pixels per metre
                found["dpi"] = (round(x * _INCH, 4), round(y * _INCH, 4))
        elif kind == b"eXIf" and body:
            found["exif"] = b"Exif\x00\x00" + body  # as Pillow has it
    return found


def _extra_chunks(icc: bytes | None, dpi: tuple[float, float] | None, exif: bytes | None):
    chunks = []
    if icc:
        chunks.append((b"iCCP", _ICC_NAME + b"\x00\x00" + zlib.compress(icc)))
    if dpi:
        ppm = (round(dpi[0] / _INCH), round(dpi[1] / _INCH))
        chunks.append((b"pHYs", struct.pack(">IIB", *ppm, 1)))
    if exif:
        chunks.append((b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    return chunks


def encode_png16(
    array: np.ndarray,
    icc: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    exif: bytes | None = None,
) -> bytes:
    """Encode an ``(H, W, C)`` uint16 array as a 16-bit PNG (C = 2 gray+alpha, 3 RGB, 4 RGBA),
    with an ICC profile, resolution and EXIF where given."""
    height, width, channels = array.shape
    writer = png.Writer(
        width,
        height,
        greyscale=channels < 3,
        alpha=channels in (2, 4),
        bitdepth=16,
        compression=6,
    )
    buffer = io.BytesIO()
    writer.write(buffer, array.reshape(height, width * channels))
    extra = _extra_chunks(icc, dpi, exif)
    if not extra:
        return buffer.getvalue()
    chunks = list(png.Reader(bytes=buffer.getvalue()).chunks())
    out = io.BytesIO()
    png.write_chunks(out, [chunks[0], *extra, *chunks[1:]])  # right after IHDR
    return out.getvalue()
