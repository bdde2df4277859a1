"""``contrast-sr serve``: a local web page for upscaling (``pip install contrast-sr[web]``)."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Serve a web page for upscaling on this machine: drop or pick images, choose the model, scale,
self-ensemble and tiling, follow each image's progress, compare the result with bicubic on a
crop, and download each result (same format and kind as the input) or all as a zip. Listens on
127.0.0.1 (this machine only) unless --host says otherwise. Uploads live in a private temporary
folder that is deleted when the server stops. Needs the web extra:
pip install 'contrast-sr[web]'."""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve", help="a local web page: drop images, compare, download", description=DESCRIPTION
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="M",
        help="registered name or checkpoint path offered besides the bundled models (repeatable)",
    )
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads")
    p.add_argument(
        "--max-memory", default=None, metavar="BYTES", help="the page's default memory budget"
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=100.0,
        metavar="MB",
        help="larger uploads are refused before decoding (default 100)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="images with more pixels are refused (default: the upscale command's limit)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from contrast_sr.errors import UsageError
    from contrast_sr.web import missing_modules

    missing = missing_modules()
    if missing:
        raise UsageError(
            "serve",
            f"needs the web extra ({', '.join(missing)} missing): pip install 'contrast-sr[web]'",
        )
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads", f"must be >= 1, got {args.threads}")
    if args.max_upload_mb <= 0:
        raise UsageError("--max-upload-mb", f"must be > 0, got {args.max_upload_mb}")
    if args.max_pixels is not None and args.max_pixels < 1:
        raise UsageError("--max-pixels", f"must be >= 1, got {args.max_pixels}")

    import torch

    from contrast_sr.io import MAX_PIXELS
    from contrast_sr.web import server
    from contrast_sr.web.app import create_app
    from contrast_sr.web.catalog import catalog_from_specs
    from contrast_sr.web.settings import ServeOptions

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    options = ServeOptions(
        device=args.device,
        precision=args.precision,
        max_upload_bytes=int(args.max_upload_mb * 1024**2),
        max_pixels=args.max_pixels or MAX_PIXELS,
        max_memory=args.max_memory,
        allowed_hosts=server.allowed_hosts(args.host),
    )
    sock = server.bind(args.host, args.port)
    try:
        app = create_app(catalog_from_specs(args.model), options)
    except BaseException:
        sock.close()
        raise
    url = server.url_of(sock)
    if not server.is_loopback(args.host):
        print(
            f"warning: listening on {args.host}: anyone who can reach this machine can use the "
            "page (use --host 127.0.0.1 to keep it local)",
            file=sys.stderr,
        )
    print(f"Contrast-SR is serving {url} (Ctrl-C to stop)", flush=True)
    if args.open:
        import threading
        import webbrowser

        threading.Timer(0.5, webbrowser.open, [url]).start()
    try:
        server.run(app, sock)
    except KeyboardInterrupt:  # uvicorn stops gracefully, then passes Ctrl-C on: the normal end
        pass
    finally:
        app.state.service.close()
        sock.close()
    return 0
