"""The 68 landmarks of fitted faces land on the right facial features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.face_model import FaceModel
from jr2net.landmarks68 import OUTLINE_JAW, Landmarks68
from jr2net.media import read_image
from jr2net.reconstruct import Reconstructor, landmarks68_2d

# Multi-PIE index -> MediaPipe index of the same feature (eye corners, nose tip, mouth corners).
SAME_FEATURE = {36: 33, 39: 133, 42: 362, 45: 263, 30: 1, 48: 61, 54: 291}


def test_file_is_consistent(face_model: FaceModel) -> None:
    landmarks = Landmarks68.load()
    assert landmarks.corners.shape == (68, 3) and int(landmarks.corners.max()) < face_model.vertex_count
    torch.testing.assert_close(landmarks.barycentrics.sum(dim=1), torch.ones(68), atol=1e-5, rtol=0)
    assert landmarks.jaw_angles.shape == (len(OUTLINE_JAW),)
    downward = torch.sin(landmarks.jaw_angles)
    assert downward[OUTLINE_JAW.index(6)] > 0.9 and downward[OUTLINE_JAW.index(0)] < 0.5, (
        "jaw runs ear to chin"
    )


@pytest.mark.parametrize("name", ["liveportrait/source/s2.jpg", "deep3dfacerecon/000031.jpg"])
def test_features_match_mediapipe(face_model: FaceModel, shared_media: Path, name: str) -> None:
    image = read_image(shared_media / name)
    with Reconstructor(face_model, mode="image") as reconstructor:
        result = reconstructor.image(image)
    with torch.no_grad():
        points = landmarks68_2d(face_model, result.params, *image.shape[:2]).numpy()
    mediapipe = result.tracking.landmarks[:, :2]
    inter_ocular = result.tracking.inter_ocular
    for ours, theirs in SAME_FEATURE.items():
        assert np.linalg.norm(points[ours] - mediapipe[theirs]) < 0.08 * inter_ocular, (ours, theirs)
    assert points[8, 1] > points[57, 1] > points[33, 1] > points[27, 1], "chin, lower lip, nose, brow ridge"
    assert points[0, 0] < points[36, 0] and points[16, 0] > points[45, 0], (
        "the jaw outline is outside the eyes"
    )
    assert points[4, 1] > points[48, 1] - 0.3 * inter_ocular and points[2, 0] < points[48, 0]
