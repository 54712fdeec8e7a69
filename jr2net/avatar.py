"""The built-in avatar: the ICT face itself, rendered with the default skin albedo and a light.

The whole picture is model, so the reenactor draws it from the model at each target
(:func:`draw_avatar`) instead of warping its picture: a warp smears what the picture saw edge-on
when the head turns and leaves the frontal head behind on the background.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jr2net.face_model import FaceModel
from jr2net.geometry import face_geometry
from jr2net.image_io import to_uint8
from jr2net.params import FaceParams, ParamLayout
from jr2net.render import render_maps

DISTANCE_CM = 60.0
FIELD_OF_VIEW_CM = 34.0
HEAD_CENTRE_Y_CM = -2.4
BACKGROUND = (0.78, 0.80, 0.84)
REGION = "head_neck"


def portrait_params(model: FaceModel, size: int, light: str = "studio") -> FaceParams:
    """Mean face, neutral, frontal, framed head and shoulders in a (size, size) image."""
    params = FaceParams.neutral(
        ParamLayout.of(model), distance=DISTANCE_CM, focal=size * DISTANCE_CM / FIELD_OF_VIEW_CM, light=light
    )
    return params.replace(translation=torch.tensor([[0.0, -HEAD_CENTRE_Y_CM, DISTANCE_CM]]))


def model_source(model: FaceModel, size: int = 512, light: str = "studio") -> tuple[np.ndarray, FaceParams]:
    """An RGB uint8 (size, size, 3) portrait of the ICT face and the FaceParams (with albedo) it shows."""
    params = portrait_params(model, size, light)
    params = params.replace(albedo=params.albedo_or_default(model.vertex_count).clone())
    return render_portrait(model, params, size), params


def draw_avatar(
    model: FaceModel, params: FaceParams, screen: Tensor, view_normals: Tensor, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """The avatar's head (its ``REGION``) with ``params`` (their light and albedo) on its
    background, from the params' vertices ``screen`` and ``view_normals`` (1, V, 3) at this size
    (:func:`jr2net.geometry.face_geometry`): the image (1, 3, H, W) in [0, 1] and the head's mask
    (1, 1, H, W)."""
    albedo = params.albedo_or_default(model.vertex_count)
    triangles = model.region_triangles(REGION)
    with torch.no_grad():
        maps = render_maps(screen, view_normals, albedo, params.light, triangles, height, width)
    background = torch.tensor(BACKGROUND).view(1, 3, 1, 1)
    return maps.image * maps.mask + background * (1 - maps.mask), maps.mask


def render_portrait(model: FaceModel, params: FaceParams, size: int) -> np.ndarray:
    """The face of ``params`` (a batch of one) on the avatar's background: RGB uint8 (size, size, 3)."""
    geometry = face_geometry(model, params, size, size)
    return to_uint8(draw_avatar(model, params, geometry.screen, geometry.view_normals, size, size)[0][0])
