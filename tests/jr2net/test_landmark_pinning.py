"""Landmark pinning: the similarity and transfer of landmarks, the spline, and the pinned warp."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.compositing import sample, to_pixels
from jr2net.correspondence import MediapipeCorrespondence
from jr2net.eye_warp import eye_reads
from jr2net.face_model import FaceModel
from jr2net.landmark_pinning import (
    GRID_STEP,
    feature_landmarks,
    fields_from_grid,
    fit_similarity,
    spline_anchors,
    thin_plate_grid,
    transfer_landmarks,
)
from jr2net.reconstruct import FrameResult, Reconstructor
from jr2net.reenact import Controls, Reenactor, prepare_source
from tests.conftest import video_frames


def _points(count: int = 60, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform([40, 30], [200, 180], size=(count, 2))


def _rotation(degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def test_fit_similarity_recovers_a_similarity() -> None:
    points = _points()
    linear, offset = 0.7 * _rotation(-20.0), np.array([5.0, -3.0])
    fitted, fitted_offset = fit_similarity(points, points @ linear.T + offset)
    np.testing.assert_allclose(fitted, linear, atol=1e-12)
    np.testing.assert_allclose(fitted_offset, offset, atol=1e-9)


def test_transfer_moves_the_source_by_the_driving_motion_in_the_source_frame() -> None:
    reference = _points()
    motion = np.random.default_rng(1).normal(0, 3, size=reference.shape)
    driving = reference + motion
    np.testing.assert_allclose(transfer_landmarks(reference, driving, reference), driving, atol=1e-9)
    source = reference @ (2.0 * _rotation(90.0)).T + 7.0  # twice as large, turned a quarter
    moved = transfer_landmarks(source, driving, reference)
    np.testing.assert_allclose(moved - source, motion @ (2.0 * _rotation(90.0)).T, atol=1e-9)


def test_spline_is_exact_for_affine_values_and_interpolates_others() -> None:
    points = torch.tensor(_points(), dtype=torch.float32)
    affine = points @ torch.tensor([[0.02, -0.01], [0.03, 0.01]]) + torch.tensor([1.5, -2.0])
    field = to_pixels(thin_plate_grid(points, affine, 200, 240), 200, 240)
    assert field.shape == (1, 2, 200, 240)
    ys, xs = torch.meshgrid(torch.arange(200) + 0.5, torch.arange(240) + 0.5, indexing="ij")
    expected = torch.stack([xs, ys], dim=-1) @ torch.tensor([[0.02, -0.01], [0.03, 0.01]]) + torch.tensor(
        [1.5, -2.0]
    )
    inner = slice(GRID_STEP, -GRID_STEP)  # bilinear resizing holds the outermost half cells constant
    torch.testing.assert_close(
        field[0].permute(1, 2, 0)[inner, inner], expected[inner, inner], atol=1e-3, rtol=0
    )
    bumps = 3 * torch.stack([torch.sin(points[:, 0] / 30), torch.cos(points[:, 1] / 25)], dim=1)
    field = to_pixels(thin_plate_grid(points, bumps, 200, 240), 200, 240)
    at_points = sample(field, points[None, None])[0, :, 0].T
    assert float((at_points - bumps).abs().mean()) < 0.1 * float(bumps.abs().mean())


def test_a_point_with_less_smoothing_is_followed_more_tightly() -> None:
    points = torch.tensor(_points(), dtype=torch.float32)
    values = torch.zeros(len(points), 1)
    values[0] = 5.0  # one point out of line with its neighbours

    def at_first(smoothing: torch.Tensor | None) -> float:
        grid = thin_plate_grid(points, values, 200, 240, smoothing)
        return float(sample(grid, points[:1][None, None] * (1 / GRID_STEP))[0, 0, 0, 0])

    tight = torch.full((len(points),), 1e-3)
    tight[0] = 1e-7
    assert abs(at_first(tight) - 5.0) < abs(at_first(None) - 5.0)


def test_spline_anchors_keep_every_feature_and_spread_the_rest(face_model: FaceModel) -> None:
    correspondence = MediapipeCorrespondence.load(face_model)
    frontal = correspondence.landmark_points(face_model.neutral[None])[0, :, :2]
    valid = correspondence.valid
    anchored = spline_anchors(frontal, valid, interior=100)
    features = torch.zeros_like(valid)
    features[list(feature_landmarks())] = True
    assert len(feature_landmarks()) == 116  # lips 40, eyes 2 × 16, brows 2 × 10, nose 24
    assert bool((anchored <= valid).all()) and bool((anchored[valid & features]).all())
    interior = anchored & ~features
    assert int(interior.sum()) == 100

    def widest_gap(chosen: torch.Tensor) -> float:
        """How far the valid landmark farthest from any chosen one is from them."""
        return float(torch.cdist(frontal[valid], frontal[chosen]).min(dim=1).values.max())

    spread = torch.randperm(int((valid & ~features).sum()), generator=torch.Generator().manual_seed(0))
    random = valid & features
    random[torch.nonzero(valid & ~features)[:, 0][spread[:100]]] = True
    assert widest_gap(anchored) < 0.8 * widest_gap(random), "farthest-point picks cover the face evenly"


def test_spline_refuses_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="3 points but 4 values"):
        thin_plate_grid(torch.zeros(3, 2), torch.zeros(4, 2), 10, 10)


@pytest.fixture(scope="module")
def d18(face_model: FaceModel, shared_media: Path) -> tuple[dict, dict[int, FrameResult]]:
    frames = video_frames(shared_media / "liveportrait/driving/d18.mp4", {0, 80})
    with Reconstructor(face_model, mode="image") as reconstructor:
        return frames, {i: reconstructor.image(image) for i, image in frames.items()}


def test_pinned_warp_reads_the_source_landmarks_at_the_driver_landmarks(
    face_model: FaceModel, d18: tuple[dict, dict[int, FrameResult]]
) -> None:
    """d18 frame 0 driven by frame 80 (mouth open): each landmark's surface point, drawn where the
    driver's landmark is, reads the source at the source's landmark; unpinned it is pixels off."""
    frames, results = d18
    source_landmarks = results[0].tracking.landmarks
    source = prepare_source(face_model, frames[0], results[0].params, landmarks=source_landmarks)
    reenactor = Reenactor(face_model, source)
    reference = reenactor.target_params(results[0].params)
    reenactor.pin(reenactor.warp(reference), Controls(), source_landmarks)
    target = reenactor.target_params(results[80].params)
    plain = reenactor.warp(target)
    pinned = reenactor.pin(plain, Controls(), results[80].tracking.landmarks)
    valid = MediapipeCorrespondence.load(face_model).valid
    driver = torch.tensor(results[80].tracking.landmarks[:, :2])[valid]
    wanted = torch.tensor(source_landmarks[:, :2])[valid]

    def read_error(points: torch.Tensor) -> float:
        read = sample(points.permute(0, 3, 1, 2), driver[None, None])[0, :, 0].T
        return float((read - wanted).norm(dim=1).median())

    assert read_error(pinned.face_points) < 1.0
    assert read_error(plain.face_points) > 2 * read_error(pinned.face_points)
    assert pinned.target.mask.unique().tolist() == [0.0, 1.0]
    still = reenactor._moving_region[0, 0] == 0  # the background past the person's margin
    assert still.float().mean() > 0.1
    moved = (pinned.source_points - plain.source_points).norm(dim=-1)[0]
    assert float(moved[still].max()) < 1e-3, "the pinning leaves the known-still background alone"


def test_the_pinned_face_reads_each_fixed_landmark_exactly_and_leaves_the_mouth_to_the_3d_warp(
    face_model: FaceModel, d18: tuple[dict, dict[int, FrameResult]]
) -> None:
    """Between the fixed-surface landmarks the pinned face reads the source piecewise-affinely:
    each landmark, drawn where the pinning puts it, reads its own source pixel, which the spline
    alone only approaches. The mouth's inside and what the source never saw (outside the eye
    openings, read by :mod:`jr2net.eye_warp`) keep the bent 3D warp's reads."""
    frames, results = d18
    source_landmarks = results[0].tracking.landmarks
    source = prepare_source(face_model, frames[0], results[0].params, landmarks=source_landmarks)
    reenactor = Reenactor(face_model, source)
    reenactor.plan(results[0].params, Controls(), source_landmarks)
    plan = reenactor.plan(results[80].params, Controls(), results[80].tracking.landmarks)
    assert plan.pinning is not None
    warp = reenactor._warp(plan.params, plan.screen, plan.view_normals)
    pinned = reenactor._landmark_reads(plan.pinning, warp)
    bent = warp.pinned(reenactor._pinning_fields(plan.pinning, warp))
    valid = MediapipeCorrespondence.load(face_model).valid
    drawn = plan.pinning.landmarks[valid]
    wanted = torch.tensor(source_landmarks[:, :2]).float()[valid]

    def read_error(points: torch.Tensor) -> float:
        read = sample(points.permute(0, 3, 1, 2), drawn[None, None])[0, :, 0].T
        return float((read - wanted).norm(dim=1).median())

    assert read_error(pinned.face_points) < 0.1
    assert read_error(bent.face_points) > 4 * read_error(pinned.face_points)
    height, width = warp.target.mask.shape[-2:]
    eyes = eye_reads(reenactor._eyes, plan.pinning.eyes, height, width)[1][0, 0] > 0
    mouth = pinned.mouth[0, 0] > 0.5
    unseen = (pinned.covisible[0, 0] < 0.5) & (pinned.target.mask[0, 0] > 0) & ~eyes
    assert mouth.sum() > 500 and unseen.sum() > 500
    for kept in (mouth, unseen):
        assert torch.equal(pinned.face_points[0][kept], bent.face_points[0][kept])


