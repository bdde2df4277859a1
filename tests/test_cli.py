"""The command line's shared conventions: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys

from contrast_sr import __version__
from contrast_sr.cli import main

from .conftest import cli_env


def test_version_flag(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_is_usage_error():
    assert main([]) == 2


def test_unknown_flag_is_one_line_usage_error(capsys):
    assert main(["--no-such-flag"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_python_dash_m_matches_console_script():
    out = subprocess.run(
        [sys.executable, "-m", "contrast_sr", "--version"],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert out.returncode == 0 and __version__ in out.stdout
