"""Gaze: the irises as extra anchors of the landmark pinning, so the output looks where the driver does.

The face model has no irises (MediaPipe's iris landmarks fall into the eye holes of the ICT mesh),
so neither the 3D warp nor its pinning to the landmarks with a fixed surface point
(:mod:`jr2net.landmark_pinning`) moves an iris when the driver looks elsewhere: the output kept
the source's gaze. Each iris landmark becomes one more anchor of the pinning's thin-plate fields:
drawn where the pinning puts it (the source's iris moved by the driver's iris motion), it reads
the source at the source's own iris landmark. An anchor needs a draw value too; it takes the mean
of its eye's contour anchors (the draw field is smooth across an eye), and its read value is
computed through that same shift, so the two agree.

The pinning's fields live on a grid of :data:`jr2net.landmark_pinning.GRID_STEP` pixels, coarse
next to an iris (about 11 px across at 512²): they move an iris by about half of the driver's iris
motion, and the eye region around it by less. Inside the eye openings the read points are then
replaced by a piecewise-affine map of the contour and iris landmarks (:mod:`jr2net.eye_warp`),
which puts the iris where the driver's motion does; the anchors here still move the lids and the
skin around the eye with it.

While the driver's eye closes, the iris landmarks are guesses under the lid: the read correction
fades out with the eye's opening (:func:`eye_openness`), so a blink shows the lid, not an iris
painted on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.compositing import sample
from jr2net.shapes import check_tensor

# MediaPipe's contour of each eye opening, in order around it, and the iris landmarks inside it
EYE_OPENINGS = (
    (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
    (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),
)
IRISES = ((468, 469, 470, 471, 472), (473, 474, 475, 476, 477))
EYE_CORNERS = ((33, 133), (263, 362))
EYE_LIDS = ((159, 145), (386, 374))  # upper and lower lid, middle
# opening (lid distance over corner distance) over which the iris correction fades in: closed
# eyes measure ~0.05, open ones 0.25-0.35
CLOSED_OPENING, OPEN_OPENING = 0.12, 0.2
IRIS_SMOOTHING = 1e-6  # the iris anchors' spline regularisation: followed tightly, not smoothed
_LID_POSITIONS, _CORNER_POSITIONS = (  # where each eye's lids and corners lie along its contour
    tuple(tuple(opening.index(i) for i in pair) for opening, pair in zip(EYE_OPENINGS, pairs, strict=True))
    for pairs in (EYE_LIDS, EYE_CORNERS)
)


def eye_openness(landmarks: Tensor) -> Tensor:
    """(2,) how open each eye of (478, 2) landmarks is, 0 (closed) to 1 (open): the lids' distance
    over the corners', mapped linearly from :data:`CLOSED_OPENING` to :data:`OPEN_OPENING`."""
    check_tensor("landmarks", landmarks, (478, 2))
    return contour_openness(landmarks[torch.tensor(EYE_OPENINGS)])


def contour_openness(contours: Tensor) -> Tensor:
    """(2,) :func:`eye_openness` of the (2, 16, 2) eye-opening contours (:data:`EYE_OPENINGS` order)."""
    check_tensor("contours", contours, (len(EYE_OPENINGS), len(EYE_OPENINGS[0]), 2))
    eyes = torch.arange(len(EYE_OPENINGS))
    lids, corners = torch.tensor(_LID_POSITIONS), torch.tensor(_CORNER_POSITIONS)
    lid_gap = (contours[eyes, lids[:, 0]] - contours[eyes, lids[:, 1]]).norm(dim=-1)
    corner_gap = (contours[eyes, corners[:, 0]] - contours[eyes, corners[:, 1]]).norm(dim=-1)
    ratios = lid_gap / corner_gap.clamp(min=1e-6)
    return ((ratios - CLOSED_OPENING) / (OPEN_OPENING - CLOSED_OPENING)).clamp(0, 1)


@dataclass(frozen=True)
class IrisAnchors:
    """The iris landmarks as pinning anchors, before the warp is known.

    Attributes:
        positions: (10, 2) where the pinning puts each iris landmark (pixels).
        draw: (10, 2) their draw values: the mean of their eye's anchored contour landmarks'.
        weights: (10,) how much of the read correction each takes: its eye's :func:`eye_openness`.
    """

    positions: Tensor
    draw: Tensor
    weights: Tensor


def iris_anchors(pinned: Tensor, draw: Tensor, anchored: Tensor) -> IrisAnchors:
    """The iris anchors of one frame.

    Args:
        pinned: (478, 2) where the target's landmarks are drawn (pixels).
        draw: (478, 2) the pinning's draw values (model target minus pinned; used where ``anchored``).
        anchored: (478,) bool, the landmarks that already are anchors.
    """
    openness = eye_openness(pinned)
    positions, draws, weights = [], [], []
    for opening, iris, weight in zip(EYE_OPENINGS, IRISES, openness, strict=True):
        contour = [index for index in opening if anchored[index]]
        if not contour:
            raise ValueError("no anchored landmark on an eye's contour to take the iris's draw shift from")
        positions.append(pinned[list(iris)])
        draws.append(draw[contour].mean(dim=0).expand(len(iris), 2))
        weights.append(weight.expand(len(iris)))
    return IrisAnchors(torch.cat(positions), torch.cat(draws), torch.cat(weights))


def iris_reads(anchors: IrisAnchors, source_landmarks: Tensor, source_points: Tensor) -> Tensor:
    """(10, 2) the iris anchors' read values: the source iris minus what each anchor reads through
    its draw shift, faded out with its eye's openness.

    Args:
        anchors: the frame's iris anchors.
        source_landmarks: (478, 2) the source's detected landmarks (pixels).
        source_points: (1, H, W, 2) where each target pixel reads the source before pinning.
    """
    check_tensor("source_points", source_points, (1, "H", "W", 2))
    at = (anchors.positions + anchors.draw)[None, None]
    read_now = sample(source_points.permute(0, 3, 1, 2), at, "border")[0, :, 0].T
    irises = [index for iris in IRISES for index in iris]
    return anchors.weights[:, None] * (source_landmarks[irises] - read_now)
