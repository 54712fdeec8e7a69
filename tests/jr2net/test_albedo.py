"""Light and albedo estimation recovers what a render was made with."""

from __future__ import annotations

import math

import torch

from jr2net.albedo import estimate_appearance
from jr2net.face_model import FaceModel
from jr2net.image_io import to_uint8
from jr2net.lighting import irradiance, light_preset
from jr2net.params import DEFAULT_ALBEDO, FaceParams, ParamLayout
from jr2net.render import render_face


def test_recovers_light_and_albedo_of_a_render(face_model: FaceModel) -> None:
    size = 256
    params = FaceParams.neutral(ParamLayout.of(face_model), distance=50.0, focal=size * 50 / 28, light="side")
    params = params.replace(
        translation=torch.tensor([[0.0, 1.0, 50.0]]), rotation=torch.tensor([[0.0, math.radians(15), 0.0]])
    )
    with torch.no_grad():
        maps = render_face(face_model, params, size, size)
    photo = to_uint8(maps.image[0] * maps.mask[0])
    estimate = estimate_appearance(face_model, params, photo)
    seen = estimate.visibility > 0
    assert seen.sum() > 1500
    normals = torch.nn.functional.normalize(torch.randn(500, 3), dim=-1)
    normals[:, 2] = normals[:, 2].abs()
    truth = irradiance(normals[None], light_preset("side")[None])
    estimated = irradiance(normals[None], estimate.light[None])
    assert (estimated - truth).abs().median() < 0.05
    error = (estimate.albedo[seen] - torch.tensor(DEFAULT_ALBEDO)).abs()
    assert error.median() < 0.03
