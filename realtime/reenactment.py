"""The reenactment stages of the live pipeline: reconstruct the driving frame, then reenact."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from jr2net.estimators import FrameEstimator
from jr2net.face_model import FaceModel
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.pipeline import Stage
from jr2net.reconstruct import FrameResult, Reconstructor
from jr2net.reenact import Controls, Reenactor
from jr2net.smoothing import OneEuroConfig

LOG = logging.getLogger("jr2net.realtime")
# Live smoothing trades less jitter suppression for lag: a 1.5 Hz rest cut-off delays slow
# motion by ~100 ms, 4 Hz by ~40 ms.
LIVE_SMOOTHING = OneEuroConfig(min_cutoff=4.0, beta=0.7)


def live_reconstructor(model: FaceModel, estimator: FrameEstimator | None = None) -> Reconstructor:
    """A video-mode reconstructor with the live pipeline's lighter smoothing; the fitter or ``estimator``."""
    return Reconstructor(model, mode="video", smoothing=LIVE_SMOOTHING, estimator=estimator)


class ReenactmentStages:
    """``reconstruct`` (MediaPipe + fitter) and ``reenact`` stages sharing one source face.

    A frame without a face shows the last reenacted image (the source before the first face).
    """

    def __init__(
        self, reconstructor: Reconstructor, reenactor: Reenactor, controls: Controls = Controls()
    ) -> None:
        self.reconstructor, self.reenactor, self.controls = reconstructor, reenactor, controls
        source = reenactor.source.image[0].permute(1, 2, 0)
        self._last = (source * 255).round().byte().contiguous().numpy()

    def reconstruct(self, frame: StagedFrame) -> StagedFrame:
        seconds = (
            frame.index / 30.0
            if frame.pts is None or frame.time_base is None
            else float(frame.pts * frame.time_base)
        )
        try:
            result = self.reconstructor.step(frame.index, seconds, frame.image)
        except ValueError as error:  # one unusable frame must not end a live session
            LOG.warning("frame %d not reconstructed: %s", frame.index, error)
            result = None
        return replace(frame, payload=result)

    def reenact(self, frame: StagedFrame) -> StagedFrame:
        result = frame.payload
        if isinstance(result, FrameResult) and result.params is not None:
            try:
                self._last = self.reenactor(result.params, self.controls).image
            except ValueError as error:
                LOG.warning("frame %d not reenacted: %s", frame.index, error)
        return replace(frame, image=np.array(self._last), payload=None)

    def stages(self) -> list[Stage]:
        return [Stage("reconstruct", self.reconstruct), Stage("reenact", self.reenact)]
