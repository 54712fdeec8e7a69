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

import cv2
import numpy as np
import torch
from torch import Tensor

from jr2net.compositing import gaussian_blur, sample
from jr2net.landmark_pinning import thin_plate_field
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


def outline_shift(
    source_points: Tensor, targets: Tensor, wanted: Tensor, fixed: Tensor, moving: Tensor | None = None
) -> Tensor:
    """(1, H, W, 2) pixels to add to the source point each target pixel reads.

    Args:
        source_points: (1, H, W, 2) where each target pixel reads the source now (pixels).
        targets: (K, 2) where the oval landmarks are drawn in the target (pixels).
        wanted: (K, 2) the source's own oval landmarks (pixels): what they should read.
        fixed: (M, 2) where the fixed-surface anchors are drawn (pixels): no correction there.
        moving: (1, 1, H, W) in [0, 1], where the frame may move at all (the person and its margin,
            :mod:`jr2net.person_mask`); the correction is scaled by it, as the pinning's fields are.
            None: everywhere.
    """
    dims = check_tensor("source_points", source_points, (1, "H", "W", 2))
    height, width = dims["H"], dims["W"]
    count = check_tensor("targets", targets, ("K", 2))["K"]
    check_tensor("wanted", wanted, (count, 2))
    check_tensor("fixed", fixed, ("M", 2))
    reads = sample(source_points.permute(0, 3, 1, 2), targets[None, None]).reshape(2, count).T
    held = fixed[::OUTLINE_FIXED_STEP]
    anchors = torch.cat([targets, held])
    errors = torch.cat([wanted - reads, torch.zeros_like(held)])
    smoothing = torch.full((len(anchors),), OUTLINE_SMOOTHING)
    spline = thin_plate_field(anchors, errors, height, width, smoothing)
    field = OUTLINE_GAIN * spline * _oval_fade(targets, height, width)
    if moving is not None:
        check_tensor("moving", moving, (1, 1, height, width))
        field = field * moving
    return field.permute(0, 2, 3, 1)


def _oval_fade(targets: Tensor, height: int, width: int) -> Tensor:
    """(1, 1, H, W) in [0, 1]: 1 inside the convex hull of ``targets`` (K, 2), falling off beyond it
    over :data:`OUTLINE_FADE_FRACTION` of the hull's size; blurred at 1/:data:`FADE_DOWNSCALE` of the
    frame (a 512² frame's blur took 4 ms)."""
    small = math.ceil(height / FADE_DOWNSCALE), math.ceil(width / FADE_DOWNSCALE)
    hull = np.zeros(small, np.float32)
    scaled = targets.numpy() * np.array([small[1] / width, small[0] / height])
    corners = cv2.convexHull((scaled * 16).astype(np.float32)).round().astype(np.int32)
    cv2.fillConvexPoly(hull, corners, 1.0, shift=4)
    size = math.sqrt(float(hull.sum())) or 1.0
    fade = (2 * gaussian_blur(torch.from_numpy(hull)[None, None], OUTLINE_FADE_FRACTION * size)).clamp(0, 1)
    return torch.nn.functional.interpolate(fade, size=(height, width), mode="bilinear", align_corners=False)
