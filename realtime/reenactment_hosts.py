"""The reenactment stages' hosts as a session sees them: the pool, which stage plans, the warm-up.

Nothing here imports the workers (torch, MediaPipe, the fitter: :mod:`jr2net.realtime.reenactment`);
the hosts import them as they start. A process that only routes a call's frames between the hosts
(a Ray session actor) runs its session with this module and worker factories made elsewhere
(:class:`~jr2net.realtime.stage_host.PackedFactory`), and never loads them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping

import numpy as np

from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.stage_host import WorkerFactory
from jr2net.realtime.worker_pool import HostFactory, PooledSession, WorkerPool

STAGES = ("reconstruct", "reenact")
HEAVY_REFINERS = ("dcnet",)  # refiners whose drawing outweighs tracking and fitting
TRACKING_SIZE = 480  # longest side (px) a live frame is tracked at: a webcam's frame is scaled to it once
WARM_UP_FRAMES = 12


def load_stage_model() -> object:
    """A reenactment host's preload, run as the host starts: the face model its workers are built
    with (the workers' own imports come with the first factory it is sent: the warm-up's, before
    any caller). Imported here, not at the top, so a process that only names this function (a
    session's) never loads torch."""
    from jr2net.face_model import FaceModel

    return FaceModel.load()


def planning_stage(refiner: str) -> str:
    """The stage that plans a session's frames with ``refiner``: the reconstruct stage where the
    drawing is the heavier half (:data:`HEAVY_REFINERS`), else the reenact stage."""
    return "reconstruct" if refiner in HEAVY_REFINERS else "reenact"


def reenactment_pool(
    mode: str = "process", hosts: int | None = None, host_factory: HostFactory | None = None
) -> WorkerPool:
    """The hosts of both stages, preloaded with the face model (see :class:`WorkerPool`)."""
    return WorkerPool(STAGES, mode, hosts, preload=load_stage_model, host_factory=host_factory)


def drive_warm_up(
    pool: WorkerPool,
    picture: np.ndarray,
    factories: Mapping[str, WorkerFactory],
    frames: int = WARM_UP_FRAMES,
) -> dict[str, float]:
    """Drive ``picture`` ((H, W, 3) uint8, the source's own) through a session of ``factories``
    (the source's, :func:`jr2net.realtime.reenactment.session_factories`) for ``frames`` frames on
    every host of ``pool``, so the first caller pays for no first-use costs (graphs, JIT, caches);
    the median seconds per frame of each stage kind (what admission control assumes before real
    frames are measured).

    Raises:
        RuntimeError: the tracker found no face in the picture (nothing was measured).
    """
    seconds: dict[str, list[float]] = {kind: [] for kind in STAGES}
    faces = 0
    sessions: list[PooledSession] = []
    try:
        for host_index in range(max(len(hosts) for hosts in pool.hosts.values())):
            key = f"warm-up-{host_index}-{secrets.token_hex(4)}"  # unique on a host shared by pools
            sessions.append(pool.open(key, factories))  # one per host
        for session in sessions:
            for index in range(frames):
                frame = StagedFrame(picture, index, None, None, time.monotonic())
                for kind, stage in zip(STAGES, session.stages):
                    started = time.perf_counter()
                    frame = stage.work(frame)
                    if index >= frames // 2:  # the first frames pay for first use
                        seconds[kind].append(time.perf_counter() - started)
                    faces += kind == "reconstruct" and frame.payload is not None
    finally:
        for session in sessions:
            session.close()
    if faces == 0:
        raise RuntimeError("warm-up: the tracker found no face in the source picture")
    return {kind: float(np.median(values)) for kind, values in seconds.items()}
