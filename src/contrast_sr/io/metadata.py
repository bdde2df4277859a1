"""What travels with the pixels: the ICC colour profile, EXIF and the print resolution (DPI).

- ICC: kept as is (dropped where the pixels change colour space: CMYK, LAB, YCbCr -> RGB).
- EXIF (from JPEG, PNG and WebP files, where Pillow has it as bytes): kept; the orientation tag
  is gone once the pixels were turned upright, and the pixel dimensions (``PixelXDimension``,
  ``PixelYDimension``) are set to the new size (:func:`exif_for_size`).
- DPI: scaled with the image (:func:`scaled_dpi`), so a 300 dpi photo upscaled x4 is a
  1200 dpi image of the same printed size.

``save_options(fmt, ...)`` turns them into Pillow ``save`` keywords for the formats that hold
them (ICC: PNG, JPEG, TIFF, WebP; EXIF: PNG, JPEG, TIFF, WebP; DPI: PNG, JPEG, TIFF, BMP).
"""

from __future__ import annotations

import contextlib

from PIL import ExifTags, Image

_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003  # PixelXDimension, PixelYDimension (Exif IFD)
ICC_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP")
EXIF_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP")
DPI_FORMATS = ("PNG", "JPEG", "TIFF", "BMP")

Dpi = tuple[float, float]


def exif_bytes(info: dict) -> bytes | None:
    """The EXIF block of a Pillow image's ``info`` (``None`` if there is none)."""
    data = info.get("exif")
    return data if isinstance(data, bytes) and data else None


def dpi_of(info: dict) -> Dpi | None:
    """The (x, y) resolution in dots per inch from a Pillow ``info`` (``None`` if unset)."""
    dpi = info.get("dpi")
    with contextlib.suppress(TypeError, ValueError):
        x, y = (float(v) for v in dpi)
        if x > 0 and y > 0:
            return round(x, 4), round(y, 4)
    return None


def scaled_dpi(dpi: Dpi | None, fx: float, fy: float) -> Dpi | None:
    """``dpi`` for an image resized by ``fx`` x ``fy``: the printed size stays the same."""
    if dpi is None:
        return None
    return round(dpi[0] * fx, 4), round(dpi[1] * fy, 4)


def exif_for_size(data: bytes | None, width: int, height: int) -> bytes | None:
    """``data`` with the EXIF pixel dimensions set to ``width`` x ``height`` where it has them.

    EXIF that Pillow cannot parse is passed on unchanged."""
    if not data:
        return None
    try:
        exif = Image.Exif()
        exif.load(data)
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
        if _PIXEL_X not in ifd and _PIXEL_Y not in ifd:
            return data
        if _PIXEL_X in ifd:
            ifd[_PIXEL_X] = int(width)
        if _PIXEL_Y in ifd:
            ifd[_PIXEL_Y] = int(height)
        return exif.tobytes()
    except Exception:  # malformed EXIF: not ours to repair
        return data


def save_options(
    fmt: str, icc: bytes | None, exif: bytes | None, dpi: Dpi | None
) -> dict[str, object]:
    """Pillow ``save`` keywords that write the metadata ``fmt`` can hold."""
    options: dict[str, object] = {}
    if icc and fmt in ICC_FORMATS:
        options["icc_profile"] = icc
    if exif and fmt in EXIF_FORMATS:
        options["exif"] = exif
    if dpi and fmt in DPI_FORMATS:
        options["dpi"] = (round(dpi[0]), round(dpi[1])) if fmt == "JPEG" else dpi
    return options
