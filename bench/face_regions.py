"""The face region of a true frame, from detectors independent of any reenactment output.

dlib's 68 landmarks give the region (their convex hull); on a frame where dlib finds no face,
MediaPipe's face-oval contour does (its hull). Which one was used is recorded per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

import numpy as np
from scipy.spatial import ConvexHull

from jr2net.dlib_reference import DlibModels
from jr2net.tracking import Tracker
from jr2net.training.crop_dataset import FACE_OVAL

DETECTORS = ("dlib", "mediapipe", "none")


@dataclass(frozen=True)
class FaceRegion:
    """A frame's face region.

    Attributes:
        mask: (H, W) bool, True where a pixel centre lies inside the hull; None without a face.
        outline: (K, 2) hull corners in pixels (x, y), in order; (0, 2) without a face.
        detector: ``dlib``, ``mediapipe`` or ``none``.
    """

    mask: np.ndarray | None
    outline: np.ndarray
    detector: str


def hull_region(points: np.ndarray, height: int, width: int, detector: str) -> FaceRegion:
    """The convex hull of (N, 2) pixel points (centres at +0.5) as a region of an (H, W) image."""
    hull = ConvexHull(points)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    centres = np.stack([xs, ys], axis=-1)
    inside = (centres @ hull.equations[:, :2].T + hull.equations[:, 2] <= 0).all(axis=-1)
    return FaceRegion(inside, points[hull.vertices], detector)


class FaceRegions:
    """dlib with a MediaPipe fallback; a context manager (it owns a MediaPipe graph)."""

    def __init__(self) -> None:
        self.dlib = DlibModels.load()
        self.tracker = Tracker(mode="image")

    def __enter__(self) -> FaceRegions:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.tracker.close()

    def __call__(self, image: np.ndarray) -> FaceRegion:
        """The face region of one RGB uint8 (H, W, 3) true frame."""
        height, width = image.shape[:2]
        points = self.dlib.landmarks68(image)
        if points is not None:
            return hull_region(points, height, width, "dlib")
        seen = self.tracker.track(np.ascontiguousarray(image))
        if seen.face:
            return hull_region(
                seen.landmarks[list(FACE_OVAL), :2].astype(np.float64), height, width, "mediapipe"
            )
        return FaceRegion(None, np.zeros((0, 2)), "none")
