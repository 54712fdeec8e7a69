"""The eye openings read piecewise-affinely, so the iris lands where the driver's gaze puts it.

The landmark pinning (:mod:`jr2net.landmark_pinning`, :mod:`jr2net.gaze`) bends the 3D warp with
smooth fields on a grid of several pixels: next to an iris, which spans about 11 px at 512², it
moves the iris by about half of the driver's iris motion, and a driver looking sideways left the
output looking ahead. Inside each eye opening the read points are replaced by a piecewise-affine
map instead: the source's eye contour and iris landmarks are triangulated once (Delaunay, on the
source), and each triangle, drawn where the pinning puts its landmarks, reads the source's
triangle. On the opening's contour the map agrees with the pinning (both send a contour landmark
to the source's), so the replacement has no edge worth a feather.

While an eye closes, MediaPipe's iris landmarks are guesses under the lid: the iris is then
carried by the eye's contour (the source's iris moved by the affine map of the source contour
onto the target's), blended into the pinned iris as the eye opens (:func:`jr2net.gaze.eye_openness`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jr2net.gaze import EYE_OPENINGS, IRISES, eye_openness
from jr2net.piecewise_affine import delaunay_triangles, triangle_cover, triangle_reads
from jr2net.shapes import check_tensor

EYE_LANDMARKS = tuple((*opening, *iris) for opening, iris in zip(EYE_OPENINGS, IRISES, strict=True))
CONTOUR_COUNT = len(EYE_OPENINGS[0])


@dataclass(frozen=True)
class EyeTriangles:
    """A source's eye triangulation, fixed for its every frame.

    Attributes:
        source: (2·21, 2) the source's eye landmarks (pixels): each eye's opening contour, then its iris.
        triangles: (F, 3) Delaunay triangles of each eye's 21 points, indices into ``source``.
        openings: (G, 3) the triangles that tile each opening's contour polygon alone.
    """

    source: Tensor
    triangles: Tensor
    openings: Tensor

    @staticmethod
    def of(source_landmarks: Tensor) -> EyeTriangles:
        """The triangulation of (478, 2) source landmarks."""
        check_tensor("source_landmarks", source_landmarks, (478, 2))
        points = source_landmarks[torch.tensor([i for eye in EYE_LANDMARKS for i in eye])].float()
        triangles, openings = [], []
        for eye in range(len(EYE_LANDMARKS)):
            start = eye * len(EYE_LANDMARKS[0])
            eye_points = points[start : start + len(EYE_LANDMARKS[0])].double().numpy()
            triangles.append(delaunay_triangles(eye_points) + start)
            contour = eye_points[:CONTOUR_COUNT]
            openings.append(polygon_triangles(contour) + start)
        return EyeTriangles(
            points, torch.from_numpy(np.concatenate(triangles)), torch.from_numpy(np.concatenate(openings))
        )


def opening_contours(eye_points: Tensor) -> Tensor:
    """(2, 16, 2) the eye-opening contours of (2·21, 2) eye landmarks (:data:`EYE_LANDMARKS` order)."""
    check_tensor("eye_points", eye_points, (len(EYE_LANDMARKS) * len(EYE_LANDMARKS[0]), 2))
    return eye_points.reshape(len(EYE_LANDMARKS), len(EYE_LANDMARKS[0]), 2)[:, :CONTOUR_COUNT]


def polygon_triangles(contour: np.ndarray) -> np.ndarray:
    """(K-2, 3) triangles tiling the simple polygon of (K, 2) points in order (ear clipping)."""
    remaining = list(range(len(contour)))
    following = np.roll(contour, -1, axis=0)
    area = 0.5 * float(np.sum(contour[:, 0] * following[:, 1] - following[:, 0] * contour[:, 1]))
    orientation = 1.0 if area >= 0 else -1.0
    triangles = []
    while len(remaining) > 3:
        for position in range(len(remaining)):
            a, b, c = (remaining[(position + offset) % len(remaining)] for offset in (-1, 0, 1))
            if orientation * _cross(contour[a], contour[b], contour[c]) <= 0:
                continue  # a reflex corner is no ear
            others = [contour[i] for i in remaining if i not in (a, b, c)]
            if not any(_inside(point, contour[a], contour[b], contour[c], orientation) for point in others):
                triangles.append((a, b, c))
                remaining.pop(position)
                break
        else:  # a degenerate contour (collinear points): fan out what is left
            first = remaining[0]
            triangles.extend((first, b, c) for b, c in itertools.pairwise(remaining[1:]))
            return np.array(triangles, dtype=np.int64)
    triangles.append(tuple(remaining))
    return np.array(triangles, dtype=np.int64)


def _cross(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))


def _inside(point: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, orientation: float) -> bool:
    return all(orientation * _cross(p, q, point) >= 0 for p, q in ((a, b), (b, c), (c, a)))


def eye_targets(pinned: Tensor, eyes: EyeTriangles) -> Tensor:
    """(2·21, 2) where each eye landmark is drawn: the pinned contour, and the pinned iris blended
    with the contour-carried source iris by the eye's openness.

    Args:
        pinned: (478, 2) where the pinning draws the target's landmarks (pixels).
        eyes: the source's eye triangulation.
    """
    check_tensor("pinned", pinned, (478, 2))
    openness = eye_openness(pinned)
    per_eye = len(EYE_LANDMARKS[0])
    targets = []
    for eye, landmarks in enumerate(EYE_LANDMARKS):
        drawn = pinned[list(landmarks)].float()
        source = eyes.source[eye * per_eye : (eye + 1) * per_eye]
        carried = _affine_map(source[:CONTOUR_COUNT], drawn[:CONTOUR_COUNT], source[CONTOUR_COUNT:])
        iris = carried + openness[eye] * (drawn[CONTOUR_COUNT:] - carried)
        targets.append(torch.cat([drawn[:CONTOUR_COUNT], iris]))
    return torch.cat(targets)


def _affine_map(source: Tensor, target: Tensor, points: Tensor) -> Tensor:
    """``points`` (N, 2) moved by the least-squares affine map of ``source`` onto ``target`` (K, 2)."""
    design = torch.cat([source, torch.ones(len(source), 1)], dim=1).double()
    solution = torch.linalg.lstsq(design, target.double()).solution
    return (torch.cat([points, torch.ones(len(points), 1)], dim=1).double() @ solution).float()


def eye_reads(eyes: EyeTriangles, targets: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Where each target pixel inside an eye opening reads the source.

    Args:
        eyes: the source's eye triangulation.
        targets: (2·21, 2) the eye landmarks' target positions (:func:`eye_targets`).
        height, width: the frame's size.

    Returns:
        points: (1, H, W, 2) source pixels (meaningful inside the openings).
        inside: (1, 1, H, W) 1 inside an eye opening, else 0.
    """
    check_tensor("targets", targets, (len(eyes.source), 2))
    points, covered = triangle_reads(eyes.source, eyes.triangles, targets, height, width)
    opening = triangle_cover(eyes.openings, targets, height, width)
    return points, covered * opening
