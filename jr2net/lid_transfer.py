"""The driver's eyelid motion measured against its own eye's opening, applied to the source's eye.

:func:`jr2net.landmark_pinning.transfer_landmarks` moves every source landmark by the driver's
motion since its reference frame, scaled by the similarity of the two faces. For the lids that is
not enough: eyes open by different amounts on different faces. A driver whose eye opens wider than
the source's (for its face's size) brings its upper lid down by more than the source's whole
opening when it blinks, and the source's lids crossed: on ``d19.jpg`` driven by ``d3`` the upper
lid ended 7 px below the lower, the eye's piecewise-affine read (:mod:`jr2net.eye_warp`) folded
over itself and showed a scrambled eyeball where the driver's eye was shut, which MediaPipe read as
open (blink correlation 0.36 against the 2D warp's 0.90). A driver with a narrower eye than the
source's left the source's eye half open at a full blink.

Here each eye is seen in its own frame (origin midway between the corners, x along them, y across
the eye and down the face, in eye widths): each lid landmark's motion across the eye since the
reference is scaled by the source's opening over the reference's, so a shut driver's eye shuts the
source's and a widening widens it in proportion, up to :data:`MAX_WIDENING`; no upper lid point
ends below its lower partner.
Motion along the eye and the corners stay as transferred. In self-reenactment (the source is the
reference) nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jr2net.gaze import EYE_OPENINGS

# Each contour starts at a corner, runs over the upper lid to the other corner (position 8) and back
# under the lower lid: upper position j faces lower position 16 - j.
UPPER_LID = np.arange(1, len(EYE_OPENINGS[0]) // 2)
LOWER_LID = len(EYE_OPENINGS[0]) - UPPER_LID
LIDS = np.concatenate([UPPER_LID, LOWER_LID])
OTHER_CORNER = len(EYE_OPENINGS[0]) // 2
# The two contours mirror each other: the perpendicular to corner-to-corner points down the face for
# the first eye's order and up it for the second's.
DOWN_THE_FACE = (1.0, -1.0)
# Openings (mean lid gap, eye widths) below this in the reference count as this: an open eye
# measures about 0.2, a shut one under 0.05; a reference caught mid-blink would otherwise scale the
# driver's opening motion without bound.
MIN_REFERENCE_OPENING = 0.1
# The most a source's eye opens beyond its own opening: of the six benchmark clips and ten training
# clips, the widest any eye opened over its clip's first frame was 1.61 times (d12) where that
# frame's eyes were open; a reference caught mid-blink gave 2.55 (dpe_s) and made eyes bulge.
MAX_WIDENING = 1.75


@dataclass(frozen=True)
class EyeFrame:
    """An eye's frame on the image: ``origin`` (2,) midway between its corners, unit ``along``
    (2,) from its first corner to the other, unit ``across`` (2,) down the face, ``width`` (px)."""

    origin: np.ndarray
    along: np.ndarray
    across: np.ndarray
    width: float

    @staticmethod
    def of(contour: np.ndarray, eye: int) -> EyeFrame:
        """The frame of one eye's (16, 2) opening contour (:data:`jr2net.gaze.EYE_OPENINGS` order)."""
        first, other = contour[0], contour[OTHER_CORNER]
        width = max(float(np.linalg.norm(other - first)), 1e-6)
        along = (other - first) / width
        across = DOWN_THE_FACE[eye] * np.array([-along[1], along[0]])
        return EyeFrame((first + other) / 2, along, across, width)

    def local(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) image points -> (N, 2) (along, across) in eye widths."""
        return (points - self.origin) @ np.stack([self.along, self.across]).T / self.width

    def image(self, local: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`local`."""
        return self.origin + local * self.width @ np.stack([self.along, self.across])


def opening(local: np.ndarray) -> float:
    """The mean gap between the lids (eye widths) of a contour in its eye's frame (16, 2)."""
    return float((local[LOWER_LID, 1] - local[UPPER_LID, 1]).mean())


def transfer_lids(
    pinned: np.ndarray, source: np.ndarray, driving: np.ndarray, reference: np.ndarray
) -> np.ndarray:
    """``pinned`` (478, 2), the source's landmarks moved by the driver's motion, with the eye
    openings' lid landmarks moved as the module docstring says; ``source``, ``driving`` and
    ``reference`` are (478, 2) landmarks (pixels)."""
    named = {"pinned": pinned, "source": source, "driving": driving, "reference": reference}
    for name, array in named.items():
        if array.shape != (478, 2):
            raise ValueError(f"{name} landmarks must be (478, 2), got {array.shape}")
    result = pinned.astype(np.float64, copy=True)
    for eye, contour in enumerate(EYE_OPENINGS):
        index = list(contour)
        source_local, driving_local, reference_local = (
            EyeFrame.of(points[index], eye).local(points[index]) for points in (source, driving, reference)
        )
        source_opening = opening(source_local)
        scale = source_opening / max(opening(reference_local), MIN_REFERENCE_OPENING)
        frame = EyeFrame.of(result[index], eye)
        local = frame.local(result[index])
        local[LIDS, 1] = source_local[LIDS, 1] + scale * (driving_local[LIDS, 1] - reference_local[LIDS, 1])
        middle = (local[UPPER_LID, 1] + local[LOWER_LID, 1]) / 2
        gaps = (local[LOWER_LID, 1] - local[UPPER_LID, 1]).clip(min=0)
        widest = MAX_WIDENING * max(source_opening, 0.0)
        if gaps.mean() > widest:
            gaps *= widest / gaps.mean()
        local[UPPER_LID, 1], local[LOWER_LID, 1] = middle - gaps / 2, middle + gaps / 2
        result[index] = frame.image(local)
    return result
