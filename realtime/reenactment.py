"""The reenactment stages of the live pipeline: reconstruct the driving frame, then reenact.

Each stage kind runs on the hosts of a :class:`WorkerPool` shared by every session, in processes
by default (:mod:`jr2net.realtime.process_stage`: both are GIL-heavy) or in the calling process
(``mode="thread"``: quicker to start, slower per frame); a session has its own worker on one
host of each kind. Between tracking and drawing sits the plan of where the face goes
(:meth:`jr2net.reenact.Reenactor.plan`: the target FaceParams, their vertices and the landmark
pinning's spline, ~12 ms a frame), done by the stage that has the time
(:func:`~jr2net.realtime.reenactment_hosts.planning_stage`):
with DCNet the reconstruct stage plans and the frame between the stages carries the
:class:`TargetPlan` (a few hundred kB), since DCNet's drawing alone took about twice as long as
tracking and fitting; with the geometric renderer the reenact stage plans, and the frame carries
the :class:`DrivingFace`, since there tracking and fitting are the longer half (37 against 21 ms a
frame at 640×480).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from jr2net.estimators import FrameEstimator
from jr2net.face_model import FaceModel
from jr2net.fitting import FitterConfig
from jr2net.image_io import to_uint8
from jr2net.media import DEFAULT_FPS
from jr2net.params import FaceParams
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.reenactment_hosts import STAGES, WARM_UP_FRAMES, drive_warm_up
from jr2net.realtime.stage_host import WorkerFactory
from jr2net.realtime.wire import Packed
from jr2net.realtime.worker_pool import PooledSession, WorkerPool
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import Controls, FrameRenderer, Reenactor, SourceFace, TargetPlan
from jr2net.smoothing import OneEuroConfig

LOG = logging.getLogger("jr2net.realtime")
# Live smoothing trades less jitter suppression for lag (``python -m bench.live_smoothing``, the 68
# model landmarks on the image): on eight training clips a 4 Hz rest cut-off left 0.63 of the
# unsmoothed jitter for 24 ms of lag, 6 Hz 0.69 for 18.5 ms, 8 Hz 0.74 for 15 ms (1.5 Hz: ~100 ms);
# 4 Hz led by its own lag (``lead``) 1: 0.71 for 16 ms, 2: 0.79 for 7.5 ms, 3: 0.89 for 0 ms. The
# speed estimate the lead follows is itself smoothed (1 Hz), so a lead of 1 takes back the lag of a
# steady motion only, not of a motion's start. Lead 2 shortened the motion lag of
# ``bench.e2e_latency`` (640×480, 40 s calls, three alternated runs each) from 60-62 ms p50 to 52-55;
# 6 Hz alone had not (55-60 in 40 s calls).
LIVE_SMOOTHING = OneEuroConfig(min_cutoff=4.0, beta=0.7, lead=2.0)
# Warm-started from the previous frame, five LM steps land within 0.4 % of the inter-ocular
# distance (mean; 1.6 % max) of ten, for 6.4 instead of 9.9 ms (d3 at 320², one thread); the
# motion they leave unconverged shows as ~5 ms more lag over the clip.
LIVE_FITTER = FitterConfig(frame_iterations=5)
EstimatorFactory = Callable[[FaceModel], FrameEstimator | None]
"""The reconstruction method: builds the estimator from the face model (None: the fitter). It runs
in the reconstruct stage's process, so it must pickle (a frozen dataclass of options, say)."""
RendererFactory = Callable[[], FrameRenderer]
"""Builds the reenact stage's frame renderer, in its process: it must pickle too."""


def live_reconstructor(model: FaceModel, estimator: FrameEstimator | None = None) -> Reconstructor:
    """A video-mode reconstructor with the live pipeline's lighter smoothing and shorter per-frame
    fit; the fitter or ``estimator``."""
    return Reconstructor(
        model, mode="video", smoothing=LIVE_SMOOTHING, fitter=LIVE_FITTER, estimator=estimator
    )


@dataclass(frozen=True)
class DrivingFace:
    """What the reconstruct stage passes on when the reenact stage plans: the driving face's
    FaceParams and its (478, 3) landmarks."""

    params: FaceParams
    landmarks: np.ndarray


class ReconstructWorker:
    """The ``reconstruct`` stage: the frame's payload becomes the :class:`TargetPlan` of its
    driving face (with a ``planner``), else its :class:`DrivingFace`, :class:`Packed` (the session
    that passes it to the reenact stage never loads it); None without a face.

    ``control("recalibrate")`` makes the next driving face the neutral reference of relative
    motion, where this stage plans (the planner keeps the references).
    """

    def __init__(
        self, reconstructor: Reconstructor, planner: Reenactor | None, controls: Controls = Controls()
    ) -> None:
        self.reconstructor, self.planner, self.controls = reconstructor, planner, controls

    def __call__(self, frame: StagedFrame) -> StagedFrame:
        if frame.image is None:
            raise ValueError(f"frame {frame.index} has no pixels to reconstruct")
        seconds = (
            frame.index / DEFAULT_FPS
            if frame.pts is None or frame.time_base is None
            else float(frame.pts * frame.time_base)
        )
        try:
            result = self.reconstructor.step(frame.index, seconds, frame.image)
            payload: TargetPlan | DrivingFace | None = None
            if result.params is not None:
                landmarks = result.tracking.landmarks
                payload = (
                    DrivingFace(result.params, landmarks)
                    if self.planner is None
                    else self.planner.plan(result.params, self.controls, landmarks)
                )
        except ValueError as error:  # one unusable frame must not end a live session
            LOG.warning("frame %d not reconstructed: %s", frame.index, error)
            return replace(frame, image=None, payload=None)
        packed = None if payload is None else Packed.of(payload)
        return replace(frame, image=None, payload=packed)  # nobody reads the pixels after this

    def control(self, command: str) -> bool:
        """Carry out ``command`` (``recalibrate``); whether this stage took it (it plans)."""
        _check_command(command)
        if self.planner is None:
            return False
        self.planner.recalibrate()
        return True

    def close(self) -> None:
        self.reconstructor.tracker.close()


