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


def test_models_says_which_variants_have_weights(capsys, monkeypatch):
    import json

    from contrast_sr.models import registry

    monkeypatch.setattr(registry, "list_models", lambda: ["contrast_tiny", "contrast_light"])
    assert main(["models", "--json"]) == 0
    weights = {m["name"]: m["weights"] for m in json.loads(capsys.readouterr().out)["models"]}
    assert weights["contrast_tiny"] == [2, 3, 4] and weights["contrast_light"] == []
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "weights" in lines[0].split()
    tiny = next(line.split() for line in lines if line.startswith("contrast_tiny "))
    assert tiny[1] == "107,792" and "x4" in tiny[2]


def test_missing_weights_error_reads_as_one_sentence(tmp_path, capsys):
    """The docs' `features --model contrast_light` without --random-init: what is missing,
    what ships, what to do."""
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    argv = ["features", "--model", "contrast_light", "--image", str(tmp_path / "a.png")]
    assert main([*argv, "-o", str(tmp_path / "f.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    head = "error: model 'contrast_light' has no bundled weights for x4: weights ship only for "
    assert err[0].startswith(head) and "contrast_tiny x4" in err[0]
    assert err[0].endswith("; pass a checkpoint path, or --random-init for untrained weights")
