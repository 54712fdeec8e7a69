"""Reconstructor streams: faceless openings pass at once, order and counts are kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jr2net.face_model import FaceModel
from jr2net.reconstruct import Reconstructor
from tests.conftest import video_frames


def test_video_with_a_faceless_opening(face_model: FaceModel, shared_media: Path) -> None:
    faces = video_frames(shared_media / "liveportrait/driving/d0.mp4", {0, 1, 2})
    blank = np.full((512, 512, 3), 30, np.uint8)
    stream = [blank, blank, faces[0], blank, faces[1], faces[2]]
    with Reconstructor(face_model, mode="video", identity_frames=2) as reconstructor:
        results = list(reconstructor.video((i, i / 25, image) for i, image in enumerate(stream)))
        assert reconstructor.frames_without_face == 3
    assert [r.index for r in results] == list(range(6))
    assert [r.face for r in results] == [False, False, True, False, True, True]


def test_live_steps_fit_the_identity_from_the_first_face(face_model: FaceModel, shared_media: Path) -> None:
    faces = video_frames(shared_media / "liveportrait/driving/d0.mp4", {0, 1})
    with Reconstructor(face_model, mode="video") as reconstructor:
        first = reconstructor.step(0, 0.0, np.zeros((256, 256, 3), np.uint8))
        second = reconstructor.step(1, 0.0, faces[0])
        third = reconstructor.step(2, 0.0, faces[1])
    assert not first.face and second.face and third.face
    assert second.time_s < third.time_s, "repeated timestamps are moved on"
