"""FaceParams: validation and the JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from jr2net.face_model import FaceModel
from jr2net.params import FaceParams, ParamLayout
from jr2net.shapes import ShapeError


def _random(layout: ParamLayout, batch: int, with_albedo: bool) -> FaceParams:
    return FaceParams(
        identity=torch.randn(batch, layout.identity_count),
        expression=torch.rand(batch, layout.expression_count),
        rotation=torch.randn(batch, 3) * 0.3,
        translation=torch.randn(batch, 3) + torch.tensor([0.0, 0.0, 60.0]),
        focal=torch.rand(batch) * 1000 + 200,
        light=torch.randn(batch, 9, 3),
        albedo=torch.rand(batch, layout.vertex_count, 3) if with_albedo else None,
    )


@pytest.mark.parametrize("with_albedo", [False, True])
def test_json_round_trip_is_exact(face_model: FaceModel, with_albedo: bool) -> None:
    params = _random(ParamLayout.of(face_model), 2, with_albedo).select(1)
    restored = FaceParams.from_json(json.loads(json.dumps(params.to_json())))
    for field in dataclasses.fields(FaceParams):
        original, back = getattr(params, field.name), getattr(restored, field.name)
        assert (original is None and back is None) or torch.equal(original, back), field.name


def test_json_needs_one_face_and_right_format(face_model: FaceModel) -> None:
    params = _random(ParamLayout.of(face_model), 2, False)
    with pytest.raises(ValueError, match="batch of one"):
        params.to_json()
    with pytest.raises(ValueError, match="not a FaceParams"):
        FaceParams.from_json({"identity": [0.0]})


def test_wrong_shapes_are_rejected(face_model: FaceModel) -> None:
    params = FaceParams.neutral(ParamLayout.of(face_model), batch_size=2)
    with pytest.raises(ShapeError, match="'light'"):
        params.replace(light=torch.zeros(2, 4, 3))
    with pytest.raises(ShapeError, match="'focal'.*B=2"):
        params.replace(focal=torch.ones(3))


def test_default_albedo(face_model: FaceModel) -> None:
    params = FaceParams.neutral(ParamLayout.of(face_model), batch_size=2)
    albedo = params.albedo_or_default(face_model.vertex_count)
    assert albedo.shape == (2, face_model.vertex_count, 3)
    assert torch.all((albedo > 0) & (albedo < 1))
