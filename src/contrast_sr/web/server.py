"""Serving the app with uvicorn on a socket bound first, so that the address is known (and a
busy port is a clean error) before the server starts."""

from __future__ import annotations

import ipaddress
import socket

from contrast_sr.errors import ArgumentError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (the page is then this machine's only)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> tuple[str, ...] | None:
    """Host headers to accept: on a loopback address only its own names, which keeps other web
    sites from reaching the server through DNS rebinding; elsewhere any (None)."""
    if not is_loopback(host):
        return None
    return tuple(dict.fromkeys((host, *LOOPBACK_NAMES, "[::1]")))


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ArgumentError("host", f"cannot resolve {host!r} ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ArgumentError(
            "port",
            f"cannot listen on {host}:{port} ({exc.strerror}); try another port, or 0 for any",
        ) from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def make_server(app, log_level: str = "warning"):
    """A ``uvicorn.Server`` for ``app`` (``server.should_exit = True`` stops it)."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def run(app, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve ``app`` on ``sock`` until interrupted (Ctrl-C stops it gracefully)."""
    make_server(app, log_level).run(sockets=[sock])
