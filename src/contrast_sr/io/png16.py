"""16-bit PNG with colour or alpha (colour types 2, 4, 6), through ``pypng``.

Pillow reduces these to 8 bits, so they are read and written here with pypng, which handles
every colour type, bit depth and Adam7 interlacing. 16-bit gray without alpha stays with Pillow
(its C decoder is faster and keeps the 16 bits). pypng has no ICC support: the ``iCCP`` chunk is
read from and inserted into the chunk stream with pypng's chunk functions.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import png

#: pypng's error base class: malformed chunks, bad filters, truncated data.
PngError = png.Error

_ICC_NAME = b"ICC profile"


def read_png16(path: Path) -> tuple[np.ndarray, bool, bytes | None]:
    """Decode ``path`` -> ``(H, W, C)`` uint16 array, has_alpha, ICC profile (or ``None``)."""
    data = path.read_bytes()
    width, height, rows, meta = png.Reader(bytes=data).read()
    planes = meta["planes"]
    array = np.empty((height, width * planes), np.uint16)
    for y, row in enumerate(rows):  # pypng raises on missing or damaged data
        array[y] = row
    return array.reshape(height, width, planes), bool(meta["alpha"]), _icc_profile(data)


def _icc_profile(data: bytes) -> bytes | None:
    for kind, body in png.Reader(bytes=data).chunks():
        if kind == b"iCCP":
            name_end = body.find(b"\x00")
            return zlib.decompress(body[name_end + 2 :]) if name_end >= 0 else None
        if kind == b"IDAT":  # the profile must come before the image data
            return None
    return None


def encode_png16(array: np.ndarray, icc: bytes | None = None) -> bytes:
    """Encode an ``(H, W, C)`` uint16 array as a 16-bit PNG (C = 2 gray+alpha, 3 RGB, 4 RGBA)."""
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
    if not icc:
        return buffer.getvalue()
    chunks = list(png.Reader(bytes=buffer.getvalue()).chunks())
    iccp = (b"iCCP", _ICC_NAME + b"\x00\x00" + zlib.compress(icc))
    out = io.BytesIO()
    png.write_chunks(out, [chunks[0], iccp, *chunks[1:]])  # right after IHDR
    return out.getvalue()
