"""Landmark fitting on real photos and clips: reprojection, expressions, identities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.camera import euler_to_matrix
from jr2net.correspondence import MediapipeCorrespondence
from jr2net.face_model import FaceModel
from jr2net.fitting import LandmarkFitter, rotation_and_derivatives
from jr2net.media import read_image
from jr2net.tracking import Tracker, Tracking
from tests.conftest import video_frames

PHOTOS = [
    "liveportrait/source/s1.jpg",
    "liveportrait/source/s12.jpg",
    "deep3dfacerecon/000006.jpg",
    "liveportrait/driving/d19.jpg",
]


@pytest.fixture(scope="module")
def fitter(face_model: FaceModel) -> LandmarkFitter:
    return LandmarkFitter(face_model)


@pytest.fixture(scope="module")
def tracker() -> Tracker:
    with Tracker(mode="image") as tracker:
        yield tracker


def _clip_trackings(tracker: Tracker, path: Path, indices: set[int]) -> dict[int, Tracking]:
    return {i: tracker.track(image) for i, image in video_frames(path, indices).items()}


def test_correspondence_file(face_model: FaceModel) -> None:
    correspondence = MediapipeCorrespondence.load(face_model)
    assert correspondence.valid.sum() > 380
    assert not correspondence.valid[468:].any(), "iris landmarks have no ICT surface"
    torch.testing.assert_close(correspondence.barycentrics.sum(dim=1), torch.ones(478), atol=1e-5, rtol=0)
    nose = correspondence.landmark_points(face_model.neutral[None])[0, 1]
    assert nose[2] > 12.0 and abs(float(nose[0])) < 0.5, "MediaPipe landmark 1 is the nose tip"
    matrix = correspondence.blendshape_matrix
    assert (
        matrix[
            face_model.expression_names.index("mouthSmile_L"),
            correspondence.blendshape_names.index("mouthSmileLeft"),
        ]
        == 1
    )
    assert matrix.sum() == 53, "each ICT expression is driven by one MediaPipe blendshape"


def test_upper_lids_have_surface_points_that_close_in_a_blink(face_model: FaceModel) -> None:
    """MediaPipe puts the upper lids' margin just beyond the ICT mesh; the correspondence snaps them
    onto it, so fitting and pinning see blinks."""
    correspondence = MediapipeCorrespondence.load(face_model)
    lids = torch.tensor([[159, 145], [386, 374]])
    assert correspondence.valid[lids].all()
    identity = torch.zeros(1, face_model.identity_count)

    def gaps(weights: dict[str, float]) -> torch.Tensor:
        vertices = face_model(identity, face_model.expression_vector(weights)[None])
        points = correspondence.landmark_points(vertices)[0]
        return (points[lids[:, 0]] - points[lids[:, 1]]).norm(dim=-1)

    open_gaps = gaps({})
    closed_gaps = gaps({"eyeBlink_L": 1.0, "eyeBlink_R": 1.0})
    assert (open_gaps > 0.6).all(), f"open lids {open_gaps} cm apart"
    assert (closed_gaps < 0.4 * open_gaps).all(), f"closed lids {closed_gaps} cm apart, open {open_gaps}"


@pytest.mark.parametrize("name", PHOTOS)
def test_reprojection_error_on_photos(
    fitter: LandmarkFitter, tracker: Tracker, shared_media: Path, name: str
) -> None:
    tracking = tracker.track(read_image(shared_media / name))
    (params,) = fitter.fit_identity([tracking])
    error = fitter.reprojection_error(tracking, params)
    assert float(error.median()) <= 0.02
    initial = fitter.reprojection_error(tracking, fitter.initial_params(tracking))
    assert float(error.median()) < float(initial.median())


def test_warm_start_on_a_clip(fitter: LandmarkFitter, tracker: Tracker, shared_media: Path) -> None:
    trackings = _clip_trackings(tracker, shared_media / "liveportrait/driving/d12.mp4", set(range(0, 60, 6)))
    identity = fitter.fit_identity([trackings[0], trackings[30]])[0].identity
    previous = None
    for index in sorted(trackings):
        previous = fitter.fit_frame(trackings[index], identity, previous)
        assert torch.equal(previous.identity, identity)
        assert float(fitter.reprojection_error(trackings[index], previous).median()) <= 0.02, index


def test_jaw_open_on_an_open_mouth_frame(
    fitter: LandmarkFitter, tracker: Tracker, shared_media: Path
) -> None:
    """d18: neutral, then a wide-open mouth; pick the frames by MediaPipe's own jawOpen score."""
    trackings = _clip_trackings(tracker, shared_media / "liveportrait/driving/d18.mp4", set(range(0, 216, 8)))
    score = {i: t.blendshapes[t.blendshape_names.index("jawOpen")] for i, t in trackings.items()}
    closed, opened = min(score, key=score.get), max(score, key=score.get)
    closed_fit, opened_fit = fitter.fit_identity([trackings[closed], trackings[opened]])
    assert torch.equal(closed_fit.identity, opened_fit.identity)
    jaw = fitter.model.expression_names.index("jawOpen")
    assert float(opened_fit.expression[0, jaw]) > float(closed_fit.expression[0, jaw]) + 0.2


