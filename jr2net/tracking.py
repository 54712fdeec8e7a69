"""MediaPipe face tracking: 478 landmarks, 52 blendshapes and the head matrix per frame.

Runs the MediaPipe Tasks ``FaceLandmarker`` with the ``face_landmarker.task`` asset in image or
video (timestamped) mode. A frame without a face gives a :class:`Tracking` with ``face=False``,
never an exception, so a stream keeps going.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from jr2net.assets import FACE_LANDMARKER, locate

LOG = logging.getLogger("jr2net.tracking")
LANDMARK_COUNT = 478
MODES = ("image", "video")


@dataclass(frozen=True)
class Tracking:
    """What the tracker saw in one frame.

    Attributes:
        face: whether a face was found.
        landmarks: (478, 3) float32 pixel x, y (image pixels, x right, y down) and MediaPipe's
            relative depth z in the same pixel scale (smaller is nearer), or None.
        blendshapes: (52,) float32 scores in :attr:`blendshape_names` order, or None.
        blendshape_names: MediaPipe's category names (``_neutral``, ``browDownLeft``, ...).
        head_matrix: (4, 4) float32 MediaPipe facial transformation (canonical face -> camera,
            OpenGL camera, cm), or None.
        image_size: (height, width) of the frame.
        faces_found: how many faces were detected (the chosen one is described).
    """

    face: bool
    landmarks: np.ndarray | None
    blendshapes: np.ndarray | None
    blendshape_names: tuple[str, ...]
    head_matrix: np.ndarray | None
    image_size: tuple[int, int]
    faces_found: int

    @property
    def inter_ocular(self) -> float:
        """Distance in pixels between the outer eye corners (MediaPipe 33 and 263)."""
        if self.landmarks is None:
            raise ValueError("no face in this frame")
        return float(np.linalg.norm(self.landmarks[33, :2] - self.landmarks[263, :2]))


def _face_area(landmarks: np.ndarray) -> float:
    extent = landmarks[:, :2].max(axis=0) - landmarks[:, :2].min(axis=0)
    return float(extent[0] * extent[1])


class Tracker:
    """MediaPipe FaceLandmarker over RGB uint8 frames; a context manager.

    Args:
        mode: ``image`` (independent frames) or ``video`` (timestamped, uses temporal tracking).
        max_faces: how many faces MediaPipe looks for.
        face_index: which face to report: ``None`` picks the largest, an int the i-th largest.
        min_confidence: detection and presence confidence thresholds.
    """

    def __init__(
        self,
        mode: str = "image",
        max_faces: int = 4,
        face_index: int | None = None,
        min_confidence: float = 0.5,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown tracking mode {mode!r}; choose from {MODES}")
        if face_index is not None and not 0 <= face_index < max_faces:
            raise ValueError(f"face_index must be in [0, {max_faces}), got {face_index}")
        from mediapipe.tasks.python import BaseOptions, vision

        self.mode = mode
        self.face_index = face_index
        self._last_timestamp = -1
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(locate(FACE_LANDMARKER))),
            running_mode=vision.RunningMode.IMAGE if mode == "image" else vision.RunningMode.VIDEO,
            num_faces=max_faces,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release MediaPipe's graph."""
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def track(self, image: np.ndarray, timestamp_ms: int | None = None) -> Tracking:
        """Track one RGB uint8 (H, W, 3) frame; video mode needs increasing ``timestamp_ms``."""
        import mediapipe as mp

        if self._landmarker is None:
            raise RuntimeError("the tracker is closed")
        if (
            not isinstance(image, np.ndarray)
            or image.dtype != np.uint8
            or image.ndim != 3
            or image.shape[2] != 3
        ):
            shape = getattr(image, "shape", None)
            raise ValueError(
                f"track needs an RGB uint8 array of shape (H, W, 3), got {type(image).__name__} {shape}"
            )
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        if self.mode == "image":
            result = self._landmarker.detect(frame)
        else:
            if timestamp_ms is None or timestamp_ms <= self._last_timestamp:
                raise ValueError(
                    f"video mode needs increasing timestamps, got {timestamp_ms} after {self._last_timestamp}"
                )
            self._last_timestamp = timestamp_ms
            result = self._landmarker.detect_for_video(frame, timestamp_ms)
        return self._describe(result, image.shape[0], image.shape[1])

    def _describe(self, result: Any, height: int, width: int) -> Tracking:
        scale = np.array([width, height, width], dtype=np.float32)
        faces = [
            np.array([(p.x, p.y, p.z) for p in face], dtype=np.float32) * scale
            for face in result.face_landmarks
        ]
        order = sorted(range(len(faces)), key=lambda i: -_face_area(faces[i]))
        chosen = order[self.face_index or 0] if len(order) > (self.face_index or 0) else None
        if chosen is None:
            return Tracking(False, None, None, (), None, (height, width), len(faces))
        categories = result.face_blendshapes[chosen]
        return Tracking(
            face=True,
            landmarks=faces[chosen],
            blendshapes=np.array([c.score for c in categories], dtype=np.float32),
            blendshape_names=tuple(c.category_name for c in categories),
            head_matrix=np.asarray(result.facial_transformation_matrixes[chosen], dtype=np.float32),
            image_size=(height, width),
            faces_found=len(faces),
        )
