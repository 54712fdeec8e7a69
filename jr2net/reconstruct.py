"""Per-frame 3D face reconstruction: track with MediaPipe, fit the face model, smooth, estimate light.

:class:`Reconstructor` turns an image or a stream of video frames into :class:`FrameResult`s; the
identity is fitted once from the first few frames with a face, then every frame's expression,
pose and focal are fitted warm-started and One-Euro smoothed. Frames without a face give results
with ``params=None`` and leave the stream running.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType

import numpy as np
import torch
from torch import Tensor

from jr2net.albedo import estimate_appearance
from jr2net.estimators import FitterEstimator, FrameEstimator
from jr2net.face_model import FaceModel
from jr2net.fitting import FitterConfig, LandmarkFitter
from jr2net.landmarks68 import Landmarks68
from jr2net.params import FaceParams
from jr2net.render import render_face
from jr2net.smoothing import OneEuroConfig, ParamsSmoother
from jr2net.tracking import Tracker, Tracking

LOG = logging.getLogger("jr2net.reconstruct")
MAX_HELD_FRAMES = 90  # frames held back at most while the identity waits for enough faces
OVERLAY_ALPHA = 0.6


@dataclass(frozen=True)
class FrameResult:
    """One frame's reconstruction: its tracking, and FaceParams when a face was found."""

    index: int
    time_s: float
    tracking: Tracking
    params: FaceParams | None

    @property
    def face(self) -> bool:
        return self.params is not None


@functools.cache
def _landmarks68() -> Landmarks68:
    return Landmarks68.load()


def landmarks68_2d(model: FaceModel, params: FaceParams, height: int, width: int) -> Tensor:
    """The model's 68 landmarks (dlib's convention, contour-aware jaw) in the image's pixels: (68, 2)."""
    return _landmarks68().project(model, params, height, width)


def overlay(model: FaceModel, params: FaceParams, image: np.ndarray) -> np.ndarray:
    """The shaded fitted mesh blended over an RGB uint8 image, for a person to check the fit."""
    height, width = image.shape[:2]
    with torch.no_grad():
        maps = render_face(model, params.replace(albedo=None), height, width, region="face_area")
    shaded = (maps.image[0].permute(1, 2, 0).clamp(0, 1) * 255).numpy()
    alpha = OVERLAY_ALPHA * maps.mask[0, 0].numpy()[..., None]
    return (image * (1 - alpha) + shaded * alpha).round().astype(np.uint8)


