"""Mirror maps: the ICT model's vertices, identity and expressions, and MediaPipe's landmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.data.build_mediapipe_mirror import mirror_costs, mirror_permutation
from jr2net.face_model import FaceModel
from jr2net.media import read_image
from jr2net.mirror import MIRROR_X, FaceMirror, mirror_angles, mirror_expression_name
from jr2net.tracking import Tracker


@pytest.fixture(scope="module")
def mirror(face_model: FaceModel) -> FaceMirror:
    return FaceMirror.of(face_model)


def _mirrored_shape(vertices: torch.Tensor, mirror: FaceMirror) -> torch.Tensor:
    return (vertices * torch.tensor(MIRROR_X))[:, mirror.vertex]


def test_every_map_is_its_own_inverse(mirror: FaceMirror, face_model: FaceModel) -> None:
    for permutation in (mirror.vertex, mirror.expression, mirror.landmarks):
        assert torch.equal(permutation[permutation], torch.arange(len(permutation)))
    identity, neutral = torch.randn(4, face_model.identity_count), torch.zeros(4, face_model.expression_count)
    twice = mirror.mirror_identity(mirror.mirror_identity(identity))
    assert (face_model(twice, neutral) - face_model(identity, neutral)).norm(dim=-1).mean() < 0.02  # cm
    assert mirror.landmarks[33] == 263 and mirror.landmarks[1] == 1, "outer eye corners swap, the nose stays"


def test_mirrored_coefficients_give_the_mirrored_shape(mirror: FaceMirror, face_model: FaceModel) -> None:
    torch.manual_seed(0)
    identity, expression = (
        torch.randn(2, face_model.identity_count),
        torch.rand(2, face_model.expression_count),
    )
    face = face_model(identity, expression)
    mirrored = face_model(mirror.mirror_identity(identity), mirror.mirror_expression(expression))
    error = (mirrored - _mirrored_shape(face, mirror)).norm(dim=-1)
    assert error.mean() < 0.05 and error.max() < 0.5  # cm, on a head about 25 cm wide
    smile = face_model.expression_vector({"mouthSmile_L": 1.0})[None]
    assert mirror.mirror_expression(smile)[0, face_model.expression_names.index("mouthSmile_R")] == 1.0


def test_expression_names_and_angles_mirror() -> None:
    assert mirror_expression_name("eyeBlink_L") == "eyeBlink_R"
    assert mirror_expression_name("jawRight") == "jawLeft" and mirror_expression_name("jawOpen") == "jawOpen"
    assert torch.equal(mirror_angles(torch.tensor([[0.1, 0.2, 0.3]])), torch.tensor([[0.1, -0.2, -0.3]]))


def test_mediapipe_on_a_flipped_photo_sees_the_renumbered_landmarks(
    mirror: FaceMirror, shared_media: Path
) -> None:
    """A photo the generated table was not made from: its flip's landmarks are the original's,
    mirrored and renumbered, to within a few percent of the eye distance."""
    image = read_image(shared_media / "liveportrait" / "source" / "s1.jpg")
    with Tracker(mode="image") as tracker:
        plain = tracker.track(image)
        flipped = tracker.track(np.ascontiguousarray(image[:, ::-1]))
        costs = mirror_costs(tracker, image)
    predicted = mirror.mirror_landmarks(torch.from_numpy(plain.landmarks[None, :, :2]), image.shape[1])[0]
    error = np.linalg.norm(predicted.numpy() - flipped.landmarks[:, :2], axis=1) / plain.inter_ocular
    assert np.median(error) < 0.05 and error.max() < 0.2
    not_renumbered = predicted.numpy()[mirror.landmarks.numpy()]
    assert (
        np.median(np.linalg.norm(not_renumbered - flipped.landmarks[:, :2], axis=1))
        > 0.3 * plain.inter_ocular
    )
    assert costs is not None and np.array_equal(costs.argmin(1)[[33, 263, 61, 291]], [263, 33, 291, 61])


def test_the_mirror_matching_rejects_what_is_not_a_mirror() -> None:
    rng = np.random.default_rng(0)
    costs = rng.random((478, 478))
    with pytest.raises(ValueError, match="one-to-one|own inverse"):
        mirror_permutation(costs)
    assert np.array_equal(mirror_permutation(1 - np.eye(478)), np.arange(478))
