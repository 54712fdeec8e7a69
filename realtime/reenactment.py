"""The reenactment stages of the live pipeline: reconstruct the driving frame, then reenact.

Each stage runs in its own process by default (:mod:`jr2net.realtime.process_stage`: both are
GIL-heavy), or in a thread of the calling process (``mode="thread"``: quicker to start, slower
per frame). The frame between them carries only the driving FaceParams and the tracker's
landmarks (:class:`DrivingFace`), which pin the warp (:mod:`jr2net.landmark_pinning`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from jr2net.estimators import FrameEstimator
from jr2net.face_model import FaceModel
from jr2net.fitting import FitterConfig
from jr2net.media import DEFAULT_FPS
from jr2net.params import FaceParams
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.pipeline import Stage
from jr2net.realtime.process_stage import StageProcess
from jr2net.realtime.stage_modes import STAGE_MODES
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import Controls, FrameRenderer, Reenactor, SourceFace
from jr2net.smoothing import OneEuroConfig

LOG = logging.getLogger("jr2net.realtime")
# Live smoothing trades less jitter suppression for lag: a 1.5 Hz rest cut-off delays slow
# motion by ~100 ms, 4 Hz by ~40 ms.
LIVE_SMOOTHING = OneEuroConfig(min_cutoff=4.0, beta=0.7)
# Warm-started from the previous frame, five LM steps land within 0.4 % of the inter-ocular
# distance (mean; 1.6 % max) of ten, for 6.4 instead of 9.9 ms (d3 at 320², one thread); the
# motion they leave unconverged shows as ~5 ms more lag over the clip.
LIVE_FITTER = FitterConfig(frame_iterations=5)
EstimatorFactory = Callable[[FaceModel], FrameEstimator | None]
"""The reconstruction method: builds the estimator from the face model (None: the fitter). It runs
in the reconstruct stage's process, so it must pickle (a frozen dataclass of options, say)."""
RendererFactory = Callable[[], FrameRenderer]
"""Builds the reenact stage's frame renderer, in its process: it must pickle too."""


def load_stage_model() -> FaceModel:
    """A reenactment stage process's preload: the face model its worker is built with.

    Unpickling this function in the child imports this module, so the stages' imports are paid
    when the child starts, before any session.
    """
    return FaceModel.load()


def live_reconstructor(model: FaceModel, estimator: FrameEstimator | None = None) -> Reconstructor:
    """A video-mode reconstructor with the live pipeline's lighter smoothing and shorter per-frame
    fit; the fitter or ``estimator``."""
    return Reconstructor(
        model, mode="video", smoothing=LIVE_SMOOTHING, fitter=LIVE_FITTER, estimator=estimator
    )


@dataclass(frozen=True)
class DrivingFace:
    """What the reconstruct stage hands on: the FaceParams and the (478, 3) tracked landmarks."""

    params: FaceParams
    landmarks: np.ndarray


class ReconstructWorker:
    """The ``reconstruct`` stage: the frame's payload becomes its :class:`DrivingFace`, or None
    without a face."""

    def __init__(self, reconstructor: Reconstructor) -> None:
        self.reconstructor = reconstructor

    def __call__(self, frame: StagedFrame) -> StagedFrame:
        seconds = (
            frame.index / DEFAULT_FPS
            if frame.pts is None or frame.time_base is None
            else float(frame.pts * frame.time_base)
        )
        try:
            result = self.reconstructor.step(frame.index, seconds, frame.image)
        except ValueError as error:  # one unusable frame must not end a live session
            LOG.warning("frame %d not reconstructed: %s", frame.index, error)
            return replace(frame, payload=None)
        face = None if result.params is None else DrivingFace(result.params, result.tracking.landmarks)
        return replace(frame, payload=face)

    def close(self) -> None:
        self.reconstructor.tracker.close()


class ReenactWorker:
    """The ``reenact`` stage: the source driven by the payload's :class:`DrivingFace`.

    A frame without a face shows the last reenacted image (the source before the first face).
    """

    def __init__(self, reenactor: Reenactor, controls: Controls = Controls()) -> None:
        self.reenactor, self.controls = reenactor, controls
        source = reenactor.source.image[0].permute(1, 2, 0)
        self._last = (source * 255).round().byte().contiguous().numpy()

    def __call__(self, frame: StagedFrame) -> StagedFrame:
        if isinstance(frame.payload, DrivingFace):
            try:
                self._last = self.reenactor(
                    frame.payload.params, self.controls, frame.payload.landmarks
                ).image
            except ValueError as error:
                LOG.warning("frame %d not reenacted: %s", frame.index, error)
        return replace(frame, image=np.array(self._last), payload=None)


@dataclass(frozen=True)
class ReconstructFactory:
    """Builds a :class:`ReconstructWorker` (in a stage process, from this pickled value)."""

    method: EstimatorFactory | None = None

    def __call__(self, model: FaceModel) -> ReconstructWorker:
        estimator = None if self.method is None else self.method(model)
        return ReconstructWorker(live_reconstructor(model, estimator))


@dataclass(frozen=True)
class ReenactFactory:
    """Builds a :class:`ReenactWorker` for one source (in a stage process, from this pickled value);
    ``renderer`` builds its frame renderer (None: the geometric one)."""

    source: SourceFace
    controls: Controls = field(default_factory=Controls)
    renderer: RendererFactory | None = None

    def __call__(self, model: FaceModel) -> ReenactWorker:
        renderer = None if self.renderer is None else self.renderer()
        return ReenactWorker(Reenactor(model, self.source, renderer=renderer), self.controls)


class ReenactmentStages:
    """Both stages for one stream, in processes or threads; close it to free them.

    Args:
        model: the face model (used by thread-mode workers; a stage process loads its own).
        method: the reconstruction method (None: the fitter).
        source: the prepared source face.
        controls: the reenactment's overrides.
        mode: ``process`` or ``thread``.
        processes: started :class:`StageProcess` children to build the stages in (two, preloaded
            with :func:`load_stage_model`: a warm pool's), instead of starting new ones (process
            mode only).
        renderer: builds the reenact stage's frame renderer (None: the geometric one).
    """

    def __init__(
        self,
        model: FaceModel,
        method: EstimatorFactory | None,
        source: SourceFace,
        controls: Controls = Controls(),
        mode: str = "process",
        processes: Sequence[StageProcess] | None = None,
        renderer: RendererFactory | None = None,
    ) -> None:
        if mode not in STAGE_MODES:
            raise ValueError(f"unknown stage mode {mode!r}; choose from {STAGE_MODES}")
        if processes is not None and (mode != "process" or len(processes) != 2):
            raise ValueError("give two stage processes, and only in process mode")
        factories = (
            ("reconstruct", ReconstructFactory(method)),
            ("reenact", ReenactFactory(source, controls, renderer)),
        )
        self._processes: list[StageProcess] = list(processes or [])
        self._workers: list[ReconstructWorker | ReenactWorker] = []
        self.stages: list[Stage] = []
        try:
            if mode == "process":
                while len(self._processes) < len(factories):  # all started before any builds
                    self._processes.append(StageProcess(preload=load_stage_model))
                for child, (name, factory) in zip(self._processes, factories):
                    self.stages.append(child.build(name, factory))
            else:
                for name, factory in factories:
                    self._workers.append(factory(model))
                    self.stages.append(Stage(name, self._workers[-1]))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the stage processes, or close the thread-mode workers."""
        for child in self._processes:
            child.close()
        for worker in self._workers:
            close = getattr(worker, "close", None)
            if close is not None:
                close()
        self._processes, self._workers = [], []

    def __enter__(self) -> ReenactmentStages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
