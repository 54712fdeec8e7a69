"""Gaze: eye openness, the iris anchors, and an output whose irises follow the driver's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.compositing import pixel_centres
from jr2net.face_model import FaceModel
from jr2net.gaze import EYE_LIDS, IRISES, eye_openness, iris_anchors, iris_reads
from jr2net.media import read_image
from jr2net.reenact import Reenactor
from jr2net.sources import limit_size, source_from_image
from jr2net.tracking import Tracker

PHOTO = "liveportrait/source/s12.jpg"


@pytest.fixture(scope="module")
def reenactor(face_model: FaceModel, shared_media: Path) -> Reenactor:
    image = limit_size(read_image(shared_media / PHOTO), 512)
    return Reenactor(face_model, source_from_image(face_model, image, PHOTO))


def _landmarks(reenactor: Reenactor) -> torch.Tensor:
    assert reenactor.source.landmarks is not None
    return reenactor.source.landmarks.float()


def test_open_eyes_are_open_and_lids_together_are_closed(reenactor: Reenactor) -> None:
    landmarks = _landmarks(reenactor)
    torch.testing.assert_close(eye_openness(landmarks), torch.ones(2))
    closed = landmarks.clone()
    for upper, lower in EYE_LIDS:
        closed[upper] = closed[lower]
    torch.testing.assert_close(eye_openness(closed), torch.zeros(2))


def test_an_unmoved_warp_reads_the_iris_shift_and_a_closed_eye_reads_none(reenactor: Reenactor) -> None:
    landmarks = _landmarks(reenactor)
    height, width = reenactor.source.image.shape[-2:]
    unmoved = pixel_centres(height, width)
    anchored = torch.zeros(478, dtype=torch.bool)
    anchored[[33, 133, 263, 362]] = True
    looking = landmarks.clone()
    iris = [index for eye in IRISES for index in eye]
    looking[iris] += torch.tensor([3.0, 0.0])
    anchors = iris_anchors(looking, torch.zeros(478, 2), anchored)
    torch.testing.assert_close(anchors.positions, looking[iris])
    torch.testing.assert_close(anchors.draw, torch.zeros(10, 2))
    read = iris_reads(anchors, landmarks, unmoved)
    torch.testing.assert_close(read, torch.tensor([-3.0, 0.0]).expand(10, 2), atol=1e-4, rtol=0)
    for upper, lower in EYE_LIDS:
        looking[upper] = looking[lower]
    closed = iris_anchors(looking, torch.zeros(478, 2), anchored)
    assert float(closed.weights.abs().max()) == 0
    assert float(iris_reads(closed, landmarks, unmoved).abs().max()) == 0
    with pytest.raises(ValueError, match="no anchored landmark"):
        iris_anchors(looking, torch.zeros(478, 2), torch.zeros(478, dtype=torch.bool))


def test_the_output_looks_where_the_driver_looks(reenactor: Reenactor) -> None:
    """The driver keeps still and turns only its eyes by 4 px: MediaPipe finds the output's irises
    moved the same way (by 2 px: the iris pixels inside the opening move 3-4 px, MediaPipe reads
    about half of that; 1.6 px with the pinning's 8 px grid alone), and its lids where they were
    (within the 1 px MediaPipe's lid landmarks lean with the iris)."""
    landmarks = _landmarks(reenactor).numpy()
    params = reenactor.source.params
    reenactor.recalibrate()
    still = reenactor(params, landmarks=landmarks).image
    looking = landmarks.copy()
    iris = [index for eye in IRISES for index in eye]
    looking[iris, 0] += 4.0
    moved = reenactor(params, landmarks=looking).image
    tracker = Tracker(mode="image")
    try:
        before, after = (tracker.track(np.ascontiguousarray(im)).landmarks[:, :2] for im in (still, moved))
    finally:
        tracker.close()
    shift = (after[iris] - before[iris]).mean(axis=0)
    assert 1.8 < shift[0] < 4.5 and abs(shift[1]) < 1.0
    lids = [index for pair in EYE_LIDS for index in pair]
    assert np.abs(after[lids] - before[lids]).max() < 1.5