class ReenactWorker:
    """The ``reenact`` stage: the (packed) payload's :class:`TargetPlan` drawn, or its
    :class:`DrivingFace` planned (with ``controls``) and drawn.

    A frame without a face shows the last reenacted image (the source before the first face).
    ``control("recalibrate")`` is taken as by :class:`ReconstructWorker`, where this stage plans.
    """

    def __init__(self, reenactor: Reenactor, plans: bool, controls: Controls = Controls()) -> None:
        self.reenactor, self.plans, self.controls = reenactor, plans, controls
        self._last = to_uint8(reenactor.source.picture[0])

    def __call__(self, frame: StagedFrame) -> StagedFrame:
        packed: Packed[TargetPlan | DrivingFace] | None = frame.payload
        payload = None if packed is None else packed.unpack()
        try:
            if isinstance(payload, DrivingFace):
                payload = self.reenactor.plan(payload.params, self.controls, payload.landmarks)
            if isinstance(payload, TargetPlan):
                self._last = self.reenactor.draw(payload).image
        except ValueError as error:
            LOG.warning("frame %d not reenacted: %s", frame.index, error)
        return replace(frame, image=self._last, payload=None)

    def control(self, command: str) -> bool:
        """Carry out ``command`` (``recalibrate``); whether this stage took it (it plans)."""
        _check_command(command)
        if not self.plans:
            return False
        self.reenactor.recalibrate()
        return True


def _check_command(command: str) -> None:
    if command != "recalibrate":
        raise ValueError(f"unknown command {command!r}; the reenactment stages take 'recalibrate'")


@dataclass(frozen=True)
class ReconstructFactory:
    """Builds a :class:`ReconstructWorker` for one source (in a stage host, from this pickled
    value); ``method`` builds its estimator (None: the fitter); with ``plans`` it plans."""

    source: SourceFace
    controls: Controls = field(default_factory=Controls)
    method: EstimatorFactory | None = None
    plans: bool = True

    def __call__(self, model: FaceModel) -> ReconstructWorker:
        estimator = None if self.method is None else self.method(model)
        planner = Reenactor(model, self.source) if self.plans else None
        return ReconstructWorker(live_reconstructor(model, estimator), planner, self.controls)


@dataclass(frozen=True)
class ReenactFactory:
    """Builds a :class:`ReenactWorker` for one source (in a stage host, from this pickled value);
    ``renderer`` builds its frame renderer (None: the geometric one); with ``plans`` it plans."""

    source: SourceFace
    renderer: RendererFactory | None = None
    controls: Controls = field(default_factory=Controls)
    plans: bool = False

    def __call__(self, model: FaceModel) -> ReenactWorker:
        renderer = None if self.renderer is None else self.renderer()
        return ReenactWorker(Reenactor(model, self.source, renderer=renderer), self.plans, self.controls)


def session_factories(
    source: SourceFace,
    method: EstimatorFactory | None = None,
    controls: Controls = Controls(),
    renderer: RendererFactory | None = None,
    planner: str = "reenact",
) -> dict[str, WorkerFactory]:
    """A session's worker factories, by stage kind: its own tracker, fit state and ``source``;
    ``method`` the reconstruction method (None: the fitter), ``renderer`` builds the reenact
    stage's frame renderer (None: the geometric one), ``planner`` the stage that plans
    (:func:`~jr2net.realtime.reenactment_hosts.planning_stage` of the renderer's refiner)."""
    if planner not in STAGES:
        raise ValueError(f"the planning stage must be one of {STAGES}, got {planner!r}")
    return {
        "reconstruct": ReconstructFactory(source, controls, method, plans=planner == "reconstruct"),
        "reenact": ReenactFactory(source, renderer, controls, plans=planner == "reenact"),
    }


def open_reenactment(
    pool: WorkerPool,
    key: str,
    source: SourceFace,
    method: EstimatorFactory | None = None,
    controls: Controls = Controls(),
    renderer: RendererFactory | None = None,
    planner: str = "reenact",
) -> PooledSession:
    """Session ``key``'s reconstruct and reenact workers in ``pool`` (see :func:`session_factories`)."""
    return pool.open(key, session_factories(source, method, controls, renderer, planner))


def warm_up(
    pool: WorkerPool,
    source: SourceFace,
    renderer: RendererFactory | None = None,
    planner: str = "reenact",
    frames: int = WARM_UP_FRAMES,
) -> dict[str, float]:
    """:func:`~jr2net.realtime.reenactment_hosts.drive_warm_up` with ``source``'s own picture, on
    a session with ``renderer`` (None: the geometric one) planned in ``planner``, so the warm-up
    pays that refiner's first-use costs and measures its stages (what admission control assumes
    until real frames are measured)."""
    factories = session_factories(source, renderer=renderer, planner=planner)
    return drive_warm_up(pool, to_uint8(source.picture[0]), factories, frames)
