"""Shared pieces of the ``contrast-sr serve`` tests: small images, a stand-in model that can be
held mid-job, and polling a job until it finishes."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import torch
from PIL import Image

from ._tiny_models import TinySR

ACTIVE = ("queued", "running")


def image_bytes(mode: str = "RGB", size: tuple[int, int] = (24, 24), fmt: str = "PNG") -> bytes:
    """A small random image of ``mode`` ("I;16": 16-bit gray) as file bytes."""
    rng = np.random.default_rng(0)
    w, h = size
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    else:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    img.save(buffer, format=fmt)
    return buffer.getvalue()


def wait_for(client, job_id: str, states=None, timeout: float = 30.0) -> dict:
    """Poll the job until it leaves the active states (or reaches one of ``states``)."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if (job["state"] in states) if states else job["state"] not in ACTIVE:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job still {job['state']} after {timeout} s: {job}")
        time.sleep(0.02)


class GatedSR(TinySR):
    """TinySR whose forward waits for ``gate`` (set ``entered`` first): holds a job running."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__(scale)
        self.entered, self.gate = threading.Event(), threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.entered.set()
        self.gate.wait(10)
        return super().forward(x)
