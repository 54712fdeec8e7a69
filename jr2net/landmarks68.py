"""The 68 Multi-PIE landmarks of the fitted face in an image, in dlib's annotation convention.

Each landmark is a surface point of the ICT mesh (a triangle and barycentrics) from
``jr2net/data/landmarks68_ict.json``, calibrated against dlib on the training photos (regenerate
with ``python -m jr2net.data.build_landmarks68``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from jr2net.camera import euler_to_matrix, intrinsics, model_to_camera, project
from jr2net.face_model import FaceModel
from jr2net.params import FaceParams

DATA = Path(__file__).resolve().parent / "data" / "landmarks68_ict.json"


@dataclass(frozen=True)
class Landmarks68:
    """Surface points of the 68 landmarks on the ICT mesh.

    Attributes:
        corners: (68, 3) int64 vertex indices of each landmark's triangle.
        barycentrics: (68, 3) float32 weights of those corners.
    """

    corners: Tensor
    barycentrics: Tensor

    @classmethod
    def load(cls, path: Path = DATA) -> Landmarks68:
        """Read the generated file."""
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing; regenerate it with python -m jr2net.data.build_landmarks68"
            )
        data = json.loads(path.read_text())
        return cls(
            corners=torch.tensor(data["corners"], dtype=torch.int64),
            barycentrics=torch.tensor(data["barycentrics"], dtype=torch.float32),
        )

    def project(self, model: FaceModel, params: FaceParams, height: int, width: int) -> Tensor:
        """Pixel positions (68, 2) of the landmarks of the first face of ``params``."""
        params = params.select(0)
        rotation = euler_to_matrix(params.rotation)
        vertices = model(params.identity, params.expression)
        camera = model_to_camera(vertices, rotation, params.translation)
        screen = project(camera, intrinsics(params.focal, height, width))[0, :, :2]
        return (screen[self.corners] * self.barycentrics[..., None]).sum(dim=1)