class Reconstructor:
    """Tracker + estimator + smoother; a context manager (it owns a MediaPipe graph).

    Args:
        model: the face model.
        mode: ``image`` or ``video`` (MediaPipe's temporal tracking for streams).
        identity_frames: frames with a face the identity is fitted from (video).
        smoothing: One-Euro settings for expression and pose, or ``None`` for none.
        fitter: fitter weights and iteration counts (when the estimator is the fitter).
        estimator: how identity and frames are estimated; the landmark fitter when ``None``
            (:mod:`jr2net.estimators`: the fitter or RecNet).
    """

    def __init__(
        self,
        model: FaceModel,
        mode: str = "video",
        identity_frames: int = 5,
        smoothing: OneEuroConfig | None = OneEuroConfig(),
        fitter: FitterConfig = FitterConfig(),
        estimator: FrameEstimator | None = None,
    ) -> None:
        if identity_frames < 1:
            raise ValueError(f"identity_frames must be at least 1, got {identity_frames}")
        self.model = model
        self.estimator = FitterEstimator(LandmarkFitter(model, fitter)) if estimator is None else estimator
        self.tracker = Tracker(mode=mode)
        self.identity_frames = identity_frames
        self.smoothing = smoothing
        self.frames_without_face = 0
        self._live: tuple[Tensor, Tensor] | None = None
        self._live_previous: FaceParams | None = None
        self._clock_ms = -1
        self._live_smoother = ParamsSmoother(smoothing) if smoothing else None

    def __enter__(self) -> Reconstructor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.tracker.close()

    def image(self, image: np.ndarray) -> FrameResult:
        """Reconstruct one photo, with its light and per-vertex albedo."""
        tracking = self.tracker.track(image) if self.tracker.mode == "image" else self.tracker.track(image, 0)
        if not tracking.face:
            return FrameResult(0, 0.0, tracking, None)
        params = self.estimator.identity([(tracking, image)])
        appearance = estimate_appearance(self.model, params, image)
        return FrameResult(
            0, 0.0, tracking, params.replace(light=appearance.light[None], albedo=appearance.albedo[None])
        )

    def video(self, frames: Iterable[tuple[int, float, np.ndarray]]) -> Iterator[FrameResult]:
        """Reconstruct ``(index, time_s, RGB uint8)`` frames in order, lazily.

        From the first frame with a face, frames are held back until ``identity_frames`` faces
        were seen (at most :data:`MAX_HELD_FRAMES` frames, or the stream's end) and the identity
        is fitted from them; then everything streams. Frames before the first face pass at once.
        """
        pending: list[tuple[int, float, Tracking, np.ndarray]] = []
        identity: Tensor | None = None
        light: Tensor | None = None
        previous: FaceParams | None = None
        smoother = ParamsSmoother(self.smoothing) if self.smoothing else None
        for index, raw_time_s, image in frames:
            time_s = self._monotonic(raw_time_s)
            tracking = self._track(image, time_s)
            if identity is None:
                if not tracking.face and not pending:
                    result, previous = self._frame(
                        index, time_s, tracking, image, None, None, previous, smoother
                    )
                    yield result
                    continue
                pending.append((index, time_s, tracking, image))
                faces = sum(t.face for _, _, t, _ in pending)
                if faces < self.identity_frames and len(pending) < MAX_HELD_FRAMES:
                    continue
                identity, light = self._fit_identity(pending)
                for held in pending:
                    result, previous = self._frame(*held, identity, light, previous, smoother)
                    yield result
                pending = []
                continue
            result, previous = self._frame(
                index, time_s, tracking, image, identity, light, previous, smoother
            )
            yield result
        if pending:
            identity, light = (
                self._fit_identity(pending) if any(t.face for _, _, t, _ in pending) else (None, None)
            )
            for held in pending:
                result, previous = self._frame(*held, identity, light, previous, smoother)
                yield result

    def step(self, index: int, time_s: float, image: np.ndarray) -> FrameResult:
        """Reconstruct the next frame of a live stream, at once (no frames held back).

        The identity comes from the first frame with a face; later frames are warm-started and
        smoothed like :meth:`video`'s.
        """
        time_s = self._monotonic(time_s)
        tracking = self._track(image, time_s)
        if self._live is None and tracking.face:
            self._live = self._fit_identity([(index, time_s, tracking, image)])
        identity, light = self._live if self._live is not None else (None, None)
        result, self._live_previous = self._frame(
            index, time_s, tracking, image, identity, light, self._live_previous, self._live_smoother
        )
        return result

    def _monotonic(self, time_s: float) -> float:
        """Stream time made strictly increasing in whole milliseconds: a duplicate, backwards or
        wrapped timestamp moves on by 1 ms (MediaPipe and the One-Euro filter need increasing time)."""
        self._clock_ms = max(round(time_s * 1000), self._clock_ms + 1)
        return self._clock_ms / 1000

    def _track(self, image: np.ndarray, time_s: float) -> Tracking:
        return self.tracker.track(image, round(time_s * 1000) if self.tracker.mode == "video" else None)

    def _fit_identity(self, pending: list[tuple[int, float, Tracking, np.ndarray]]) -> tuple[Tensor, Tensor]:
        """The identity (1, I) of the held frames' faces, and the light (9, 3) of the first."""
        faces = [(t, image) for _, _, t, image in pending if t.face]
        first = self.estimator.identity(faces)
        appearance = estimate_appearance(self.model, first, faces[0][1])
        return first.identity, appearance.light

    def _frame(
        self,
        index: int,
        time_s: float,
        tracking: Tracking,
        image: np.ndarray,
        identity: Tensor | None,
        light: Tensor | None,
        previous: FaceParams | None,
        smoother: ParamsSmoother | None,
    ) -> tuple[FrameResult, FaceParams | None]:
        """The frame's result, and the FaceParams the next frame warm-starts from."""
        if not tracking.face or identity is None or light is None:
            self.frames_without_face += 1
            return FrameResult(index, time_s, tracking, None), previous
        params = self.estimator.frame((tracking, image), identity, previous)
        if smoother is not None:
            params = smoother(params, time_s)
        params = params.replace(light=light[None])
        return FrameResult(index, time_s, tracking, params), params
