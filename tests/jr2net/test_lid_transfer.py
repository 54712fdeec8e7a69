"""The driver's lid motion, measured against its own eye's opening, moves the source's lids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jr2net.face_model import FaceModel
from jr2net.gaze import EYE_OPENINGS
from jr2net.landmark_pinning import transfer_landmarks
from jr2net.lid_transfer import (
    LOWER_LID,
    MAX_WIDENING,
    MIN_REFERENCE_OPENING,
    UPPER_LID,
    EyeFrame,
    opening,
    transfer_lids,
)
from jr2net.media import read_image
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import Reenactor
from jr2net.sources import limit_size, source_from_image
from jr2net.tracking import Tracker
from tests.conftest import video_frames

SOURCE = "liveportrait/driving/d19.jpg"
DRIVER = "liveportrait/driving/d3.mp4"
SHUT = 58  # d3's frame with both eyes shut (its frame 0 has them open)


@pytest.fixture(scope="module")
def landmarks(shared_media: Path) -> dict[str, np.ndarray]:
    """(478, 2) landmarks of d19.jpg (eyes open, narrower for its face than d3's), d3's first
    frame (the reference) and d3's frame with both eyes shut."""
    frames = video_frames(shared_media / DRIVER, {0, SHUT})
    images = {"source": read_image(shared_media / SOURCE), "reference": frames[0], "shut": frames[SHUT]}
    with Tracker(mode="image") as tracker:
        tracked = {name: tracker.track(image) for name, image in images.items()}
    return {name: tracking.landmarks[:, :2].astype(np.float64) for name, tracking in tracked.items()}


def _openings(points: np.ndarray) -> list[float]:
    """Each eye's mean lid gap in eye widths (negative where the lids crossed)."""
    return [
        opening(EyeFrame.of(points[list(contour)], eye).local(points[list(contour)]))
        for eye, contour in enumerate(EYE_OPENINGS)
    ]


def _lid_gaps(points: np.ndarray) -> np.ndarray:
    """(2, 7) each upper-lower lid pair's gap across its eye (eye widths)."""
    gaps = []
    for eye, contour in enumerate(EYE_OPENINGS):
        local = EyeFrame.of(points[list(contour)], eye).local(points[list(contour)])
        gaps.append(local[LOWER_LID, 1] - local[UPPER_LID, 1])
    return np.stack(gaps)


def test_a_shut_driver_eye_shuts_the_source_eye_without_crossing_its_lids(landmarks) -> None:
    """d3 shuts its eyes: moved by the faces' similarity alone, d19.jpg's lids cross (its eyes are
    narrower than d3's for its face), which the transfer by the eyes' own openings prevents; the
    source's eyes end as shut as the driver's, relative to where each started."""
    source, reference, shut = landmarks["source"], landmarks["reference"], landmarks["shut"]
    moved = transfer_landmarks(source, shut, reference)
    assert min(_openings(moved)) < -0.05  # the lids crossed
    lids = transfer_lids(moved, source, shut, reference)
    assert (_lid_gaps(lids) >= -1e-9).all()
    source_openings, driver_ratio = _openings(source), np.divide(_openings(shut), _openings(reference))
    for result, start, ratio in zip(_openings(lids), source_openings, driver_ratio, strict=True):
        assert result <= max(ratio, 0.0) * start + 0.02
    others = np.ones(478, dtype=bool)
    others[[i for contour in EYE_OPENINGS for i in contour]] = False
    assert np.array_equal(lids[others], moved[others])


def test_a_half_closed_driver_eye_half_closes_the_source_eye(landmarks) -> None:
    """The driver's lids halfway between the reference's and the shut frame's: the source's eye
    ends about half as open as it was."""
    source, reference, shut = landmarks["source"], landmarks["reference"], landmarks["shut"]
    half = (reference + shut) / 2
    lids = transfer_lids(transfer_landmarks(source, half, reference), source, half, reference)
    expected = np.array(_openings(source)) * np.divide(_openings(half), _openings(reference))
    assert np.allclose(_openings(lids), expected, atol=0.02)


def test_a_reference_caught_mid_blink_opens_the_source_eye_no_wider_than_the_cap(landmarks) -> None:
    """The reference is nearly shut and the driver's eyes open: in proportion the source's eyes
    would open well over twice as wide as they are; they stop at :data:`MAX_WIDENING` times."""
    source, reference, shut = landmarks["source"], landmarks["reference"], landmarks["shut"]
    blinking = 0.25 * reference + 0.75 * shut
    openings = zip(_openings(reference), _openings(blinking), strict=True)
    assert min(wide / max(closed, MIN_REFERENCE_OPENING) for wide, closed in openings) > MAX_WIDENING + 0.2
    moved = transfer_landmarks(source, reference, blinking)
    lids = transfer_lids(moved, source, reference, blinking)
    assert np.allclose(_openings(lids), MAX_WIDENING * np.array(_openings(source)), atol=1e-6)


def test_in_self_reenactment_the_lids_are_the_drivers(landmarks) -> None:
    """The source is the reference frame: the result is the driving frame's own landmarks (a
    half-closed eye; MediaPipe's shut eyes have lid pairs crossed by a fraction of a pixel, which
    meet instead)."""
    reference, shut = landmarks["reference"], landmarks["shut"]
    half = (reference + shut) / 2
    moved = transfer_landmarks(reference, half, reference)
    assert np.allclose(transfer_lids(moved, reference, half, reference), half, atol=1e-6)


def test_wrong_shapes_are_refused(landmarks) -> None:
    source = landmarks["source"]
    with pytest.raises(ValueError, match="driving landmarks must be"):
        transfer_lids(source, source, source[:468], source)


def test_a_reenacted_blink_reads_as_shut(face_model: FaceModel, shared_media: Path) -> None:
    """d19.jpg driven by d3 (first frame, then its shut frame): MediaPipe reads the output's eyes as
    blinking (its ``eyeBlink`` scores 0.23 and 0.22; 0.03 and 0.01 when the lids crossed)."""
    frames = video_frames(shared_media / DRIVER, {0, SHUT})
    source = limit_size(read_image(shared_media / SOURCE), 512)
    reenactor = Reenactor(face_model, source_from_image(face_model, source))
    with Reconstructor(face_model, mode="video") as reconstructor:
        results = list(reconstructor.video(iter([(0, 0.0, frames[0]), (1, 1 / 30, frames[SHUT])])))
    outputs = [reenactor(r.params, landmarks=r.tracking.landmarks).image for r in results]
    with Tracker(mode="image") as tracker:
        blinks = [tracker.track(image).blendshapes[[9, 10]] for image in outputs]
    assert (blinks[0] < 0.2).all()
    assert (blinks[1] > 0.15).all()
