"""The ``jr2net`` command as a person runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jr2net.cli import main


def _jr2net(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jr2net.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", [[], ["assets"], ["assets", "build-ict"], ["render"]])
def test_help(command: list[str]) -> None:
    result = _jr2net(*command, "--help")
    assert result.returncode == 0 and "usage: jr2net" in result.stdout


def test_render_writes_a_shaded_face_and_maps(tmp_path: Path) -> None:
    output = tmp_path / "face.png"
    result = _jr2net(
        "render", "--expression", "jawOpen=0.8", "--yaw", "20", "--size", "160", "-o", str(output), "--maps"
    )
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(output))
    assert image.shape == (160, 160, 3)
    background = (image == image[0, 0]).all(axis=-1)
    assert 0.2 < 1 - background.mean() < 0.8
    face = image[~background].astype(float)
    assert face[:, 0].mean() > face[:, 2].mean() > 20, "skin tone: more red than blue"
    assert face.std(axis=0).min() > 10, "shading varies over the face"
    for suffix in ("normal", "depth", "light"):
        assert Image.open(tmp_path / f"face_{suffix}.png").size == (160, 160)


def test_jaw_open_changes_the_mouth(tmp_path: Path) -> None:
    closed, opened = tmp_path / "closed.png", tmp_path / "open.png"
    assert main(["render", "--size", "96", "-o", str(closed)]) == 0
    assert main(["render", "--size", "96", "--expression", "jawOpen=1", "-o", str(opened)]) == 0
    difference = np.abs(np.asarray(Image.open(closed), float) - np.asarray(Image.open(opened), float)).sum(-1)
    rows = np.nonzero(difference.max(axis=1) > 30)[0]
    assert rows.size and rows.mean() > 96 / 2, "the change is in the lower half of the face"


def test_bad_expression_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--expression", "grin=1", "-o", str(tmp_path / "x.png")]) == 1
    assert "unknown expression 'grin'" in capsys.readouterr().err
    assert main(["render", "--expression", "jawOpen", "-o", str(tmp_path / "x.png")]) == 1
    assert "NAME=WEIGHT" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
