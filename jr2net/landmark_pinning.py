"""Landmark pinning: the 3D warp bent so the face's landmarks land where the tracker saw them.

The fitted face model follows MediaPipe's landmarks only as well as 100 identity and 53
expression shapes can: on people it never saw, its projected landmarks sit a few pixels off the
detected ones (4.4 px mean on d3 at 512², against 0.6 px after pinning), and a warp built from
the model alone moves the texture by that much too little or too much. Pinning keeps the 3D warp
(dense correspondence between the landmarks, co-visibility, the mouth, the head's motion over
hair and neck) and corrects it with two smooth fields, both interpolated over the landmarks by a
thin-plate spline and faded out away from the face:

- where the target is drawn: the target render is moved so each landmark's surface point lands on
  its pinned target position (the source's detected landmarks moved by the driver's detected
  landmark motion, :func:`transfer_landmarks`);
- where the source is read: each sample is moved by the source fit's own residual, so a landmark's
  surface point samples the source exactly at the source's detected landmark.

The landmarks with a fixed surface point can take part (:attr:`jr2net.correspondence.
MediapipeCorrespondence.valid`; MediaPipe's silhouette points slide over the surface and do not):
every one on the lips, eyes, brows and nose, and :data:`SPLINE_INTERIOR_ANCHORS` of the ~300 between
them, spread evenly (:func:`spline_anchors`); the irises, which the face model lacks, are anchors of
their own (:mod:`jr2net.gaze`). Between the features the fields are smooth: on eight benchmark clips
the thinned spline moved face PSNR by −0.04 dB on average (−0.18 to +0.08 per clip), and it takes
3.5 ms less a frame (a live frame's reenact stage, 22 → 19 ms), most of it the solve (n³).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from jr2net.compositing import extrapolate_flow, to_pixels
from jr2net.shapes import check_tensor

SPLINE_SMOOTHING = 1e-3  # thin-plate regularisation, in face-size units (landmark noise is ~0.5 px)
GRID_STEP = 8  # the fields are evaluated every GRID_STEP pixels and resized (they are smooth)
FADE_FRACTION = 0.5  # the fields fade out over this fraction of the face's size outside the face
SPLINE_INTERIOR_ANCHORS = 120  # landmarks between the features that anchor the spline (of ~300)
FEATURES = ("LIPS", "LEFT_EYE", "RIGHT_EYE", "LEFT_EYEBROW", "RIGHT_EYEBROW", "NOSE")


@functools.cache
def feature_landmarks() -> tuple[int, ...]:
    """MediaPipe's landmark indices on the :data:`FEATURES` (its face mesh connections)."""
    from mediapipe.tasks.python.vision import FaceLandmarksConnections

    indices = set()
    for feature in FEATURES:
        for connection in getattr(FaceLandmarksConnections, f"FACE_LANDMARKS_{feature}"):
            indices.update((connection.start, connection.end))
    return tuple(sorted(indices))


def spline_anchors(points: Tensor, valid: Tensor, interior: int = SPLINE_INTERIOR_ANCHORS) -> Tensor:
    """(N,) bool: the landmarks the pinning spline passes through.

    Every ``valid`` landmark on a feature (:func:`feature_landmarks`), and ``interior`` of the other
    valid ones, picked by farthest-point sampling over ``points`` (N, 2) (the landmarks on a
    frontal neutral face), starting from the features, so they cover cheeks, forehead and chin
    evenly.
    """
    check_tensor("points", points, ("N", 2))
    check_tensor("valid", valid, (points.shape[0],))
    features = torch.zeros_like(valid)
    features[list(feature_landmarks())] = True
    anchors = valid & features
    others = torch.nonzero(valid & ~features)[:, 0]
    distance = torch.cdist(points[others], points[anchors]).min(dim=1).values
    for _ in range(min(interior, len(others))):
        farthest = int(distance.argmax())
        anchors[others[farthest]] = True
        distance = torch.minimum(distance, (points[others] - points[others[farthest]]).norm(dim=1))
    return anchors


