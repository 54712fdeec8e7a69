"""The ICT-FaceKit linear face model as an ``nn.Module`` (bases as buffers).

``vertices = neutral + identity @ id_basis + expression @ exp_basis`` in centimetres, model frame:
+x toward the subject's left, +y up, +z out of the face.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from jr2net.assets import ICT_FACE_MODEL, AssetError, locate
from jr2net.shapes import check_tensor

REGIONS = ("face_area", "narrow_face", "head_neck")
_SIDES = {"Left": "_L", "Right": "_R"}


def arkit_name(ict_name: str) -> str:
    """ARKit spelling of an ICT expression name (``mouthSmile_L`` -> ``mouthSmileLeft``).

    ICT splits ``browInnerUp`` and ``cheekPuff`` into halves; their ARKit names keep the side suffix.
    """
    for side, suffix in _SIDES.items():
        if ict_name.endswith(suffix):
            return ict_name[: -len(suffix)] + side
    return ict_name


def face_normals(vertices: Tensor, triangles: Tensor) -> Tensor:
    """Area-weighted (unnormalised) triangle normals: (B, V, 3), (F, 3) -> (B, F, 3)."""
    a, b, c = (torch.index_select(vertices, 1, triangles[:, k]) for k in range(3))
    return torch.linalg.cross(b - a, c - a, dim=-1)


def vertex_normals(vertices: Tensor, triangles: Tensor) -> Tensor:
    """Unit vertex normals, area-weighted mean of the adjacent triangles: (B, V, 3) -> (B, V, 3)."""
    batch, vertex_count = vertices.shape[:2]
    per_face = face_normals(vertices, triangles).repeat(1, 3, 1).reshape(-1, 3)
    offsets = torch.arange(batch, device=vertices.device)[:, None] * vertex_count
    corners = (triangles.T.reshape(1, -1) + offsets).reshape(-1)
    flat = torch.zeros(batch * vertex_count, 3, dtype=vertices.dtype, device=vertices.device)
    normals = flat.index_add(0, corners, per_face).reshape(batch, vertex_count, 3)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


class FaceModel(nn.Module):
    """Linear 3DMM with 100 identity modes and 53 ARKit-named expression blendshapes.

    Buffers:
        neutral: (V, 3) mean shape in cm.
        id_basis: (I, V*3) identity deltas (weights ~ N(0, 1)).
        exp_basis: (E, V*3) expression deltas (weights in [0, 1]).
        triangles: (F, 3) int64 vertex indices, counter-clockwise seen from outside.
        landmarks68: (68,) int64 Multi-PIE landmark vertex indices.
    """

    neutral: Tensor
    id_basis: Tensor
    exp_basis: Tensor
    triangles: Tensor
    landmarks68: Tensor

    def __init__(
        self,
        neutral: np.ndarray,
        id_basis: np.ndarray,
        exp_basis: np.ndarray,
        triangles: np.ndarray,
        landmarks68: np.ndarray,
        expression_names: list[str],
        face_area_vertex_count: int,
        narrow_face_vertex_count: int,
    ) -> None:
        super().__init__()
        vertex_count = neutral.shape[0]
        self.register_buffer("neutral", torch.as_tensor(neutral, dtype=torch.float32))
        self.register_buffer(
            "id_basis", torch.as_tensor(id_basis, dtype=torch.float32).reshape(-1, vertex_count * 3)
        )
        self.register_buffer(
            "exp_basis", torch.as_tensor(exp_basis, dtype=torch.float32).reshape(-1, vertex_count * 3)
        )
        self.register_buffer("triangles", torch.as_tensor(triangles, dtype=torch.int64))
        self.register_buffer("landmarks68", torch.as_tensor(landmarks68, dtype=torch.int64))
        self.expression_names: tuple[str, ...] = tuple(expression_names)
        self.region_vertex_counts = {
            "face_area": int(face_area_vertex_count),
            "narrow_face": int(narrow_face_vertex_count),
            "head_neck": vertex_count,
        }

    @classmethod
    def from_npz(cls, path: Path) -> FaceModel:
        """Load a model from an ``ict_face_model.npz`` file (validated by :mod:`jr2net.assets`)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(
                    neutral=data["neutral"],
                    id_basis=data["id_basis"],
                    exp_basis=data["exp_basis"],
                    triangles=data["triangles"],
                    landmarks68=data["landmarks68"],
                    expression_names=[str(n) for n in data["expression_names"]],
                    face_area_vertex_count=int(data["face_area_vertex_count"]),
                    narrow_face_vertex_count=int(data["narrow_face_vertex_count"]),
                )
        except (OSError, KeyError, ValueError) as error:
            raise AssetError(f"cannot load the face model from {path}: {error}") from error

    @classmethod
    def load(cls) -> FaceModel:
        """Load the ICT face model found by the asset locator."""
        return cls.from_npz(locate(ICT_FACE_MODEL))

    @property
    def vertex_count(self) -> int:
        return self.neutral.shape[0]

    @property
    def identity_count(self) -> int:
        return self.id_basis.shape[0]

    @property
    def expression_count(self) -> int:
        return self.exp_basis.shape[0]

    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        """Vertices of a batch of faces.

        Args:
            identity: (B, I) identity coefficients.
            expression: (B, E) expression blendshape weights.

        Returns:
            (B, V, 3) vertices in cm, model frame.
        """
        dims = check_tensor("identity", identity, ("B", self.identity_count))
        check_tensor("expression", expression, ("B", self.expression_count), dims)
        return self.with_expression(self.identity_shape(identity), expression)

    def identity_shape(self, identity: Tensor) -> Tensor:
        """The expressionless faces of identities: (B, I) -> (B, V, 3) in cm, model frame."""
        check_tensor("identity", identity, ("B", self.identity_count))
        return self.neutral + (identity @ self.id_basis).reshape(-1, self.vertex_count, 3)

    def with_expression(self, shape: Tensor, expression: Tensor) -> Tensor:
        """Identity shapes (B, V, 3) (from :meth:`identity_shape`) with expressions (B, E) applied."""
        dims = check_tensor("shape", shape, ("B", self.vertex_count, 3))
        check_tensor("expression", expression, ("B", self.expression_count), dims)
        return shape + (expression @ self.exp_basis).reshape(-1, self.vertex_count, 3)

    def vertex_normals(self, vertices: Tensor) -> Tensor:
        """Unit vertex normals of this model's mesh: (B, V, 3) -> (B, V, 3)."""
        check_tensor("vertices", vertices, ("B", self.vertex_count, 3))
        return vertex_normals(vertices, self.triangles)

    def landmarks(self, vertices: Tensor) -> Tensor:
        """The 68 Multi-PIE landmarks: (B, V, 3) -> (B, 68, 3)."""
        check_tensor("vertices", vertices, ("B", self.vertex_count, 3))
        return vertices[:, self.landmarks68]

    def region_vertices(self, region: str) -> Tensor:
        """Indices (N,) of the vertices of a region: ``face_area``, ``narrow_face`` or ``head_neck``."""
        if region not in self.region_vertex_counts:
            raise ValueError(f"unknown region {region!r}; choose from {REGIONS}")
        return torch.arange(self.region_vertex_counts[region], device=self.neutral.device)

    def region_triangles(self, region: str) -> Tensor:
        """Triangles (F_r, 3) whose corners all lie in a region."""
        count = self.region_vertices(region).numel()
        return self.triangles[(self.triangles < count).all(dim=1)]

    def expression_indices(self, name: str) -> list[int]:
        """Indices of an expression by ICT or ARKit name.

        ``jawOpen``, ``mouthSmile_L`` and ``mouthSmileLeft`` name one blendshape each; an ARKit name
        that ICT splits into halves (``browInnerUp``, ``cheekPuff``) names both.
        """
        ict = re.sub(r"(Left|Right)$", lambda m: _SIDES[m.group(1)], name)
        for candidate in (name, ict):
            if candidate in self.expression_names:
                return [self.expression_names.index(candidate)]
        halves = [
            self.expression_names.index(name + s) for s in ("_L", "_R") if name + s in self.expression_names
        ]
        if halves:
            return halves
        choices = ", ".join(sorted({arkit_name(n) for n in self.expression_names}))
        raise ValueError(f"unknown expression {name!r}; the model has: {choices}")

    def expression_vector(self, weights: dict[str, float]) -> Tensor:
        """An (E,) expression vector from ``{name: weight}`` (ICT or ARKit names), zero elsewhere."""
        vector = torch.zeros(self.expression_count, device=self.neutral.device)
        for name, weight in weights.items():
            vector[self.expression_indices(name)] = float(weight)
        return vector
