"""A local web page for upscaling (``contrast-sr serve``; ``pip install contrast-sr[web]``).

Drop images on the page, watch each one's progress, compare the result with bicubic on a crop,
download each result or all of them as a zip. Modules, in the order a job meets them:

- :mod:`.settings` what the server is started with and what the page may ask for;
- :mod:`.catalog` the models offered, each loaded once;
- :mod:`.app` the HTTP routes (Starlette) and the static page in ``static/``;
- :mod:`.jobs` the queue and its one worker thread (progress, cancel);
- :mod:`.process` one job: decode (bomb guard), upscale, write, previews;
- :mod:`.compare` thumbnail and before/after crops;
- :mod:`.store` the private work folder;
- :mod:`.service` these put together; :mod:`.server` uvicorn on a bound socket.

Starlette and uvicorn are imported only by :mod:`.app` and :mod:`.server`.
"""

from __future__ import annotations

WEB_EXTRA_MODULES = ("starlette", "uvicorn")


def missing_modules() -> list[str]:
    """Modules of the ``web`` extra that are not installed."""
    import importlib.util

    return [name for name in WEB_EXTRA_MODULES if importlib.util.find_spec(name) is None]
