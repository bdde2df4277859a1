"""Jobs and their queue: one worker thread runs the jobs in order, the HTTP side reads state.

A job goes ``queued -> running -> done | error | cancelled``. The worker hands the runner a
:class:`Progress` that counts tiles and raises :class:`JobCancelled` at the next tile once a
cancel is asked for. Every failure of a job becomes a one-line message on the job; the worker
itself never stops on one.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contrast_sr.errors import ContrastError

QUEUED, RUNNING, DONE, ERROR, CANCELLED = "queued", "running", "done", "error", "cancelled"
FINISHED = (DONE, ERROR, CANCELLED)


class JobCancelled(Exception):
    """Raised inside a running job when its cancel was asked for."""


class QueueFull(ContrastError):
    """Too many unfinished jobs are waiting."""


@dataclass
class Job:
    """One uploaded image and what became of it."""

    client: str  # the browser tab that sent it
    name: str  # the upload's file name, for display and the download
    upload: Path  # the uploaded bytes in the private work folder
    settings: Any  # a dataclass of the runner's options
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = QUEUED
    tiles_done: int = 0
    tiles_total: int = 0
    expected_seconds: float | None = None  # a guess from earlier jobs, for the untiled ETA
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    result: dict | None = None  # what the runner reports (sizes, download name, ...)
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)
    removed: bool = False

    def eta(self, now: float) -> float | None:
        """Seconds left: extrapolated from the tiles done, else from ``expected_seconds``."""
        if self.state != RUNNING or self.started is None:
            return None
        elapsed = now - self.started
        if self.tiles_total and self.tiles_done:
            return elapsed / self.tiles_done * (self.tiles_total - self.tiles_done)
        if self.expected_seconds is not None:
            return max(self.expected_seconds - elapsed, 0.0)
        return None

    def snapshot(self, now: float, position: int | None = None) -> dict:
        """JSON-ready state for the page."""
        end = self.finished if self.finished is not None else now
        eta = self.eta(now)
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "position": position,
            "tiles_done": self.tiles_done,
            "tiles_total": self.tiles_total,
            "elapsed_s": None if self.started is None else round(end - self.started, 2),
            "eta_s": None if eta is None else round(eta, 1),
            "error": self.error,
            "result": self.result,
            "settings": dataclasses.asdict(self.settings),
        }


class Progress:
    """A running job's tile counter and cancellation point (given to the runner)."""

    def __init__(self, job: Job, lock: threading.Condition) -> None:
        self.job, self._lock = job, lock

    def check(self) -> None:
        """Raise :class:`JobCancelled` if the job's cancel was asked for."""
        if self.job.cancel_requested.is_set():
            raise JobCancelled(self.job.id)

    def phase(self, tiles: int) -> Callable[[], None]:
        """A pass over ``tiles`` tiles begins; returns the per-tile callback."""
        with self._lock:
            self.job.tiles_total += int(tiles)
        return self.tick

    def tick(self) -> None:
        with self._lock:
            self.job.tiles_done += 1
        self.check()

    def expect(self, seconds: float | None) -> None:
        self.job.expected_seconds = seconds


Runner = Callable[[Job, Progress], dict]


def describe_failure(exc: BaseException) -> str:
    """One line for the page."""
    if isinstance(exc, ContrastError):
        return exc.message
    if isinstance(exc, MemoryError):
        return "out of memory: the image does not fit in RAM (try smaller tiles)"
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return f"unexpected {type(exc).__name__}: {detail}"


class JobQueue:
    """Jobs in submission order, run one at a time by one worker thread.

    ``on_remove(job)`` is called once a job is dropped (removed by the user, evicted past
    ``max_jobs``, or at close) and no longer running, to free its files.
    """

    def __init__(
        self,
        runner: Runner,
        on_remove: Callable[[Job], None] | None = None,
        max_jobs: int = 200,
    ) -> None:
        self._runner, self._on_remove, self.max_jobs = runner, on_remove, max_jobs
        self._lock = threading.Condition()
        self._jobs: dict[str, Job] = {}  # every known job, in submission order
        self._pending: collections.deque[Job] = collections.deque()
        self._current: Job | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="contrast-sr-jobs", daemon=True)

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Cancel everything, wait for the running job to stop, drop every job."""
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
            for job in jobs:
                job.cancel_requested.set()
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for job in jobs:
            self._drop(job)

    # -- the HTTP side -----------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        with self._lock:
            if self._closed:
                raise ContrastError("server", "is shutting down")
            self._evict()
            if len(self._jobs) >= self.max_jobs:
                raise QueueFull("queue", f"{self.max_jobs} jobs are waiting; try again later")
            self._jobs[job.id] = job
            self._pending.append(job)
            self._lock.notify_all()
        return job

    def get(self, job_id: str) -> Job:
        """The job (KeyError if unknown or removed)."""
        with self._lock:
            return self._jobs[job_id]

    def jobs(self, client: str | None = None) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if client is None or j.client == client]

    def snapshot(self, job: Job) -> dict:
        with self._lock:
            position = None
            if job.state == QUEUED:
                position = self._pending.index(job) + (self._current is not None)
            return job.snapshot(time.monotonic(), position)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job now, a running one at its next tile; finished ones stay."""
        with self._lock:
            job = self._jobs[job_id]
            job.cancel_requested.set()
            if job.state == QUEUED:
                self._pending.remove(job)
                job.state, job.finished = CANCELLED, time.monotonic()
            return job

    def remove(self, job_id: str) -> None:
        """Forget a job and free its files (after it stops, if it is running)."""
        with self._lock:
            job = self._jobs.pop(job_id)
            job.removed = True
            job.cancel_requested.set()
            if job.state == QUEUED:
                self._pending.remove(job)
            running = job is self._current
        if not running:
            self._drop(job)

    # -- the worker --------------------------------------------------------------------------
    def _evict(self) -> None:
        """Drop the oldest finished jobs beyond ``max_jobs - 1`` (lock held)."""
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        while len(self._jobs) >= self.max_jobs and finished:
            job = finished.pop(0)
            del self._jobs[job.id]
            job.removed = True
            self._drop(job)

    def _drop(self, job: Job) -> None:
        if self._on_remove is not None:
            self._on_remove(job)

    def _next(self) -> Job | None:
        with self._lock:
            while not self._pending and not self._closed:
                self._lock.wait()
            if self._closed:
                return None
            job = self._pending.popleft()
            job.state, job.started = RUNNING, time.monotonic()
            self._current = job
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            progress = Progress(job, self._lock)
            state, error, result = DONE, None, None
            try:
                progress.check()
                result = self._runner(job, progress)
                progress.check()
            except JobCancelled:
                state = CANCELLED
            except Exception as exc:  # any failure (MemoryError too) is the job's, not the server's
                state, error = ERROR, describe_failure(exc)
            with self._lock:
                job.state, job.error, job.result = state, error, result
                job.finished = time.monotonic()
                self._current = None
                removed = job.removed
            if removed:
                self._drop(job)
