"""The pieces behind the page, put together: catalog -> processor -> one job queue, over one
private work folder. Started and stopped with the web app (its lifespan)."""

from __future__ import annotations

from contrast_sr.web.catalog import ModelCatalog
from contrast_sr.web.jobs import Job, JobQueue
from contrast_sr.web.process import Processor
from contrast_sr.web.settings import (
    MAX_SCALE,
    JobSettings,
    ServeOptions,
    check_memory_support,
    upscaler_has_memory_budget,
)
from contrast_sr.web.store import Store


class WebService:
    """Everything a request handler needs; ``close()`` stops the worker and deletes the files."""

    def __init__(self, catalog: ModelCatalog, options: ServeOptions) -> None:
        self.catalog, self.options = catalog, options
        self.store = Store()
        self.processor = Processor(catalog, self.store, options)
        self.queue = JobQueue(self.processor, on_remove=self._forget, max_jobs=options.max_jobs)

    def start(self) -> None:
        self.queue.start()

    def close(self) -> None:
        self.queue.close()
        self.store.close()

    def _forget(self, job: Job) -> None:
        self.store.remove(job.id)

    def check(self) -> None:
        """Build the default model's upscaler now, so that a bad device, precision or memory
        budget fails at start (ArgumentError naming it) rather than on the first image."""
        check_memory_support(self.options.max_memory)
        choice = self.catalog.choice(self.catalog.default_key)
        self.processor.upscaler(
            JobSettings(choice.key, choice.scale, max_memory=self.options.max_memory)
        )

    def describe(self) -> dict:
        """What the page needs to draw its controls."""
        return {
            "models": self.catalog.describe(),
            "default_model": self.catalog.default_key,
            "max_scale": MAX_SCALE,
            "max_upload_bytes": self.options.max_upload_bytes,
            "max_pixels": self.options.max_pixels,
            "memory_budget": upscaler_has_memory_budget(),
            "defaults": {
                "tile": "auto",
                "tile_overlap": 32,
                "max_memory": self.options.max_memory or "",
            },
        }
