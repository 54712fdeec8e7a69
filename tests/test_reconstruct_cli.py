"""``jr2net reconstruct`` on a real photo and a real clip, and on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jr2net.cli import main
from jr2net.media import iter_video_frames, probe_video
from jr2net.params import FaceParams


def test_photo(shared_media: Path, tmp_path: Path) -> None:
    photo = shared_media / "liveportrait/source/s12.jpg"
    assert main(["reconstruct", str(photo), "-o", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out/params.json").read_text())
    frame = data["frames"][0]
    assert frame["index"] == 0 and frame["face"] is True
    params = FaceParams.from_json(frame["params"])
    assert params.identity.shape == (1, 100) and params.expression.shape == (1, 53)
    points = np.array(frame["landmarks68_2d"])
    assert points.shape == (68, 2)
    assert (points[:, 0] > 0).all() and (points[:, 0] < 375).all() and (points[:, 1] < 500).all()
    mesh = (tmp_path / "out/mesh.obj").read_text().splitlines()
    assert sum(line.startswith("v ") for line in mesh) == 11248
    assert len(mesh[0].split()) == 7, "positions with vertex colours"
    assert Image.open(tmp_path / "out/overlay.png").size == (375, 500)


def test_clip(shared_media: Path, tmp_path: Path) -> None:
    clip = shared_media / "liveportrait/driving/d0.mp4"
    assert (
        main(
            [
                "reconstruct",
                str(clip),
                "-o",
                str(tmp_path / "out"),
                "--max-frames",
                "12",
                "--identity-frames",
                "3",
            ]
        )
        == 0
    )
    frames = json.loads((tmp_path / "out/params.json").read_text())["frames"]
    assert [f["index"] for f in frames] == list(range(12))
    assert all(f["face"] for f in frames)
    overlay = tmp_path / "out/overlay.mp4"
    assert probe_video(overlay).fps == 25
    assert len(list(iter_video_frames(overlay))) == 12


def test_photo_without_face(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 300, 3), 180, np.uint8)).save(blank)
    assert main(["reconstruct", str(blank), "-o", str(tmp_path / "out")]) == 0
    frame = json.loads((tmp_path / "out/params.json").read_text())["frames"][0]
    assert frame == {"index": 0, "face": False, "params": None, "landmarks68_2d": None}
    assert "no face found" in capsys.readouterr().err
    assert not (tmp_path / "out/mesh.obj").exists()


def test_corrupt_input_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "clip.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    assert main(["reconstruct", str(corrupt), "-o", str(tmp_path / "out")]) == 1
    assert "not a readable video" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