def test_the_pinning_fields_are_scaled_by_where_the_frame_may_move() -> None:
    """A constant spline on a face in the middle: faded out around it, and 0 wherever ``moving``
    is 0, halved where it is a half."""
    height, width = 96, 128
    rows, columns = -(-height // GRID_STEP), -(-width // GRID_STEP)
    grid = torch.ones(1, 4, rows, columns)
    face = torch.zeros(1, 1, height, width)
    face[..., 32:64, 48:80] = 1.0
    moving = torch.ones(1, 1, height, width)
    moving[..., :, :16] = 0.0
    moving[..., :, 112:] = 0.5
    free, limited = fields_from_grid(grid, face), fields_from_grid(grid, face, moving)
    assert torch.allclose(free.draw_shift[..., 48, 64], torch.ones(2), atol=1e-4)
    assert bool((limited.read_shift[..., :, :16] == 0).all())
    assert torch.allclose(limited.draw_shift[..., 112:], 0.5 * free.draw_shift[..., 112:])
    assert torch.equal(limited.read_shift[..., 16:112], free.read_shift[..., 16:112])


def test_pinning_stands_aside_when_controls_set_the_face(
    face_model: FaceModel, d18: tuple[dict, dict[int, FrameResult]]
) -> None:
    frames, results = d18
    source = prepare_source(face_model, frames[0], results[0].params, landmarks=results[0].tracking.landmarks)
    reenactor = Reenactor(face_model, source)
    landmarks = results[80].tracking.landmarks
    for controls in (Controls(expression={"jawOpen": 0.3}), Controls(yaw=10.0)):
        target = reenactor.target_params(results[80].params, controls)
        plain = reenactor.warp(target)
        assert reenactor.pin(plain, controls, landmarks) is plain
    target = reenactor.target_params(results[80].params, Controls(light="side"))
    plain = reenactor.warp(target)
    assert reenactor.pin(plain, Controls(light="side"), landmarks) is not plain


def test_a_plan_drawn_by_another_reenactor_gives_the_same_frame(
    face_model: FaceModel, d18: tuple[dict, dict[int, FrameResult]]
) -> None:
    """The live pipeline plans in the reconstruct stage and draws in the reenact stage, each with
    its own reenactor of the source: the pickled plan, drawn by the other, is the frame one
    reenactor makes, and it is small (it crosses a process pipe every frame)."""
    frames, results = d18
    source = prepare_source(face_model, frames[0], results[0].params, landmarks=results[0].tracking.landmarks)
    planner, drawer, whole = (Reenactor(face_model, source) for _ in range(3))
    for index in (0, 80):
        landmarks = results[index].tracking.landmarks
        blob = pickle.dumps(planner.plan(results[index].params, Controls(), landmarks))
        drawn = drawer.draw(pickle.loads(blob)).image
        np.testing.assert_array_equal(drawn, whole(results[index].params, Controls(), landmarks).image)
    assert pickle.loads(blob).pinning is not None and len(blob) < 1_000_000
