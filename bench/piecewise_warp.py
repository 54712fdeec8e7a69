"""A 2D piecewise-affine warp of an image by moved landmarks: the baseline a 3D reenactor must beat.

Two layers of triangles: the face, the Delaunay triangles of the source landmarks (they tile the
landmarks' convex hull), and the margin, the triangles touching the border in a Delaunay
triangulation of the landmarks together with the image's 4 corners and 4 edge midpoints. Those 8
points never move, so the image edges stay put and the face region and a margin around it
deform. Each target pixel takes the source pixel its triangle's affine map sends it to
(bilinear); the face layer is drawn over the margin, so a fold in the margin never hides the face,
and inside the hull an affine motion of all landmarks moves the image exactly affinely. A pixel
that no triangle covers (a fold of the margin) keeps the source pixel.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import Delaunay

from jr2net.compositing import sample
from jr2net.render import interpolate, rasterize


def border_points(height: int, width: int) -> np.ndarray:
    """The image's 4 corners and 4 edge midpoints (8, 2) in pixel coordinates (x, y)."""
    xs, ys = (0.0, width / 2, float(width)), (0.0, height / 2, float(height))
    return np.array([(x, y) for y in ys for x in xs if (x, y) != (width / 2, height / 2)])


class PiecewiseAffineWarp:
    """Warps one source image onto moved positions of its landmarks.

    Args:
        image: the source, RGB uint8 (H, W, 3).
        landmarks: (N, 2) source landmark pixels (x right, y down, pixel centres at +0.5).
    """

    def __init__(self, image: np.ndarray, landmarks: np.ndarray) -> None:
        height, width = image.shape[:2]
        self.border = border_points(height, width)
        self.points = np.concatenate([landmarks[:, :2].astype(np.float64), self.border])
        face = Delaunay(self.points[: len(landmarks)]).simplices
        everything = Delaunay(self.points).simplices
        margin = everything[(everything >= len(landmarks)).any(axis=1)]
        self.face, self.margin = torch.from_numpy(face), torch.from_numpy(margin)
        self.triangles = torch.cat([self.face, self.margin])
        self.source = torch.from_numpy(self.points.astype(np.float32))[None]
        self.image = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        self.size = (height, width)
        self.centres = torch.stack(
            torch.meshgrid(torch.arange(width) + 0.5, torch.arange(height) + 0.5, indexing="xy"), -1
        )[None].float()

    def __call__(self, landmarks: np.ndarray) -> np.ndarray:
        """The source warped so that its landmarks land on ``landmarks`` (N, 2): RGB uint8 (H, W, 3)."""
        height, width = self.size
        target = np.concatenate([landmarks[:, :2].astype(np.float64), self.border])
        screen = torch.from_numpy(np.concatenate([target, np.ones((len(target), 1))], 1).astype(np.float32))
        face = rasterize(screen[None], self.face, height, width)
        margin = rasterize(screen[None], self.margin, height, width)
        margin_id = torch.where(margin.mask, margin.tri_id + len(self.face), -1)
        tri_id = torch.where(face.mask, face.tri_id, margin_id)
        bary = torch.where(face.mask[..., None], face.bary, margin.bary)
        mapped = interpolate(self.source, self.triangles, tri_id, bary)
        source_pixels = torch.where((tri_id >= 0)[..., None], mapped, self.centres)
        warped = sample(self.image, source_pixels)
        return (warped[0].permute(1, 2, 0).clamp(0, 255) + 0.5).byte().numpy()