def _identity(fitter: LandmarkFitter, trackings: list[Tracking]) -> torch.Tensor:
    return fitter.fit_identity(trackings)[0].identity


def test_same_person_identities_are_closer(
    fitter: LandmarkFitter, tracker: Tracker, shared_media: Path
) -> None:
    driving = shared_media / "liveportrait/driving"
    man = _clip_trackings(tracker, driving / "d18.mp4", {0, 4, 8, 180, 190, 200})
    woman = _clip_trackings(tracker, driving / "d10.mp4", {0, 4, 8})
    early = _identity(fitter, [man[0], man[4], man[8]])
    late = _identity(fitter, [man[180], man[190], man[200]])
    other = _identity(fitter, list(woman.values()))
    same, different = float((early - late).norm()), float((early - other).norm())
    assert same < different, (same, different)


def test_frame_without_face_cannot_be_fitted(fitter: LandmarkFitter, tracker: Tracker) -> None:
    empty = tracker.track(np.zeros((120, 160, 3), np.uint8))
    with pytest.raises(ValueError, match="without a face"):
        fitter.initial_params(empty)
    with pytest.raises(ValueError, match="no frame with a face"):
        fitter.fit_identity([empty])


def test_unknowns_convert_to_face_params_and_back_exactly(fitter: LandmarkFitter) -> None:
    """A frame warm-started from FaceParams resumes from exactly the unknowns that gave them."""
    layout = fitter.layout
    assert layout.size == fitter.model.expression_count + 7
    generator = torch.Generator().manual_seed(0)
    identity = torch.randn(1, fitter.model.identity_count, generator=generator)
    for _ in range(500):
        unknowns = torch.randn(layout.size, generator=generator)
        unknowns[layout.log_focal] = 2 + 14 * torch.rand(1, generator=generator)
        params = layout.to_params(identity, unknowns)
        assert torch.equal(params.identity, identity)
        np.testing.assert_array_equal(layout.from_params(params), unknowns.double().numpy())


def test_rotation_derivatives_match_the_camera() -> None:
    angles = np.array([0.3, -0.7, 0.2])
    rotation, derivatives = rotation_and_derivatives(angles)
    np.testing.assert_allclose(rotation, euler_to_matrix(torch.from_numpy(angles)).numpy(), atol=1e-12)
    for k in range(3):
        step = np.zeros(3)
        step[k] = 1e-6
        numeric = (
            rotation_and_derivatives(angles + step)[0] - rotation_and_derivatives(angles - step)[0]
        ) / 2e-6
        np.testing.assert_allclose(derivatives[k], numeric, atol=1e-8)


def test_analytic_jacobians_match_finite_differences(
    fitter: LandmarkFitter, tracker: Tracker, shared_media: Path
) -> None:
    tracking = tracker.track(read_image(shared_media / "liveportrait/source/s1.jpg"))
    seen = fitter._observe(tracking)
    generator = np.random.default_rng(0)
    identity = generator.normal(scale=0.5, size=fitter.model.identity_count)
    frame = seen.prior.copy()
    frame[fitter.layout.expression] = generator.uniform(0.1, 0.9, fitter.model.expression_count)
    base = fitter._identity_points(identity)
    _, by_frame, by_identity = fitter._evaluate_frame(base, frame, seen, True, by_identity=True)
    for k in range(len(frame)):
        step = np.zeros_like(frame)
        step[k] = 1e-6
        numeric = (
            fitter._evaluate_frame(base, frame + step, seen, False)[0]
            - fitter._evaluate_frame(base, frame - step, seen, False)[0]
        ) / 2e-6
        np.testing.assert_allclose(by_frame[:, k], numeric, atol=1e-6, err_msg=f"unknown {k}")
    for k in (0, 7, 99):
        step = np.zeros_like(identity)
        step[k] = 1e-6
        plus = fitter._evaluate_frame(fitter._identity_points(identity + step), frame, seen, False)[0]
        minus = fitter._evaluate_frame(fitter._identity_points(identity - step), frame, seen, False)[0]
        np.testing.assert_allclose(by_identity[:, k], ((plus - minus) / 2e-6)[: len(by_identity)], atol=1e-6)
