"""Face model: shapes, names, regions, and that each expression moves what it should."""

from __future__ import annotations

import pytest
import torch

from jr2net.face_model import FaceModel, arkit_name
from jr2net.shapes import ShapeError

CHIN, NOSE_TIP, MOUTH_LEFT, BROW_INNER_LEFT = 8, 30, 54, 22  # Multi-PIE 68 (subject's left = +x)


def _vertices(model: FaceModel, expression: dict[str, float] | None = None, batch: int = 1) -> torch.Tensor:
    beta = model.expression_vector(expression or {}).expand(batch, -1)
    return model(torch.zeros(batch, model.identity_count), beta)


def test_shapes_and_sizes(face_model: FaceModel) -> None:
    assert (face_model.vertex_count, face_model.identity_count, face_model.expression_count) == (
        11248,
        100,
        53,
    )
    assert face_model.triangles.shape == (22288, 3)
    vertices = face_model(torch.randn(4, 100), torch.rand(4, 53))
    assert vertices.shape == (4, 11248, 3)
    assert face_model.landmarks(vertices).shape == (4, 68, 3)
    normals = face_model.vertex_normals(vertices)
    torch.testing.assert_close(normals.norm(dim=-1), torch.ones(4, 11248))


def test_identity_shape_then_expression_is_the_model(face_model: FaceModel) -> None:
    identity, expression = torch.randn(2, 100), torch.rand(2, 53)
    shape = face_model.identity_shape(identity)
    torch.testing.assert_close(
        face_model.with_expression(shape, expression), face_model(identity, expression)
    )
    torch.testing.assert_close(face_model.with_expression(shape, torch.zeros(2, 53)), shape)
    with pytest.raises(ShapeError):
        face_model.with_expression(shape[:, :100], expression)


def test_batch_rows_are_independent(face_model: FaceModel) -> None:
    identity, expression = torch.randn(3, 100), torch.rand(3, 53)
    batch = face_model(identity, expression)
    single = face_model(identity[1:2], expression[1:2])
    torch.testing.assert_close(batch[1:2], single)


def test_neutral_nose_tip_and_outward_normals(face_model: FaceModel) -> None:
    vertices = _vertices(face_model)
    nose = face_model.landmarks(vertices)[0, NOSE_TIP]
    torch.testing.assert_close(nose, torch.tensor([0.0, 0.41, 13.07]), atol=0.02, rtol=0)
    normal = face_model.vertex_normals(vertices)[0, face_model.landmarks68[NOSE_TIP]]
    assert normal[2] > 0.9


def test_jaw_open_moves_the_chin_down(face_model: FaceModel) -> None:
    neutral = face_model.landmarks(_vertices(face_model))[0]
    open_jaw = face_model.landmarks(_vertices(face_model, {"jawOpen": 1.0}))[0]
    assert open_jaw[CHIN, 1] < neutral[CHIN, 1] - 1.0
    assert (open_jaw[BROW_INNER_LEFT] - neutral[BROW_INNER_LEFT]).norm() < 0.05


def test_smile_left_raises_the_left_mouth_corner(face_model: FaceModel) -> None:
    neutral = face_model.landmarks(_vertices(face_model))[0]
    smile = face_model.landmarks(_vertices(face_model, {"mouthSmileLeft": 1.0}))[0]
    assert smile[MOUTH_LEFT, 1] > neutral[MOUTH_LEFT, 1] + 0.3
    assert smile[MOUTH_LEFT, 0] > neutral[MOUTH_LEFT, 0]


def test_brow_inner_up_raises_the_inner_brows(face_model: FaceModel) -> None:
    neutral = face_model.landmarks(_vertices(face_model))[0]
    raised = face_model.landmarks(_vertices(face_model, {"browInnerUp": 1.0}))[0]
    assert raised[BROW_INNER_LEFT, 1] > neutral[BROW_INNER_LEFT, 1] + 0.2
    assert raised[21, 1] > neutral[21, 1] + 0.2


@pytest.mark.parametrize("side,sign", [("_L", 1.0), ("_R", -1.0)])
def test_sided_expressions_move_their_own_side(face_model: FaceModel, side: str, sign: float) -> None:
    for index, name in enumerate(face_model.expression_names):
        if not name.endswith(side):
            continue
        delta = face_model.exp_basis[index].reshape(-1, 3).norm(dim=1)
        assert delta.max() > 0.1, name
        moved = delta > 0.5 * delta.max()
        centre_x = face_model.neutral[moved, 0].mean()
        assert sign * centre_x > 0.5, f"{name} moves x={centre_x:.2f}"


def test_every_expression_moves_the_face_area(face_model: FaceModel) -> None:
    face_area = face_model.region_vertices("face_area").numel()
    for index, name in enumerate(face_model.expression_names):
        delta = face_model.exp_basis[index].reshape(-1, 3).norm(dim=1)
        assert int(delta.argmax()) < face_area, name


def test_expression_names(face_model: FaceModel) -> None:
    assert face_model.expression_indices("jawOpen") == [face_model.expression_names.index("jawOpen")]
    assert face_model.expression_indices("eyeBlinkRight") == face_model.expression_indices("eyeBlink_R")
    assert len(face_model.expression_indices("cheekPuff")) == 2
    assert face_model.expression_indices("jawLeft") == [face_model.expression_names.index("jawLeft")]
    assert face_model.expression_indices("mouthRight") == [face_model.expression_names.index("mouthRight")]
    assert arkit_name("mouthSmile_L") == "mouthSmileLeft"
    with pytest.raises(ValueError, match="unknown expression 'smile'.*jawOpen"):
        face_model.expression_indices("smile")


def test_regions(face_model: FaceModel) -> None:
    assert face_model.region_vertices("face_area").numel() == 9409
    assert face_model.region_vertices("narrow_face").numel() == 6706
    face_triangles = face_model.region_triangles("face_area")
    assert 0 < face_triangles.shape[0] < face_model.triangles.shape[0]
    assert int(face_triangles.max()) < 9409
    with pytest.raises(ValueError, match="unknown region"):
        face_model.region_vertices("ears")


def test_wrong_shapes_name_the_argument(face_model: FaceModel) -> None:
    with pytest.raises(ShapeError, match="'identity'"):
        face_model(torch.zeros(1, 80), torch.zeros(1, 53))
    with pytest.raises(ShapeError, match="'expression'.*B=2"):
        face_model(torch.zeros(2, 100), torch.zeros(3, 53))
