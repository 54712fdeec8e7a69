"""The face's outline read where the tracker saw it, as the 2D landmark warp reads it.

The landmark pinning (:mod:`jr2net.landmark_pinning`) passes only through landmarks with a fixed
surface point; MediaPipe's face-oval landmarks slide over the surface (they mark the outline the
camera sees) and take no part. Between the fixed landmarks and the outline the warp is the face
model's, and on people it never saw the model's outline lies off the true one: the jaw's and the
cheeks' edge is read a few pixels off. The 2D landmark warp reads the outline exactly, each oval
landmark's target position reading the source at the source's own oval landmark. This correction
moves the reads toward that: a smoothing thin-plate spline of the reads' error at the oval
landmarks, held at 0 by every :data:`OUTLINE_FIXED_STEP`-th fixed-surface anchor (where the pinning
already holds), faded out beyond the oval, applied at :data:`OUTLINE_GAIN`.

Decided on the decision set (the split DCNet, 60 frames a clip): at a gain of 1 the face PSNR mean
rose 26.40 → 26.48 dB but synctalk_short_demo lost 0.11 (the band along its jaw: an oval landmark
slides when the head turns, and the surface point under it changes); at 0.5 the mean rose as much
(26.48) and no clip lost more than 0.02 (retalk_face_1 +0.19, latentsync_demo2 +0.26, retalk_face_2
+0.12, latentsync_demo3 +0.10). Every fourth fixed anchor holds the interior as well as all of them
(26.481 against 26.477 dB) for a third of the cost (1.8 against 6.3 ms a 256×192 frame, one thread).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from jr2net.compositing import gaussian_blur, sample, to_pixels
from jr2net.landmark_pinning import ThinPlateSpline, thin_plate_spline
from jr2net.shapes import check_tensor

OUTLINE_GAIN = 0.5  # the share of the oval landmarks' read error that is corrected
OUTLINE_SMOOTHING = 1e-2  # thin-plate regularisation of every anchor (the oval's are noisier than 1e-3)
OUTLINE_FADE_FRACTION = 0.1  # of the face's size: the correction fades out over this beyond the oval
OUTLINE_FIXED_STEP = 4  # every this-th fixed-surface anchor holds the correction at 0
FADE_DOWNSCALE = 4  # the fade is drawn and blurred at this fraction of the frame's size


@functools.cache
def oval_landmarks() -> tuple[int, ...]:
    """MediaPipe's face-oval landmark indices (its face mesh connections): 36 of the 478."""
    from mediapipe.tasks.python.vision import FaceLandmarksConnections

    ends = {(link.start, link.end) for link in FaceLandmarksConnections.FACE_LANDMARKS_FACE_OVAL}
    return tuple(sorted({index for pair in ends for index in pair}))


@dataclass(frozen=True)
class OutlinePlan:
    """The outline correction as far as it is known before the warp: where the oval landmarks and
    the held anchors are drawn fixes the spline, and the spline is linear in its values, so it is
    solved once for a unit read error at each oval landmark; the warp's reads then weigh those
    solutions, and only the spline's evaluation is left to the draw (256×192, one thread: 0.86 ms
    to draw and 0.62 to plan, against 1.65 ms in the draw before; the grid's response to each
    landmark would cost less to draw but crosses the stages' pipe at 0.6 MB a frame at 512²).

    Attributes:
        targets: (K, 2) where the oval landmarks are drawn in the target (pixels).
        spline: the spline of K values, one per oval landmark's unit error (the fixed-surface
            anchors held at 0).
        fade: (1, 1, ⌈H/4⌉, ⌈W/4⌉) in [0, 1]: 1 inside the oval, fading out beyond it
            (:func:`_oval_fade`), at 1/:data:`FADE_DOWNSCALE` of the frame.
    """

    targets: Tensor
    spline: ThinPlateSpline
    fade: Tensor


def outline_plan(targets: Tensor, fixed: Tensor, height: int, width: int) -> OutlinePlan:
    """The :class:`OutlinePlan` of an H×W frame whose oval landmarks are drawn at ``targets``
    (K, 2) and its fixed-surface anchors at ``fixed`` (M, 2) (pixels)."""
    count = check_tensor("targets", targets, ("K", 2))["K"]
    check_tensor("fixed", fixed, ("M", 2))
    held = fixed[::OUTLINE_FIXED_STEP]
    anchors = torch.cat([targets, held])
    unit_errors = torch.cat([torch.eye(count), torch.zeros(len(held), count)])
    smoothing = torch.full((len(anchors),), OUTLINE_SMOOTHING)
    spline = thin_plate_spline(anchors, unit_errors, smoothing)
    return OutlinePlan(targets=targets, spline=spline, fade=_oval_fade(targets, height, width))


def outline_shift(
    plan: OutlinePlan, source_points: Tensor, wanted: Tensor, moving: Tensor | None = None
) -> Tensor:
    """(1, H, W, 2) pixels to add to the source point each target pixel reads.

    Args:
        plan: the frame's :func:`outline_plan`.
        source_points: (1, H, W, 2) where each target pixel reads the source now (pixels).
        wanted: (K, 2) the source's own oval landmarks (pixels): what they should read.
        moving: (1, 1, H, W) in [0, 1], where the frame may move at all (the person and its margin,
            :mod:`jr2net.person_mask`); the correction is scaled by it, as the pinning's fields are.
            None: everywhere.
    """
    dims = check_tensor("source_points", source_points, (1, "H", "W", 2))
    height, width = dims["H"], dims["W"]
    count = plan.targets.shape[0]
    check_tensor("wanted", wanted, (count, 2))
    small = math.ceil(height / FADE_DOWNSCALE), math.ceil(width / FADE_DOWNSCALE)
    check_tensor("plan.fade", plan.fade, (1, 1, *small))
    reads = sample(source_points.permute(0, 3, 1, 2), plan.targets[None, None]).reshape(2, count).T
    coarse = plan.spline.combined(wanted - reads).on_grid(height, width)
    fade = OUTLINE_GAIN * plan.fade
    field = to_pixels(coarse, height, width) * to_pixels(fade, height, width)
    if moving is not None:
        check_tensor("moving", moving, (1, 1, height, width))
        field = field * moving
    return field.permute(0, 2, 3, 1)


def _oval_fade(targets: Tensor, height: int, width: int) -> Tensor:
    """(1, 1, ⌈H/4⌉, ⌈W/4⌉) in [0, 1], at 1/:data:`FADE_DOWNSCALE` of an H×W frame (a 512² frame's
    blur took 4 ms at full size): 1 inside the convex hull of ``targets`` (K, 2), falling off beyond
    it over :data:`OUTLINE_FADE_FRACTION` of the hull's size."""
    small = math.ceil(height / FADE_DOWNSCALE), math.ceil(width / FADE_DOWNSCALE)
    hull = np.zeros(small, np.float32)
    scaled = targets.numpy() * np.array([small[1] / width, small[0] / height])
    corners = cv2.convexHull((scaled * 16).astype(np.float32)).round().astype(np.int32)
    cv2.fillConvexPoly(hull, corners, 1.0, shift=4)
    size = math.sqrt(float(hull.sum())) or 1.0
    return (2 * gaussian_blur(torch.from_numpy(hull)[None, None], OUTLINE_FADE_FRACTION * size)).clamp(0, 1)
