"""``contrast-sr serve``: flags, one-line errors, and a real server started and stopped."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from contrast_sr import web
from contrast_sr.cli import main
from contrast_sr.web import server

from .conftest import cli_env

needs_web = pytest.mark.skipif(
    bool(web.missing_modules()), reason="the web extra (starlette, uvicorn) is not installed"
)


def test_serve_is_listed_and_documents_its_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for flag in ("--host", "--port", "--model", "--open", "--threads", "--max-upload-mb"):
        assert flag in out


def test_missing_web_extra_is_one_line_with_the_install_command(monkeypatch, capsys):
    monkeypatch.setattr(web, "missing_modules", lambda: ["uvicorn"])
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'contrast-sr[web]'" in err[0]


@needs_web
def test_busy_port_is_a_usage_error_naming_the_flag(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --port: cannot listen on 127.0.0.1:{port}")


def test_loopback_hosts_only_answer_their_own_names():
    assert server.is_loopback("127.0.0.1") and server.is_loopback("localhost")
    assert not server.is_loopback("0.0.0.0")
    assert "localhost" in server.allowed_hosts("127.0.0.1")
    assert server.allowed_hosts("0.0.0.0") is None


@needs_web
def test_serve_command_serves_the_page_and_stops_cleanly(tmp_path):
    env = {**cli_env(), "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "contrast_sr", "serve", "--port", "0", "--threads", "1"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        with urllib.request.urlopen(match.group(0) + "/api/config", timeout=20) as response:
            config = json.load(response)
        with urllib.request.urlopen(match.group(0) + "/", timeout=20) as response:
            page = response.read().decode()
        assert config["default_model"] == "bundled-x4" and "<title>Contrast-SR</title>" in page
        assert [p.name[:18] for p in tmp_path.iterdir()] == ["contrast-sr-serve-"]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0
    assert list(tmp_path.iterdir()) == []  # the private work folder is gone
