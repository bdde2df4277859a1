"""Running one job: decode the upload (with the decompression-bomb guard of ``contrast_sr.io``),
upscale it with the public :class:`~contrast_sr.infer.upscaler.Upscaler`, write the result as
the same format and kind as the input, and keep what the comparison view needs."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from pathlib import PurePosixPath

import numpy as np
from torch import Tensor

from contrast_sr.errors import InputError
from contrast_sr.infer.upscaler import Upscaler
from contrast_sr.io import read_image, to_uint8, write_image
from contrast_sr.web.catalog import ModelCatalog
from contrast_sr.web.compare import thumbnail
from contrast_sr.web.jobs import Job, Progress
from contrast_sr.web.settings import JobSettings, ServeOptions
from contrast_sr.web.store import Store

# The extension written for each format read; other formats (GIF, ...) are written as PNG.
_EXTENSIONS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "BMP": ".bmp",
    "TIFF": ".tif",
    "WEBP": ".webp",
}
_SAME = {".jpeg": ".jpg", ".tiff": ".tif"}  # spellings kept when the upload used them


def output_extension(name: str, image_format: str) -> str:
    """The result's extension: the upload's own if it names the format read, else the format's."""
    wanted = _EXTENSIONS.get(image_format, ".png")
    ext = PurePosixPath(name).suffix.lower()
    return ext if _SAME.get(ext, ext) == wanted else wanted


def download_name(name: str, image_format: str, scale: int) -> str:
    """``photo.jpg`` upscaled x4 -> ``photo_x4.jpg``."""
    stem = PurePosixPath(name).stem or "image"
    return f"{stem}_x{scale}{output_extension(name, image_format)}"


def as_uint8(x: Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) uint8."""
    return to_uint8(x).permute(1, 2, 0).contiguous().numpy()


class Processor:
    """The queue's runner. Upscalers are built once per :class:`JobSettings` (a few are kept),
    on models the catalog loads once."""

    def __init__(
        self, catalog: ModelCatalog, store: Store, options: ServeOptions, keep: int = 8
    ) -> None:
        self.catalog, self.store, self.options, self.keep = catalog, store, options, keep
        self._upscalers: collections.OrderedDict[JobSettings, Upscaler] = collections.OrderedDict()
        self._seconds_per_pixel: dict[JobSettings, float] = {}
        self._lock = threading.Lock()

    def upscaler(self, settings: JobSettings) -> Upscaler:
        """The upscaler for ``settings``; building it checks them (ArgumentError naming one)."""
        with self._lock:
            if settings in self._upscalers:
                self._upscalers.move_to_end(settings)
                return self._upscalers[settings]
        upscaler = Upscaler(
            self.catalog.get(settings.model),
            device=self.options.device,
            precision=self.options.precision,
            **settings.upscaler_options(),
        )
        with self._lock:
            upscaler = self._upscalers.setdefault(settings, upscaler)
            while len(self._upscalers) > self.keep:
                self._upscalers.popitem(last=False)
        return upscaler

    def __call__(self, job: Job, progress: Progress) -> dict:
        try:
            x, info = read_image(job.upload, max_pixels=self.options.max_pixels)
        except InputError as exc:  # name the upload, not the private file
            raise InputError(job.name, exc.why) from None
        finally:
            job.upload.unlink(missing_ok=True)
        progress.check()
        upscaler = self.upscaler(job.settings)
        pixels = x.shape[-1] * x.shape[-2]
        rate = self._seconds_per_pixel.get(job.settings)
        progress.expect(None if rate is None else rate * pixels)
        upscaler.progress = progress.phase
        start = time.perf_counter()
        y = upscaler(x)
        seconds = time.perf_counter() - start
        self._seconds_per_pixel[job.settings] = seconds / pixels
        progress.check()
        out_info = dataclasses.replace(info, width=int(y.shape[-1]), height=int(y.shape[-2]))
        extension = output_extension(job.name, info.format)
        write_image(self.store.result_path(job.id, extension), y, out_info)
        source = as_uint8(x)
        self.store.save_array(job.id, "input", source)
        self.store.save_array(job.id, "output", as_uint8(y))
        self.store.save_bytes(job.id, "thumb.png", thumbnail(source))
        return {
            "width": info.width,
            "height": info.height,
            "out_width": out_info.width,
            "out_height": out_info.height,
            "scale": upscaler.scale,
            "kind": info.kind,
            "format": info.format,
            "extension": extension,
            "download": download_name(job.name, info.format, upscaler.scale),
            "tile": upscaler.last_tile,
            "seconds": round(seconds, 3),
        }
