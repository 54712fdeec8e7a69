"""MediaPipe tracking on the shared photos and clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jr2net.media import read_image
from jr2net.tracking import LANDMARK_COUNT, Tracker
from tests.conftest import video_frames

PHOTOS = [
    "liveportrait/source/s1.jpg",
    "liveportrait/source/s2.jpg",
    "deep3dfacerecon/000002.jpg",
    "liveportrait/driving/d12.jpg",
]
CLIPS = ["d0.mp4", "d3.mp4", "d10.mp4", "d12.mp4", "d18.mp4", "d19.mp4"]


@pytest.fixture(scope="module")
def tracker() -> Tracker:
    with Tracker(mode="image") as tracker:
        yield tracker


@pytest.mark.parametrize("name", PHOTOS)
def test_faces_in_photos(tracker: Tracker, shared_media: Path, name: str) -> None:
    image = read_image(shared_media / name)
    tracking = tracker.track(image)
    assert tracking.face and tracking.faces_found == 1
    assert tracking.landmarks.shape == (LANDMARK_COUNT, 3)
    assert tracking.blendshapes.shape == (52,) and tracking.blendshape_names[0] == "_neutral"
    inside = (tracking.landmarks[:, 0] >= 0) & (tracking.landmarks[:, 0] < image.shape[1])
    assert inside.mean() > 0.95
    assert tracking.inter_ocular > 0.05 * image.shape[1]
    assert tracking.head_matrix.shape == (4, 4)


def test_faces_in_clips_in_video_mode(shared_media: Path) -> None:
    with Tracker(mode="video") as tracker:
        timestamp = 0
        for clip in CLIPS:
            for _, image in sorted(
                video_frames(shared_media / "liveportrait" / "driving" / clip, {0, 5}).items()
            ):
                timestamp += 40
                assert tracker.track(image, timestamp).face, clip


def test_no_face_is_a_result_not_an_exception(tracker: Tracker) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    tracking = tracker.track(noise)
    assert not tracking.face and tracking.landmarks is None and tracking.faces_found == 0
    with pytest.raises(ValueError, match="no face"):
        _ = tracking.inter_ocular


def test_largest_face_or_by_index(shared_media: Path) -> None:
    big = read_image(shared_media / "liveportrait/source/s42.jpg")
    small = read_image(shared_media / "deep3dfacerecon/000033.jpg")
    canvas = np.full((512, 512 + small.shape[1], 3), 128, np.uint8)
    canvas[:, :512] = big
    canvas[: small.shape[0], 512:] = small
    with Tracker(mode="image") as largest, Tracker(mode="image", face_index=1) as second:
        first, other = largest.track(canvas), second.track(canvas)
    assert first.faces_found == 2 and other.faces_found == 2
    assert first.landmarks[:, 0].mean() < 512 < other.landmarks[:, 0].mean()


def test_bad_arguments(tracker: Tracker) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        tracker.track(np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="unknown tracking mode"):
        Tracker(mode="live")
    with Tracker(mode="video") as video, pytest.raises(ValueError, match="increasing timestamps"):
        image = np.zeros((64, 64, 3), np.uint8)
        video.track(image, 10)
        video.track(image, 10)
