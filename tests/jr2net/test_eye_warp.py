"""The eye openings' piecewise-affine reads: the triangulation, the targets, and the read points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.compositing import pixel_centres
from jr2net.eye_warp import (
    CONTOUR_COUNT,
    EYE_LANDMARKS,
    EyeTriangles,
    eye_reads,
    eye_targets,
    polygon_triangles,
)
from jr2net.gaze import EYE_LIDS
from jr2net.media import read_image
from jr2net.sources import limit_size
from jr2net.tracking import Tracker

PHOTO = "liveportrait/source/s12.jpg"
PER_EYE = len(EYE_LANDMARKS[0])


@pytest.fixture(scope="module")
def photo_landmarks(shared_media: Path) -> tuple[torch.Tensor, tuple[int, int]]:
    """(478, 2) MediaPipe landmarks of a real photo at 512 px, and its (H, W)."""
    image = limit_size(read_image(shared_media / PHOTO), 512)
    with Tracker(mode="image") as tracker:
        seen = tracker.track(image)
    assert seen.face
    return torch.from_numpy(seen.landmarks[:, :2]).float(), image.shape[:2]


def _area(points: np.ndarray) -> float:
    following = np.roll(points, -1, axis=0)
    return 0.5 * float(np.sum(points[:, 0] * following[:, 1] - following[:, 0] * points[:, 1]))


def test_ear_clipping_tiles_a_concave_polygon_exactly() -> None:
    arrow = np.array([[0, 0], [4, 0], [4, 3], [2, 1], [0, 3]], dtype=np.float64)  # a notch at (2, 1)
    for polygon in (arrow, arrow[::-1]):
        triangles = polygon_triangles(polygon)
        assert triangles.shape == (len(polygon) - 2, 3)
        areas = [abs(_area(polygon[list(triangle)])) for triangle in triangles]
        assert min(areas) > 0
        assert sum(areas) == pytest.approx(abs(_area(polygon)))


def test_unmoved_targets_read_every_opening_pixel_where_it_is(photo_landmarks) -> None:
    landmarks, (height, width) = photo_landmarks
    eyes = EyeTriangles.of(landmarks)
    targets = eye_targets(landmarks, eyes)
    torch.testing.assert_close(targets, eyes.source)
    points, inside = eye_reads(eyes, targets, height, width)
    contours = [eyes.source[eye * PER_EYE : eye * PER_EYE + CONTOUR_COUNT].numpy() for eye in range(2)]
    expected = sum(abs(_area(contour)) for contour in contours)
    assert abs(float(inside.sum()) - expected) < 0.1 * expected
    chosen = inside[0, 0] > 0
    torch.testing.assert_close(points[0][chosen], pixel_centres(height, width)[0][chosen], atol=1e-3, rtol=0)


def test_a_turned_iris_is_read_from_the_source_iris_and_the_contour_stays(photo_landmarks) -> None:
    """The driver's irises move 3 px right in still eye openings: the pixel at each moved iris
    centre reads the source's iris centre."""
    landmarks, (height, width) = photo_landmarks
    eyes = EyeTriangles.of(landmarks)
    looking = landmarks.clone()
    irises = [eye[CONTOUR_COUNT:] for eye in EYE_LANDMARKS]
    for iris in irises:
        looking[list(iris)] += torch.tensor([3.0, 0.0])
    points, inside = eye_reads(eyes, eye_targets(looking, eyes), height, width)
    for iris in irises:
        centre = looking[iris[0]]
        column, row = int(centre[0]), int(centre[1])
        assert inside[0, 0, row, column] > 0
        pixel = torch.tensor([column + 0.5, row + 0.5])
        torch.testing.assert_close(points[0, row, column], pixel - torch.tensor([3.0, 0.0]), atol=0.3, rtol=0)


def test_a_closed_eye_ignores_the_iris_guess_and_an_open_one_follows_it(photo_landmarks) -> None:
    """Lids together, the iris landmarks are guesses under the lid: the iris goes where the
    contour's motion takes the source's iris, whatever the guess; in an open eye it goes where the
    tracker says."""
    landmarks, _ = photo_landmarks
    eyes = EyeTriangles.of(landmarks)
    irises = [list(eye[CONTOUR_COUNT:]) for eye in EYE_LANDMARKS]
    closed = landmarks.clone() + torch.tensor([2.0, 0.0])
    for upper, lower in EYE_LIDS:
        closed[upper] = closed[lower]
    guesses = []
    for offset in (-5.0, 5.0):
        guessed = closed.clone()
        for iris in irises:
            guessed[iris] += torch.tensor([offset, offset])
        guesses.append(eye_targets(guessed, eyes))
    torch.testing.assert_close(guesses[0], guesses[1])
    looking = landmarks.clone()
    for iris in irises:
        looking[iris] += torch.tensor([3.0, -1.0])
    order = [index for eye in EYE_LANDMARKS for index in eye]
    torch.testing.assert_close(eye_targets(looking, eyes), looking[order])


def test_wrong_shapes_are_refused(photo_landmarks) -> None:
    landmarks, (height, width) = photo_landmarks
    eyes = EyeTriangles.of(landmarks)
    with pytest.raises(ValueError, match="source_landmarks"):
        EyeTriangles.of(landmarks[:468])
    with pytest.raises(ValueError, match="targets"):
        eye_reads(eyes, landmarks[:10], height, width)


def test_eyes_off_the_frame_read_nothing(photo_landmarks) -> None:
    landmarks, (height, width) = photo_landmarks
    eyes = EyeTriangles.of(landmarks)
    away = eyes.source - torch.tensor([float(width), 0.0]) * 2
    points, inside = eye_reads(eyes, away, height, width)
    assert points.shape == (1, height, width, 2) and float(inside.abs().max()) == 0