def fit_similarity(points: np.ndarray, onto: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (scale, rotation, translation; Umeyama) from (N, 2) to (N, 2) points.

    Returns ``(linear (2, 2), offset (2,))`` with ``onto ≈ points @ linear.T + offset``.
    """
    mean_points, mean_onto = points.mean(axis=0), onto.mean(axis=0)
    centred, centred_onto = points - mean_points, onto - mean_onto
    u, singular, vt = np.linalg.svd(centred_onto.T @ centred)
    flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ flip @ vt
    scale = float((singular * np.diag(flip)).sum() / (centred**2).sum())
    linear = scale * rotation
    return linear, mean_onto - mean_points @ linear.T


def transfer_landmarks(source: np.ndarray, driving: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The source's (N, 2) landmarks moved by the driving landmarks' motion since ``reference``.

    The motion is mapped into the source by the similarity (scale, rotation) fitted from the
    reference landmarks onto the source's; in self-reenactment (the source is the reference frame)
    that is the identity and the result is the driving frame's own landmarks.
    """
    linear, _ = fit_similarity(reference, source)
    return source + (driving - reference) @ linear.T


def _spline_kernel(squared_distance: Tensor) -> Tensor:
    """The thin-plate kernel r² log r, as ½ r² log r², 0 at r = 0."""
    return 0.5 * squared_distance * torch.log(squared_distance.clamp(min=1e-12))


def grid_shape(height: int, width: int) -> tuple[int, int]:
    """(rows, columns) of the :data:`GRID_STEP`-pixel cells over an H×W image."""
    return math.ceil(height / GRID_STEP), math.ceil(width / GRID_STEP)


@dataclass(frozen=True)
class ThinPlateSpline:
    """A solved smoothing thin-plate spline of C values over the image plane.

    Attributes:
        centre: (2,) the anchors' mean (pixels); coordinates are taken relative to it ...
        spread: ... and divided by the anchors' largest standard deviation (pixels).
        anchors: (N, 2) the anchors in those units.
        solution: (N + 3, C) each anchor's kernel weight, then the affine part's (1, x, y).
    """

    centre: Tensor
    spread: float
    anchors: Tensor
    solution: Tensor

    def combined(self, weights: Tensor) -> ThinPlateSpline:
        """The spline through this one's values times ``weights`` (C, D): (N, D) values (the spline
        is linear in its values)."""
        check_tensor("weights", weights, (self.solution.shape[1], "D"))
        return replace(self, solution=self.solution @ weights)

    def on_grid(self, height: int, width: int) -> Tensor:
        """The spline at the centres of the :data:`GRID_STEP`-pixel cells of an H×W image:
        (1, C, ⌈H/step⌉, ⌈W/step⌉)."""
        rows, columns = grid_shape(height, width)
        ys = (torch.arange(rows) + 0.5) * (height / rows)
        xs = (torch.arange(columns) + 0.5) * (width / columns)
        grid = (
            torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2) - self.centre
        ) / self.spread
        kernel = _spline_kernel(torch.cdist(grid, self.anchors) ** 2)
        field = torch.cat([kernel, torch.ones(len(grid), 1), grid], dim=1) @ self.solution
        return field.reshape(rows, columns, -1).permute(2, 0, 1)[None]


