"""Image and video input/output: real files, and clear errors for bad ones."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from jr2net.media import (
    MediaError,
    VideoWriter,
    is_image,
    iter_video_frames,
    probe_video,
    read_image,
    remember_frames,
)
from tests.conftest import asymmetric_frames, write_rotated_clip


def test_reads_shared_photo_and_clip(shared_media: Path) -> None:
    image = read_image(shared_media / "liveportrait/source/s12.jpg")
    assert image.shape == (500, 375, 3) and image.dtype == np.uint8
    info = probe_video(shared_media / "liveportrait/driving/d18.mp4")
    assert (info.width, info.height, info.fps, info.frame_count, info.has_audio) == (480, 480, 30, 216, True)
    assert is_image(shared_media / "liveportrait/source/s12.jpg")
    assert not is_image(shared_media / "liveportrait/driving/d18.mp4")


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(MediaError, match="not a readable image"):
        read_image(corrupt)
    with pytest.raises(MediaError, match="not a readable video"):
        probe_video(corrupt)
    with pytest.raises(MediaError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_video_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    frames = [np.full((33, 47, 3), 20 * k, np.uint8) for k in range(6)]
    with VideoWriter(path, Fraction(25), 47, 33) as writer:
        for frame in frames:
            writer.write(frame)
    info = probe_video(path)
    assert (info.width, info.height, info.fps) == (48, 34, 25)
    decoded = list(iter_video_frames(path))
    assert len(decoded) == 6
    assert abs(int(decoded[3][2][:33, :47].mean()) - 60) <= 2
    assert decoded[1][1] == pytest.approx(1 / 25)


def test_remember_frames_keeps_each_image_until_popped() -> None:
    frames = [(k, k / 10, np.full((2, 3, 3), k, np.uint8)) for k in range(3)]
    images: dict[int, np.ndarray] = {}
    passed = remember_frames(iter(frames), images)
    assert next(passed)[0] == 0 and list(images) == [0]
    images.pop(0)
    assert [index for index, _, _ in passed] == [1, 2] and list(images) == [1, 2]
    assert images[2] is frames[2][2]


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_display_rotation_is_applied(tmp_path: Path, degrees: int) -> None:
    path = tmp_path / "phone.mp4"
    frames = asymmetric_frames(3)
    write_rotated_clip(path, frames, degrees)
    turns = degrees // 90
    info = probe_video(path)
    assert (info.height, info.width) == np.rot90(frames[0], turns).shape[:2]
    decoded = list(iter_video_frames(path))
    assert len(decoded) == len(frames)
    for (index, _, image), original in zip(decoded, frames):
        upright = np.rot90(original, turns)
        assert image.shape == upright.shape and image.flags.c_contiguous, index
        assert np.abs(image.astype(int) - upright).mean() < 3, index
