"""The 68 Multi-PIE landmarks of the fitted face in an image, in dlib's annotation convention.

Inner landmarks (17-67) and the chin (7-9) are surface points of the ICT mesh (a triangle and
barycentrics). The rest of the jaw follows the visible outline of the face, which slides over the
surface as the head turns: each of those landmarks is the outermost visible face vertex along a
calibrated direction from the centre of the eyes and mouth, measured in the head's own image axes
(contour-aware; the chin stays a surface point because below it the outline runs onto the
under-chin and neck). Both come from
``jr2net/data/landmarks68_ict.json``, calibrated against dlib on the training photos (regenerate
with ``python -m jr2net.data.build_landmarks68``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from jr2net.face_model import FaceModel
from jr2net.geometry import OUTLINE_VISIBILITY_TOLERANCE, depth_visible, face_geometry
from jr2net.params import FaceParams
from jr2net.render import rasterize

DATA = Path(__file__).resolve().parent / "data" / "landmarks68_ict.json"
OUTLINE_JAW = (*range(0, 7), *range(10, 17))
OUTLINE_ANCHORS = (36, 39, 42, 45, 48, 54)
WEDGE = math.radians(3.0)


def outline_frame(anchors: Tensor, leftward: Tensor) -> tuple[Tensor, Tensor]:
    """Centre (2,) and orthonormal image axes (2, 2) of the head: rows are its left and its down.

    Args:
        anchors: (6, 2) pixel positions of the eye and mouth corners (:data:`OUTLINE_ANCHORS`).
        leftward: (2,) image direction of the head's +x axis (the subject's left).
    """
    across = torch.nn.functional.normalize(leftward, dim=0)
    down = torch.stack([-across[1], across[0]])
    return anchors.mean(dim=0), torch.stack([across, down])


def outline_angles(points: Tensor, centre: Tensor, axes: Tensor) -> tuple[Tensor, Tensor]:
    """Angles (N,) and radii (N,) of pixel positions (N, 2) in an outline frame."""
    relative = (points - centre) @ axes.T
    return torch.atan2(relative[:, 1], relative[:, 0]), relative.norm(dim=1)


@dataclass(frozen=True)
class Landmarks68:
    """Surface points and jaw directions of the 68 landmarks on the ICT mesh.

    Attributes:
        corners: (68, 3) int64 vertex indices of each landmark's triangle.
        barycentrics: (68, 3) float32 weights of those corners.
        jaw_angles: (14,) float32 directions (radians) of the :data:`OUTLINE_JAW` landmarks in the
            outline frame.
    """

    corners: Tensor
    barycentrics: Tensor
    jaw_angles: Tensor

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
            jaw_angles=torch.tensor(data["jaw_angles"], dtype=torch.float32),
        )

    def surface_points(self, screen: Tensor) -> Tensor:
        """Pixel positions (68, 2) of the surface points, from projected vertices (V, 2)."""
        return (screen[self.corners] * self.barycentrics[..., None]).sum(dim=1)

    def placed(
        self, model: FaceModel, params: FaceParams, height: int, width: int
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The first face of ``params`` in the image: screen vertices (1, V, 3), surface points
        (68, 2), and the outline frame's centre (2,) and axes (2, 2)."""
        geometry = face_geometry(model, params.select(0), height, width)
        screen = geometry.screen
        points = self.surface_points(screen[0, :, :2])
        axis_ends = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
        axis = geometry.project(axis_ends)[0, :, :2]
        centre, axes = outline_frame(points[list(OUTLINE_ANCHORS)], axis[1] - axis[0])
        return screen, points, centre, axes

    def project(self, model: FaceModel, params: FaceParams, height: int, width: int) -> Tensor:
        """Pixel positions (68, 2) of the landmarks of the first face of ``params``."""
        screen, points, centre, axes = self.placed(model, params, height, width)
        outline = screen[0, visible_face_vertices(model, screen, height, width), :2]
        angles, radii = outline_angles(outline, centre, axes)
        for landmark, direction in zip(OUTLINE_JAW, self.jaw_angles):
            in_wedge = torch.remainder(angles - direction + math.pi, 2 * math.pi).sub(math.pi).abs() < WEDGE
            if in_wedge.any():
                points[landmark] = outline[in_wedge][radii[in_wedge].argmax()]
        return points


def visible_face_vertices(model: FaceModel, screen: Tensor, height: int, width: int) -> Tensor:
    """Indices of the narrow-face vertices not hidden by the face itself, from (1, V, 3) screen vertices."""
    fragments = rasterize(screen.contiguous(), model.region_triangles("face_area"), height, width)
    candidates = model.region_vertices("narrow_face")
    return candidates[depth_visible(screen[0, candidates], fragments.depth[0], OUTLINE_VISIBILITY_TOLERANCE)]