def thin_plate_spline(points: Tensor, values: Tensor, smoothing: Tensor | None = None) -> ThinPlateSpline:
    """The smoothing thin-plate spline through ``values`` (N, C) at ``points`` (N, 2) (pixels).

    ``smoothing`` (N,) is each point's regularisation (default :data:`SPLINE_SMOOTHING`; smaller
    follows the point more tightly). Coordinates are normalised by the points' spread, so the
    smoothing does not depend on the image size; the system is solved in float64 (float32 is off
    by pixels: the system is badly conditioned) and evaluated in float32.
    """
    check_tensor("points", points, ("N", 2))
    dims = check_tensor("values", values, ("N", "C"))
    if points.shape[0] != dims["N"]:
        raise ValueError(f"{points.shape[0]} points but {dims['N']} values")
    centre = points.mean(dim=0)
    spread = float(points.std(dim=0).max()) or 1.0
    anchors = ((points - centre) / spread).double()
    count = anchors.shape[0]
    system = torch.zeros(count + 3, count + 3, dtype=torch.float64)
    system[:count, :count] = _spline_kernel(torch.cdist(anchors, anchors) ** 2)
    regularisation = torch.full((count,), SPLINE_SMOOTHING) if smoothing is None else smoothing
    check_tensor("smoothing", regularisation, (count,))
    system[:count, :count] += torch.diag(regularisation.double())
    affine = torch.cat([torch.ones(count, 1, dtype=torch.float64), anchors], dim=1)
    system[:count, count:] = affine
    system[count:, :count] = affine.T
    right = torch.zeros(count + 3, values.shape[1], dtype=torch.float64)
    right[:count] = values.double()
    solution = torch.linalg.solve(system, right).float()
    return ThinPlateSpline(centre=centre, spread=spread, anchors=anchors.float(), solution=solution)


def thin_plate_grid(
    points: Tensor,
    values: Tensor,
    height: int,
    width: int,
    smoothing: Tensor | None = None,
) -> Tensor:
    """:func:`thin_plate_spline` evaluated on the :data:`GRID_STEP`-pixel cells of an H×W image:
    (1, C, ⌈H/step⌉, ⌈W/step⌉)."""
    return thin_plate_spline(points, values, smoothing).on_grid(height, width)


@dataclass(frozen=True)
class PinningFields:
    """The two corrections of a warp, (1, 2, H, W) in pixels, faded to 0 away from the face.

    Attributes:
        draw_shift: a target pixel p is drawn as the unpinned target's pixel p + draw_shift(p).
        read_shift: added to the source point each target pixel reads.
    """

    draw_shift: Tensor
    read_shift: Tensor


def fields_from_grid(grid: Tensor, face_mask: Tensor, moving: Tensor | None = None) -> PinningFields:
    """The fields that pin a warp, from the spline's draw ‖ read values on the coarse grid.

    Args:
        grid: (1, 4, ⌈H/step⌉, ⌈W/step⌉) the spline's draw and read values at the grid's cells
            (:func:`thin_plate_grid`); only the face's cells are read.
        face_mask: (1, 1, H, W) the target face; the fields are faded out away from it.
        moving: (1, 1, H, W) in [0, 1], where the frame may move at all (the person and its
            margin, :mod:`jr2net.person_mask`); the fields are scaled by it, so the fade never
            drags a background that is known to stay still. None: everywhere.
    """
    check_tensor("face_mask", face_mask, (1, 1, "H", "W"))
    if moving is not None:
        check_tensor("moving", moving, (1, 1, face_mask.shape[-2], face_mask.shape[-1]))
    height, width = face_mask.shape[-2:]
    rows, columns = grid_shape(height, width)
    check_tensor("grid", grid, (1, 4, rows, columns))
    coarse_mask = torch.nn.functional.adaptive_avg_pool2d(face_mask, (rows, columns))
    face_size = math.sqrt(float(face_mask.sum())) or 1.0
    faded = extrapolate_flow(
        grid.reshape(2, 2, rows, columns),
        coarse_mask.expand(2, -1, -1, -1),
        FADE_FRACTION * face_size * rows / height,
        downscale=1,
    )
    fields = to_pixels(faded.reshape(1, 4, rows, columns), height, width)
    if moving is not None:
        fields = fields * moving
    return PinningFields(draw_shift=fields[:, :2], read_shift=fields[:, 2:])
