"""The HTTP side: one static page and a small JSON API (Starlette).

=========================================  ===========================================
``GET /`` (+ ``/app.js``, ``/style.css``)  the page, from the package's ``static/``
``GET /api/config``                        models, scales, limits, defaults
``POST /api/jobs?name=&client=&...``       the body is one image file; -> the job (201)
``GET /api/jobs?client=``                  the tab's jobs
``GET|DELETE /api/jobs/{id}``              one job / forget it (and its files)
``POST /api/jobs/{id}/cancel``             stop it (queued: now; running: at the next tile)
``GET /api/jobs/{id}/result``              the result, as the input's format and kind
``GET /api/jobs/{id}/thumb``               the input, small (PNG)
``GET /api/jobs/{id}/crop?method=&x=&y=``  a crop of the result or of bicubic (PNG)
``GET /api/results.zip?ids=a,b``           finished results in one zip
=========================================  ===========================================

No route takes a file path: jobs are named by random ids, and files exist only in the private
work folder (:mod:`.store`). Changes (upload, cancel, delete) from another site's page are
refused (``Origin``); ``ServeOptions.allowed_hosts`` limits the ``Host`` names answered.
Uploads are streamed to disk and refused past ``max_upload_bytes`` before anything is decoded;
handlers only read job state, so they answer while the worker thread runs a job. Errors are
``{"error": "<one line>"}``.
"""

from __future__ import annotations

import contextlib
import uuid
from importlib import resources
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from contrast_sr.errors import ArgumentError, ContrastError, UsageError
from contrast_sr.web import compare
from contrast_sr.web.catalog import ModelCatalog
from contrast_sr.web.jobs import DONE, Job, QueueFull
from contrast_sr.web.service import WebService
from contrast_sr.web.settings import ServeOptions, clean_client, clean_name, parse_settings

_STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
_MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".bmp": "image/bmp"}
_MEDIA |= {".tif": "image/tiff", ".tiff": "image/tiff", ".webp": "image/webp"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _service(request: Request) -> WebService:
    return request.app.state.service


def _job(request: Request) -> Job:
    try:
        return _service(request).queue.get(request.path_params["job_id"])
    except KeyError:
        raise HTTPException(404, "no such job (it may have been removed)") from None


def _check_origin(request: Request) -> None:
    """Refuse changes asked by another web site's page (a cross-site form or fetch): browsers
    name the page's origin on such requests, and it must be this server."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, f"requests from {origin} are not accepted")


def _static(name: str):
    async def endpoint(request: Request) -> Response:
        body = resources.files("contrast_sr.web").joinpath("static", name).read_bytes()
        return Response(body, media_type=_STATIC[name], headers=_PAGE_HEADERS)

    return endpoint


async def config(request: Request) -> JSONResponse:
    return JSONResponse(_service(request).describe())


async def list_jobs(request: Request) -> JSONResponse:
    queue = _service(request).queue
    client = clean_client(request.query_params.get("client"))
    return JSONResponse({"jobs": [queue.snapshot(job) for job in queue.jobs(client)]})


async def upload(request: Request) -> JSONResponse:
    _check_origin(request)
    service = _service(request)
    params = request.query_params
    settings = parse_settings(params, service.catalog, service.options)
    await run_in_threadpool(service.processor.upscaler, settings)  # checks the values
    name, client = clean_name(params.get("name")), clean_client(params.get("client"))
    limit = service.options.max_upload_bytes
    too_large = f"{name}: too large: the limit is {limit / 1024**2:.0f} MB per image"
    with contextlib.suppress(ValueError):
        if int(request.headers.get("content-length", "0")) > limit:
            return _error(413, too_large)
    job_id = uuid.uuid4().hex
    job = Job(client, name, service.store.upload_path(job_id), settings, id=job_id)
    size = 0
    with open(job.upload, "wb") as handle:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                break
            handle.write(chunk)
    if size > limit or size == 0:
        service.store.remove(job.id)
        return _error(413, too_large) if size else _error(400, f"{name}: the file is empty")
    try:
        service.queue.submit(job)
    except ContrastError as exc:
        service.store.remove(job.id)
        return _error(429 if isinstance(exc, QueueFull) else 503, exc.message)
    return JSONResponse(service.queue.snapshot(job), status_code=201)


async def job_state(request: Request) -> Response:
    job, queue = _job(request), _service(request).queue
    if request.method == "DELETE":
        _check_origin(request)
        with contextlib.suppress(KeyError):
            queue.remove(job.id)
        return Response(status_code=204)
    return JSONResponse(queue.snapshot(job))


async def cancel(request: Request) -> JSONResponse:
    _check_origin(request)
    job, queue = _job(request), _service(request).queue
    with contextlib.suppress(KeyError):
        queue.cancel(job.id)
    return JSONResponse(queue.snapshot(job))


def _done(request: Request) -> Job:
    job = _job(request)
    if job.state != DONE:
        raise HTTPException(409, f"{job.name}: not finished ({job.state})")
    return job


async def result(request: Request) -> FileResponse:
    job = _done(request)
    path = _service(request).store.result_path(job.id, job.result["extension"])
    media = _MEDIA.get(job.result["extension"], "application/octet-stream")
    return FileResponse(path, media_type=media, filename=job.result["download"])


def _int_param(request: Request, key: str, default: int | None = None) -> int:
    value = request.query_params.get(key)
    if value is None and default is not None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise HTTPException(400, f"{key}: expected a whole number, got {value!r}") from None


def thumb(request: Request) -> Response:
    job = _done(request)
    data = _service(request).store.read_bytes(job.id, "thumb.png")
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})


def crop(request: Request) -> Response:
    job, store = _done(request), _service(request).store
    method = request.query_params.get("method", "model")
    if method not in compare.METHODS:
        raise HTTPException(400, f"method: choose from {', '.join(compare.METHODS)}")
    x, y = _int_param(request, "x"), _int_param(request, "y")
    info = job.result
    box = compare.fit_box(x, y, _int_param(request, "size", 64), info["width"], info["height"])
    scale = info["out_width"] // info["width"]
    if method == "model":
        pixels = compare.model_crop(store.load_array(job.id, "output"), box, scale)
    else:
        pixels = compare.bicubic_crop(store.load_array(job.id, "input"), box, scale)
    headers = {"Cache-Control": "private, max-age=600"}
    return Response(compare.png_bytes(pixels), media_type="image/png", headers=headers)


def results_zip(request: Request) -> FileResponse:
    service = _service(request)
    entries = []
    for job_id in request.query_params.get("ids", "").split(","):
        with contextlib.suppress(KeyError):
            job = service.queue.get(job_id.strip())
            if job.state == DONE:
                path = service.store.result_path(job.id, job.result["extension"])
                entries.append((path, job.result["download"]))
    if not entries:
        raise HTTPException(404, "no finished results among these jobs")
    archive = service.store.zip(entries)
    return FileResponse(
        archive,
        media_type="application/zip",
        filename="contrast-sr-results.zip",
        background=BackgroundTask(archive.unlink, missing_ok=True),
    )


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return _error(exc.status_code, str(exc.detail))


async def _contrast_error(request: Request, exc: ContrastError) -> JSONResponse:
    """Bad settings from the page (400, naming the setting); other library errors (500)."""
    if isinstance(exc, ArgumentError):
        return _error(400, f"{exc.argument.replace('_', ' ')}: {exc.why}")
    return _error(400 if isinstance(exc, UsageError) else 500, exc.message)


def create_app(catalog: ModelCatalog, options: ServeOptions | None = None) -> Starlette:
    """The web app; its lifespan starts the job worker and, at the end, deletes every file.

    Bad server options (device, precision, memory budget) raise here, naming the option.
    """
    options = options or ServeOptions()
    service = WebService(catalog, options)
    try:
        service.check()
    except BaseException:
        service.close()
        raise

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        service.start()
        try:
            yield
        finally:
            service.close()

    job = "/api/jobs/{job_id:str}"
    routes = [
        Route("/", _static("index.html")),
        *(Route(f"/{name}", _static(name)) for name in _STATIC if name != "index.html"),
        Route("/api/config", config),
        Route("/api/jobs", list_jobs, methods=["GET"]),
        Route("/api/jobs", upload, methods=["POST"]),
        Route(job, job_state, methods=["GET", "DELETE"]),
        Route(f"{job}/cancel", cancel, methods=["POST"]),
        Route(f"{job}/result", result),
        Route(f"{job}/thumb", thumb),
        Route(f"{job}/crop", crop),
        Route("/api/results.zip", results_zip),
    ]
    middleware = []
    if options.allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=options.allowed_hosts))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, ContrastError: _contrast_error},
    )
    app.state.service = service
    return app
