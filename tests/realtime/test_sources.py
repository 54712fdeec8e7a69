"""Frame sources: what they yield (upright RGB frames with their timestamps) and how they fail."""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path

import numpy as np
import pytest

from jr2net.cli import main
from jr2net.media import MediaError, iter_video_frames
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.sources import MICROSECONDS, EndOfStream, FileSource, FrameSource, OpenCVCameraSource
from tests.conftest import asymmetric_frames, write_rotated_clip


def drain(source: FrameSource) -> list[StagedFrame]:
    """Every frame a source gives until its end, then stop it."""

    async def frames() -> list[StagedFrame]:
        received = []
        try:
            while True:
                received.append(await source.recv())
        except EndOfStream:
            return received
        finally:
            source.stop()

    return asyncio.run(frames())


def test_file_source_turns_a_portrait_phone_clip_upright(tmp_path: Path) -> None:
    path = tmp_path / "phone.mp4"
    originals = asymmetric_frames(3)
    write_rotated_clip(path, originals, -90)
    frames = drain(FileSource(path, paced=False))
    assert [frame.index for frame in frames] == [0, 1, 2]
    for frame, original in zip(frames, originals):
        assert np.abs(frame.image.astype(int) - np.rot90(original, -1)).mean() < 3


def test_opencv_source_reads_a_video_file_like_a_camera(shared_media: Path) -> None:
    clip = shared_media / "liveportrait/driving/d0.mp4"
    frames = drain(OpenCVCameraSource(str(clip), max_frames=5))
    expected = [image for _, _, image in itertools.islice(iter_video_frames(clip), 5)]
    assert [frame.index for frame in frames] == [0, 1, 2, 3, 4]
    assert all(frame.time_base == MICROSECONDS for frame in frames)
    stamps = [frame.pts for frame in frames]
    assert stamps[0] == 0 and stamps == sorted(stamps), "capture-clock microseconds from the first frame"
    for frame, image in zip(frames, expected):
        assert frame.image.shape == image.shape and frame.image.dtype == np.uint8
        assert np.abs(frame.image.astype(int) - image).mean() < 2, "RGB, not BGR, and the same frame"


def test_an_opencv_index_that_cannot_be_opened_fails_at_once() -> None:
    errors: list[MediaError] = []

    def open_missing() -> None:
        try:
            OpenCVCameraSource(99)
        except MediaError as error:
            errors.append(error)

    opener = threading.Thread(target=open_missing, daemon=True)
    opener.start()
    opener.join(timeout=20)
    assert not opener.is_alive(), "opening a missing camera hangs"
    assert len(errors) == 1 and "cannot open camera 99 with OpenCV" in str(errors[0])


def test_live_takes_an_integer_camera_as_an_opencv_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["live", "--camera", "99", "--size", "64", "-o", str(tmp_path / "out.mp4")]) == 1
    assert "cannot open camera 99 with OpenCV" in capsys.readouterr().err
