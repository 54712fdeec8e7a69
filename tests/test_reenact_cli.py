"""``jr2net reenact`` end to end: frame count, fps, audio, faceless frames, bad sources."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from jr2net.cli import main
from jr2net.media import VideoWriter, iter_video_frames, probe_video
from tests.conftest import video_frames


def test_photo_driven_by_a_clip_keeps_fps_count_and_audio(shared_media: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    args = ["reenact", "--source", str(shared_media / "liveportrait/source/s12.jpg")]
    args += [
        "--driving",
        str(shared_media / "liveportrait/driving/d18.mp4"),
        "-o",
        str(output),
        "--max-frames",
        "8",
    ]
    assert main([*args, "--size", "256"]) == 0
    info = probe_video(output)
    assert info.fps == 30 and info.has_audio
    assert len(list(iter_video_frames(output))) == 8
    with av.open(str(output)) as container:
        audio = container.streams.audio[0]
        assert float(audio.duration * audio.time_base) < 0.5, "audio is cut where the video ends"
    assert not list(tmp_path.glob(".*partial*"))


def test_faceless_driving_frames_keep_the_last_pose(
    shared_media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = video_frames(shared_media / "liveportrait/driving/d0.mp4", set(range(6)))
    driving = tmp_path / "driving.mp4"
    with VideoWriter(driving, Fraction(25), 512, 512) as writer:
        for index in range(6):
            writer.write(frames[index] if index not in (3, 4) else np.full((512, 512, 3), 40, np.uint8))
    output = tmp_path / "out.mp4"
    assert (
        main(["reenact", "--source", "model", "--size", "192", "--driving", str(driving), "-o", str(output)])
        == 0
    )
    assert "2 driving frames without a face" in capsys.readouterr().out
    result = [image for _, _, image in iter_video_frames(output)]
    assert len(result) == 6 and probe_video(output).fps == 25
    assert np.abs(result[3].astype(float) - result[2].astype(float)).mean() < 2.0


def test_side_by_side(shared_media: Path, tmp_path: Path) -> None:
    output = tmp_path / "sbs.mp4"
    driving = shared_media / "liveportrait/driving/d0.mp4"
    args = ["reenact", "--source", "model", "--size", "128", "--driving", str(driving), "-o", str(output)]
    assert main([*args, "--side-by-side", "--max-frames", "3", "--set", "jawOpen=0.4", "--yaw", "10"]) == 0
    info = probe_video(output)
    assert (info.width, info.height) == (384, 128)


@pytest.mark.parametrize("kind", ["missing", "corrupt", "faceless"])
def test_bad_sources_fail_clearly_and_write_nothing(
    shared_media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    source = tmp_path / "source.jpg"
    if kind == "corrupt":
        source.write_bytes(b"\xff\xd8\xff garbage")
    elif kind == "faceless":
        Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(source)
    output = tmp_path / "out" / "result.mp4"
    driving = shared_media / "liveportrait/driving/d0.mp4"
    assert main(["reenact", "--source", str(source), "--driving", str(driving), "-o", str(output)]) == 1
    message = capsys.readouterr().err
    expected = {
        "missing": "no such file",
        "corrupt": "not a readable image or video",
        "faceless": "no face found",
    }[kind]
    assert expected in message
    assert not output.exists() and not list(tmp_path.rglob("*.mp4"))


def test_clip_as_source(shared_media: Path, tmp_path: Path) -> None:
    output = tmp_path / "from_clip.mp4"
    source = shared_media / "liveportrait/driving/d19.mp4"
    driving = shared_media / "liveportrait/driving/d0.mp4"
    args = ["reenact", "--source", str(source), "--driving", str(driving), "-o", str(output), "--size", "192"]
    assert main([*args, "--max-frames", "3"]) == 0
    info = probe_video(output)
    assert max(info.width, info.height) <= 192 + 1 and len(list(iter_video_frames(output))) == 3


def test_dcnet_refiner_runs_and_differs_from_the_geometric(
    shared_media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both refiners write a full clip from the same photo; DCNet's frames are its own."""
    monkeypatch.setenv("JR2NET_CACHE", str(tmp_path / "cache"))
    source = shared_media / "liveportrait/source/s12.jpg"
    driving = shared_media / "liveportrait/driving/d18.mp4"
    frames = {}
    for refiner in ("geometric", "dcnet"):
        output = tmp_path / f"{refiner}.mp4"
        args = ["reenact", "--source", str(source), "--driving", str(driving), "-o", str(output)]
        assert main([*args, "--size", "256", "--max-frames", "4", "--refiner", refiner]) == 0
        frames[refiner] = [image.astype(float) for _, _, image in iter_video_frames(output)]
        assert len(frames[refiner]) == 4
    difference = np.abs(frames["dcnet"][-1] - frames["geometric"][-1]).mean()
    assert 0.2 < difference < 40


def test_missing_dcnet_weights_fail_before_any_work(
    shared_media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.mp4"
    driving = shared_media / "liveportrait/driving/d0.mp4"
    args = [
        "reenact",
        "--source",
        "model",
        "--driving",
        str(driving),
        "-o",
        str(output),
        "--refiner",
        "dcnet",
    ]
    assert main([*args, "--dcnet-weights", str(tmp_path / "none.pt")]) == 1
    assert "train_dcnet" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.mp4"))
