"""Renderer facade: maps of the ICT head, and gradients through them."""

from __future__ import annotations

import math

import pytest
import torch

from jr2net.face_model import FaceModel
from jr2net.params import FaceParams, ParamLayout
from jr2net.render import rasterize, render_face

SIZE = 96


def _params(face_model: FaceModel) -> FaceParams:
    params = FaceParams.neutral(ParamLayout.of(face_model), distance=60.0, focal=SIZE * 60 / 34)
    return params.replace(
        translation=torch.tensor([[0.0, 2.4, 60.0]]), rotation=torch.tensor([[0.0, math.radians(15), 0.0]])
    )


def test_maps_of_the_head(face_model: FaceModel) -> None:
    maps = render_face(face_model, _params(face_model), SIZE, SIZE)
    mask = maps.mask[0, 0].bool()
    assert 0.3 < mask.float().mean() < 0.8
    for name in ("depth", "normal", "light", "albedo", "image"):
        assert torch.all(getattr(maps, name)[0][:, ~mask] == 0), name
    torch.testing.assert_close(maps.normal[0][:, mask].norm(dim=0), torch.ones(int(mask.sum())))
    depth = maps.depth[0, 0][mask]
    assert 45 < depth.min() < depth.max() < 75
    torch.testing.assert_close(maps.image, maps.albedo * maps.light)
    facing = maps.normal[0, 2][mask]
    assert (facing > 0).float().mean() > 0.9


def test_gradients_reach_expression_and_light(face_model: FaceModel) -> None:
    params = _params(face_model)
    expression = params.expression.clone().requires_grad_()
    light = params.light.clone().requires_grad_()
    maps = render_face(face_model, params.replace(expression=expression, light=light), SIZE, SIZE)
    (maps.image.mean() + maps.depth.mean()).backward()
    assert expression.grad.abs().sum() > 0
    assert light.grad.abs().sum() > 0


def test_region_restricts_the_render(face_model: FaceModel) -> None:
    full = render_face(face_model, _params(face_model), SIZE, SIZE).mask.sum()
    face = render_face(face_model, _params(face_model), SIZE, SIZE, region="face_area").mask.sum()
    assert 0 < face < full


def test_unknown_backend(face_model: FaceModel) -> None:
    with pytest.raises(ValueError, match="unknown kernel backend"):
        rasterize(torch.zeros(1, 3, 3), torch.tensor([[0, 1, 2]]), 8, 8, backend="vulkan")
