"""Image I/O that never surprises: every kind in, the same kind back out, one-line errors.

``read_image(path) -> (tensor, info)`` reads PNG, BMP, JPEG, TIFF and WebP files, 8- or 16-bit,
gray, gray+alpha, RGB, RGBA, palette and CMYK, and returns a float32 tensor ``(C, H, W)`` in
[0, 1]:

- ``C = 1`` gray, ``C = 3`` RGB, plus one last alpha channel when the file has one (``C = 2``
  or ``4``); ``info.channels`` is the number of colour channels, ``info.has_alpha`` says whether
  the last channel is alpha (see :func:`split_alpha`).
- palette images become RGB (RGBA if the palette has transparency), CMYK / YCbCr / LAB become
  RGB, bilevel becomes gray; EXIF orientation is applied so pixels are upright.
- 16-bit files keep their precision (divided by 65535), interlaced PNGs included.

``write_image(path, tensor, info)`` writes a tensor in [0, 1] atomically, in the format named by
the file extension, as the same kind of image ``info`` describes: gray stays gray, 16-bit stays
16-bit where the format can hold it (PNG and TIFF), alpha is kept where the format has it (not
JPEG or BMP: there the image is composited onto a background, white by default, so colours
hidden under transparent pixels never show), and the ICC colour profile, EXIF and DPI are
carried over (:mod:`.metadata`; ``ImageInfo.resized`` scales the DPI with the image). WebP has
no gray: gray is stored as RGB there.

Any file that cannot be read raises :class:`~contrast_sr.errors.InputError` with one line naming
the file and the reason; images larger than ``max_pixels`` are refused before decoding
(decompression-bomb guard).

Codecs. Pillow does everything it keeps at full precision: 8-bit kinds and 16-bit gray PNG.
Pillow reduces 16-bit colour to 8 bits, so two small pure-Python libraries, both depending on
numpy only, do the rest:

- 16-bit PNG with colour or alpha: ``pypng`` (:mod:`.png16`; a 58 KB wheel), the reference
  pure-Python PNG codec: every colour type and bit depth, Adam7 interlacing.
- 16-bit TIFF (gray, gray+alpha, RGB, RGBA): ``tifffile`` (:mod:`.tiff16`; a 0.25 MB wheel),
  kept up to date by its author with monthly releases. Without the optional ``imagecodecs`` it
  decodes uncompressed, Deflate, PackBits and LZMA TIFFs; LZW/JPEG-compressed 16-bit TIFFs are
  read by Pillow as before (gray at 16 bits, colour at 8) unless ``imagecodecs`` is installed.

OpenCV's headless build (a 61 MB wheel, 150 MB installed) would cover both formats in C, but it
cannot write 16-bit gray+alpha PNG, drops ICC profiles and clashes with other ``opencv-*``
builds installed in the same environment; ``imagecodecs`` (26 MB) needs Python 3.11 for current
wheels and prints libpng warnings for interlaced files.
"""

from contrast_sr.io.image import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageInfo,
    format_keeps_alpha,
    list_images,
    read_image,
    split_alpha,
    standard_mode,
    write_image,
)
from contrast_sr.io.pixels import to_uint8

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "ImageInfo",
    "format_keeps_alpha",
    "list_images",
    "read_image",
    "split_alpha",
    "standard_mode",
    "to_uint8",
    "write_image",
]
