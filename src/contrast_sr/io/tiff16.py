"""16-bit TIFF (gray, gray+alpha, RGB, RGBA), through ``tifffile``.

Pillow reads 16-bit colour TIFFs at 8 bits and cannot open 16-bit gray+alpha ones, so every
16-bit unsigned gray or RGB TIFF is decoded here with tifffile. Without the optional
``imagecodecs`` package tifffile decodes uncompressed, Deflate, PackBits and LZMA data (with or
without the horizontal predictor); a TIFF it cannot decode here (LZW, JPEG, other photometric
kinds or sample formats) is left to Pillow, as before: 16-bit gray, 8-bit colour.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
from tifffile import PHOTOMETRIC, SAMPLEFORMAT, TIFF

_SIGNATURES = (b"II*\x00", b"MM\x00*")
_UNASSOCIATED_ALPHA = 2


def is_tiff(head: bytes) -> bool:
    """Whether the file's first bytes are a (classic) TIFF signature."""
    return head[:4] in _SIGNATURES


def read_tiff16(
    path: Path, check_size: Callable[[int, int], None]
) -> tuple[np.ndarray, bool, dict] | None:
    """Decode a 16-bit TIFF -> ``(H, W, C)`` uint16 array (upright), has_alpha, and a dict
    with its ``icc`` profile and ``dpi`` where it has them.

    Returns ``None`` when the file is not a 16-bit gray/RGB TIFF that tifffile can decode here
    (the caller reads it with Pillow then). ``check_size(width, height)`` runs before decoding.
    """
    try:
        tif = tifffile.TiffFile(path)
    except Exception:  # not a TIFF tifffile can parse: Pillow decides and reports the error
        return None
    with tif:
        page = tif.pages[0]
        kind = _kind(page)
        if kind is None:
            return None
        check_size(page.imagewidth, page.imagelength)
        array = page.asarray()
        if page.axes.startswith("S"):  # planar: (S, H, W)
            array = np.moveaxis(array, 0, -1)
        if array.ndim == 2:
            array = array[..., None]
        orientation = page.tags.valueof(274, 1)
        array = _upright(array, orientation)
        meta = {"icc": page.iccprofile or None, "dpi": _dpi(page, orientation in (5, 6, 7, 8))}
        return np.ascontiguousarray(array, np.uint16), kind, meta


def _dpi(page: tifffile.TiffPage, swapped: bool) -> tuple[float, float] | None:
    """(x, y) dots per inch from the resolution tags (``None`` without a unit or values)."""
    unit = page.tags.valueof(296, 2)  # 2 inch, 3 centimetre, 1 none
    per_inch = {2: 1.0, 3: 2.54}.get(unit)
    try:
        x, y = (n / d for n, d in (page.tags.valueof(282), page.tags.valueof(283)))
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if per_inch is None or x <= 0 or y <= 0:
        return None
    x, y = round(x * per_inch, 4), round(y * per_inch, 4)
    return (y, x) if swapped else (x, y)


def _kind(page: tifffile.TiffPage) -> bool | None:
    """has_alpha for a page this module decodes, else ``None``."""
    if page.bitspersample != 16 or page.sampleformat != SAMPLEFORMAT.UINT:
        return None
    if page.compression not in TIFF.DECOMPRESSORS or page.predictor not in TIFF.UNPREDICTORS:
        return None
    colours = {PHOTOMETRIC.MINISBLACK: 1, PHOTOMETRIC.RGB: 3}.get(page.photometric)
    if colours is None or page.axes not in ("YX", "YXS", "SYX"):
        return None
    extra = tuple(page.extrasamples)
    if page.samplesperpixel == colours and not extra:
        return False
    if page.samplesperpixel == colours + 1 and extra == (_UNASSOCIATED_ALPHA,):
        return True
    return None


def _upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply the TIFF/EXIF orientation tag (as ``PIL.ImageOps.exif_transpose``)."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(array, -1)
    if orientation == 7:
        return array[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(array, 1)
    return array


def write_tiff16(
    path: str,
    array: np.ndarray,
    icc: bytes | None = None,
    dpi: tuple[float, float] | None = None,
) -> None:
    """Write an ``(H, W, C)`` uint16 array as a Deflate-compressed 16-bit TIFF (C = 2 or 4:
    the last channel is alpha), with an ICC profile and resolution (dots per inch) if given."""
    channels = array.shape[-1]
    tifffile.imwrite(
        path,
        array[..., 0] if channels == 1 else array,
        photometric="minisblack" if channels < 3 else "rgb",
        planarconfig="contig" if channels > 1 else None,
        extrasamples=["unassalpha"] if channels in (2, 4) else None,
        compression="zlib",
        iccprofile=icc or None,
        resolution=dpi,
        resolutionunit="INCH" if dpi else None,
        metadata=None,
    )
