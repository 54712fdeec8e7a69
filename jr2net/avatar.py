"""The built-in avatar: the ICT face itself, rendered with the default skin albedo and a light.

The whole picture is model, so the reenactor warps its whole head (region ``head_neck``).
"""

from __future__ import annotations

import numpy as np
import torch

from jr2net.face_model import FaceModel
from jr2net.image_io import to_uint8
from jr2net.params import FaceParams, ParamLayout
from jr2net.render import render_face

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


def render_portrait(model: FaceModel, params: FaceParams, size: int) -> np.ndarray:
    """The face of ``params`` (a batch of one) on the avatar's background: RGB uint8 (size, size, 3)."""
    with torch.no_grad():
        maps = render_face(model, params, size, size)
    background = torch.tensor(BACKGROUND).view(3, 1, 1)
    return to_uint8(maps.image[0] * maps.mask[0] + background * (1 - maps.mask[0]))
