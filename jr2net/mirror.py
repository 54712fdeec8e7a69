"""Left-right mirror images of faces: what a horizontally flipped picture shows, in the model's terms.

A flipped picture shows the mirrored face. On the ICT model that is the model frame mirrored in x
(ICT's mesh is symmetric: every vertex has a mirror vertex), left and right expressions swapped
(``_L`` ↔ ``_R``, ``Left`` ↔ ``Right``), the identity mapped by the linear map that mirrors its
shape (ICT's identity space is closed under mirroring to about 0.4 % per mode), pitch kept and yaw
and roll negated. MediaPipe's landmarks are renumbered by ``data/mediapipe_mirror.json``
(regenerate it with ``python -m jr2net.data.build_mediapipe_mirror``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from jr2net.face_model import FaceModel
from jr2net.shapes import check_tensor

LANDMARK_MIRROR = Path(__file__).resolve().parent / "data" / "mediapipe_mirror.json"
MIRROR_ANGLES = (1.0, -1.0, -1.0)  # pitch, yaw, roll
MIRROR_X = (-1.0, 1.0, 1.0)
_SIDES = (("_L", "_R"), ("_R", "_L"), ("Left", "Right"), ("Right", "Left"))


def mirror_expression_name(name: str) -> str:
    """The expression a mirror turns ``name`` into (``mouthSmile_L`` -> ``mouthSmile_R``)."""
    for side, other in _SIDES:
        if name.endswith(side):
            return name[: -len(side)] + other
    return name


def mirror_vertices(neutral: Tensor, chunk: int = 2048) -> Tensor:
    """(V,) int64: the vertex nearest to each vertex of the (V, 3) mean shape mirrored in x."""
    check_tensor("neutral", neutral, ("V", 3))
    mirrored = neutral * torch.tensor(MIRROR_X, dtype=neutral.dtype)
    return torch.cat([torch.cdist(part, neutral).argmin(1) for part in mirrored.split(chunk)])


@dataclass(frozen=True)
class FaceMirror:
    """The mirror maps of one face model and of MediaPipe's landmarks.

    Attributes:
        vertex: (V,) int64 mirror vertex of each vertex.
        identity: (I, I) ``identity @ this`` is the mirrored face's identity (least squares).
        expression: (E,) int64 ``expression[:, this]`` is the mirrored face's expression.
        landmarks: (478,) int64 ``landmarks[:, this]`` (with x mirrored) are the mirrored face's.
    """

    vertex: Tensor
    identity: Tensor
    expression: Tensor
    landmarks: Tensor

    @classmethod
    def of(cls, model: FaceModel) -> FaceMirror:
        """The maps of ``model`` (a symmetric mesh whose identity space mirrors onto itself)."""
        vertex = mirror_vertices(model.neutral)
        if not torch.equal(vertex[vertex], torch.arange(model.vertex_count)):
            raise ValueError("the face model's mesh is not left-right symmetric")
        basis = model.id_basis.reshape(model.identity_count, -1, 3).double()
        mirrored = (basis * torch.tensor(MIRROR_X, dtype=basis.dtype))[:, vertex]
        identity = torch.linalg.lstsq(
            basis.reshape(model.identity_count, -1).T, mirrored.flatten(1).T
        ).solution
        names = list(model.expression_names)
        expression = torch.tensor([names.index(mirror_expression_name(name)) for name in names])
        landmarks = torch.tensor(json.loads(LANDMARK_MIRROR.read_text())["permutation"])
        return cls(vertex=vertex, identity=identity.T.float(), expression=expression, landmarks=landmarks)

    def mirror_identity(self, identity: Tensor) -> Tensor:
        """(B, I) identities -> those of the mirrored faces."""
        return identity @ self.identity

    def mirror_expression(self, expression: Tensor) -> Tensor:
        """(B, E) expressions -> those of the mirrored faces."""
        return expression[:, self.expression]

    def mirror_landmarks(self, landmarks: Tensor, width: float) -> Tensor:
        """(B, 478, 2) pixel landmarks of images ``width`` wide -> those of the flipped images."""
        flipped = landmarks[:, self.landmarks].clone()
        flipped[..., 0] = width - flipped[..., 0]
        return flipped


def mirror_angles(angles: Tensor) -> Tensor:
    """(B, 3) Euler angles (pitch, yaw, roll) -> those of the mirrored pose."""
    return angles * torch.tensor(MIRROR_ANGLES, dtype=angles.dtype, device=angles.device)
