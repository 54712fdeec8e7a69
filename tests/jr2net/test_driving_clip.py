"""The synthetic driving clip: its script, its file, and what MediaPipe sees in it."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.camera import matrix_to_euler
from jr2net.driving_clip import driving_params, eased, render_driving_clip
from jr2net.face_model import FaceModel
from jr2net.media import iter_video_frames, probe_video
from jr2net.tracking import Tracker, Tracking

SIZE, SECONDS, FPS = 192, 2.0, 12  # 24 frames: the whole script, a second or so to render and track


@pytest.fixture(scope="module")
def clip(face_model: FaceModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_driving_clip(
        face_model, tmp_path_factory.mktemp("clip") / "driving.mp4", SIZE, SECONDS, FPS
    )


@pytest.fixture(scope="module")
def frames(clip: Path) -> list[tuple[int, float, np.ndarray]]:
    return list(iter_video_frames(clip))


def _scripted(face_model: FaceModel, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(count,) scripted jawOpen weights and yaw angles in degrees."""
    params = driving_params(face_model, SIZE, count)
    jaw = face_model.expression_names.index("jawOpen")
    return (
        np.array([float(p.expression[0, jaw]) for p in params]),
        np.array([math.degrees(float(p.rotation[0, 1])) for p in params]),
    )


def _tracked_yaw_deg(tracking: Tracking) -> float:
    """MediaPipe's head yaw in the model's Euler convention (as the fitter reads its head matrix)."""
    u, _, vh = np.linalg.svd(tracking.head_matrix[:3, :3].astype(np.float64))
    return math.degrees(float(matrix_to_euler(torch.from_numpy(u @ vh))[1]))


def test_eased_tracks_hit_their_keys_smoothly_and_hold_outside() -> None:
    keys = ((0.2, 0.0), (0.5, 1.0), (0.8, -1.0))
    phases = np.array([0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0])
    np.testing.assert_allclose(eased(keys, phases), [0.0, 0.0, 0.5, 1.0, 0.0, -1.0, -1.0], atol=1e-12)
    step = 0.001
    fine = eased(keys, np.arange(0.0, 1.0 + step / 2, step))
    steepest = math.pi / 2 * 2.0 / 0.3  # the cosine ease's top slope on the steepest segment, per unit phase
    assert np.abs(np.diff(fine)).max() <= steepest * step, "no jumps"


def test_the_script_starts_neutral_and_acts_every_part(face_model: FaceModel) -> None:
    params = driving_params(face_model, SIZE, 150)
    expression = torch.cat([p.expression for p in params])
    rotation = torch.cat([p.rotation for p in params])
    assert len(params) == 150 and all(p.batch_size == 1 and p.albedo is not None for p in params)
    assert expression[0].abs().max() == 0 and rotation[0].abs().max() == 0
    assert expression[-1].abs().max() == 0 and rotation[-1].abs().max() == 0
    peaks = expression.max(dim=0).values
    for name in ("jawOpen", "mouthSmile_L", "mouthSmile_R", "eyeBlink_L", "eyeBlink_R"):
        assert peaks[face_model.expression_names.index(name)] > 0.5, name
    yaw = np.degrees(rotation[:, 1].numpy())
    assert yaw.max() > 19 and yaw.min() < -19 and np.abs(rotation[:, 0].numpy()).max() > 0
    assert np.abs(np.diff(yaw)).max() < 3.0, "a smooth turn: under 3° a frame (90°/s) at 30 fps"
    assert params[0].identity.abs().max() > 0, "the driver is not the avatar's mean face"
    torch.testing.assert_close(driving_params(face_model, SIZE, 150)[77].expression, params[77].expression)
    with pytest.raises(ValueError, match="at least 2 frames"):
        driving_params(face_model, SIZE, 1)


def test_the_clip_has_the_requested_frames(clip: Path, frames: list[tuple[int, float, np.ndarray]]) -> None:
    info = probe_video(clip)
    assert (info.fps, info.width, info.height, info.has_audio) == (Fraction(FPS), SIZE, SIZE, False)
    assert info.frame_count == len(frames) == round(SECONDS * FPS)
    assert all(image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8 for _, _, image in frames)
    np.testing.assert_allclose([t for _, t, _ in frames], np.arange(len(frames)) / FPS, atol=1e-6)


@pytest.mark.parametrize("mode", ["image", "video"])
def test_mediapipe_tracks_the_script_in_every_frame(
    face_model: FaceModel, frames: list[tuple[int, float, np.ndarray]], mode: str
) -> None:
    with Tracker(mode=mode) as tracker:
        seen = [
            tracker.track(image, round(t * 1000) + 1 if mode == "video" else None) for _, t, image in frames
        ]
    assert [i for i, tracking in enumerate(seen) if not tracking.face] == []
    jaw = np.array([t.blendshapes[t.blendshape_names.index("jawOpen")] for t in seen])
    yaw = np.array([_tracked_yaw_deg(t) for t in seen])
    scripted_jaw, scripted_yaw = _scripted(face_model, len(frames))
    assert jaw[0] < 0.1 and abs(yaw[0]) < 5, "neutral and frontal at the start"
    assert jaw[scripted_jaw > 0.5].min() > 0.3, "the mouth reads open where the jaw is open"
    assert jaw[scripted_jaw == 0].max() < 0.15
    turned = np.abs(scripted_yaw) > 10
    assert turned.sum() >= 4 and np.array_equal(np.sign(yaw[turned]), np.sign(scripted_yaw[turned]))
    assert yaw.max() > 10 and yaw.min() < -10, "the head turns both ways"
