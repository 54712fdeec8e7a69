"""MediaPipe ↔ ICT: landmark points on the mesh and the blendshape-to-expression map.

Loads ``jr2net/data/mediapipe_ict.json`` (regenerate it with
``python -m jr2net.data.build_mediapipe_ict``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from jr2net.face_model import FaceModel
from jr2net.shapes import check_tensor

DATA = Path(__file__).resolve().parent / "data" / "mediapipe_ict.json"


@dataclass(frozen=True)
class MediapipeCorrespondence:
    """Where MediaPipe's landmarks sit on the ICT mesh, and how its blendshapes drive ICT's.

    Attributes:
        corners: (478, 3) int64 vertex indices of the triangle under each landmark.
        barycentrics: (478, 3) float32 weights of those corners.
        valid: (478,) bool, False for iris and silhouette landmarks (no fixed surface point).
        blendshape_matrix: (E, 52) float32, ``expression = blendshape_matrix @ scores``.
        blendshape_names: MediaPipe's 52 category names, in score order.
    """

    corners: Tensor
    barycentrics: Tensor
    valid: Tensor
    blendshape_matrix: Tensor
    blendshape_names: tuple[str, ...]

    @classmethod
    def load(cls, model: FaceModel, path: Path = DATA) -> MediapipeCorrespondence:
        """Read the generated file for ``model``'s expression order."""
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing; regenerate it with python -m jr2net.data.build_mediapipe_ict"
            )
        data = json.loads(path.read_text())
        names = tuple(data["blendshapes"]["mediapipe_names"])
        matrix = torch.zeros(model.expression_count, len(names))
        for column, name in enumerate(names):
            for target in data["blendshapes"]["mediapipe_to_ict"].get(name, []):
                matrix[model.expression_names.index(target), column] = 1.0
        landmarks = data["landmarks"]
        return cls(
            corners=torch.tensor(landmarks["triangles"], dtype=torch.int64),
            barycentrics=torch.tensor(landmarks["barycentrics"], dtype=torch.float32),
            valid=torch.tensor(landmarks["valid"], dtype=torch.bool),
            blendshape_matrix=matrix,
            blendshape_names=names,
        )

    def landmark_points(self, vertices: Tensor) -> Tensor:
        """The 478 landmark points of meshes: (B, V, 3) -> (B, 478, 3)."""
        check_tensor("vertices", vertices, ("B", "V", 3))
        return (vertices[:, self.corners] * self.barycentrics[None, :, :, None]).sum(dim=2)

    def expression_from_blendshapes(self, scores: Tensor) -> Tensor:
        """ICT expression weights from MediaPipe scores: (B, 52) -> (B, E)."""
        check_tensor("scores", scores, ("B", len(self.blendshape_names)))
        return scores @ self.blendshape_matrix.T
