"""``jr2net serve``: an aiohttp + aiortc server that reenacts browsers' cameras over WebRTC.

Routes:

- ``GET /`` the web page.
- ``POST /source`` (multipart ``image``, or ``model`` for the built-in avatar) → ``{"source": id}``:
  a source kept for the one call whose offer names it (see :mod:`jr2net.realtime.source_store`).
- ``POST /offer`` ``{"sdp", "type"}`` and optionally ``"refiner"`` (one the server offers) and
  ``"source"`` (an upload's id; default: the server's ``--source``) → ``{"sdp", "type",
  "session"}``; 503 with the reason when one more caller would push the callers on below the fps
  floor (:mod:`jr2net.realtime.admission`); a first caller under the floor is taken, and the
  answer's ``"warning"`` says what it can expect. The answer's ``"send_fps"`` is the rate the
  caller should send at (:func:`jr2net.realtime.admission.send_rate`; the page caps its camera's
  encoder there), kept up to date in its ``/stats``.
- ``POST /recalibrate`` ``{"session"}``: the session's next driving frame becomes its neutral.
- ``GET /stats``: every caller's refiner, fps (over the call and the last seconds), time to the
  first frame, drops and latency (by a public name, never the session id), the pool's load and
  the capacity; ``?session=ID`` adds that caller's own as ``"you"``, with the ``"send_fps"`` it
  should send at now (and with ``&frames=1`` the latest sent frames' ``[pts, captured, sent]`` in
  monotonic seconds, and the first one's pts).

Every session shares one warm :class:`jr2net.realtime.worker_pool.WorkerPool` started with the
server; a session has its own workers (tracker, fit state, source) there, freed when it ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiortc import RTCPeerConnection

from jr2net.face_model import FaceModel
from jr2net.realtime.admission import CallCost, CpuAccount, expected_fps, send_rate
from jr2net.realtime.call_report import call_stats, frame_timeline
from jr2net.realtime.front_door import front_door_app, read_offer, refiner_table, requested_session
from jr2net.realtime.offers import TRACK_TIMEOUT_S, answer_offer, new_peer
from jr2net.realtime.pipeline import Pipeline
from jr2net.realtime.process_stage import StageProcessError
from jr2net.realtime.reenactment import EstimatorFactory, RendererFactory, open_reenactment, warm_up
from jr2net.realtime.reenactment_hosts import STAGES, TRACKING_SIZE, planning_stage, reenactment_pool
from jr2net.realtime.stage_modes import STAGE_MODES
from jr2net.realtime.threads import machine_cores
from jr2net.realtime.uploads import SourceUploads, client
from jr2net.realtime.webrtc import ReenactedTrack, TrackSource
from jr2net.realtime.worker_pool import PooledSession, WorkerPool
from jr2net.reenact import Controls, SourceFace
from jr2net.sources import computing_source, refined_source

LOG = logging.getLogger("jr2net.serve")
SESSION_STOP_TIMEOUT_S = 10.0
DEFAULT_MIN_FPS = 15.0
# before a call was measured: the server process's CPU seconds per frame received (decoding) and
# per frame delivered beside the stages (encoding)
SERVER_SECONDS_PER_RECEIVED = 0.004
SERVER_SECONDS_PER_DELIVERED = 0.006
CPU_SAMPLE_PERIOD_S = 1.0


@dataclass
class Session:
    """One connected peer and what it holds."""

    id: str
    name: str
    peer: RTCPeerConnection
    outgoing: ReenactedTrack
    refiner: str
    source: SourceFace
    pipeline: Pipeline | None = None
    workers: PooledSession | None = None
    task: asyncio.Task | None = None


class ReenactmentServer:
    """The server's state: the model, the default source, the worker pool and the live sessions.

    Args:
        model: the face model.
        source: the source of callers who upload none.
        size: working size of uploaded sources.
        echo: send every peer its own video back unprocessed: the transport floor that the latency
            benchmark subtracts.
        method: builds the reconstruct stage's estimator (None: the fitter).
        stage_mode: the pool's hosts in processes or threads.
        renderers: the refiners an offer may name (its ``refiner`` field), each building the
            reenact stage's frame renderer (default: only ``geometric``); ``default_renderer``
            serves offers that name none.
        min_fps: the fps floor admission control keeps the callers on above (a first caller is
            taken under it, warned).
        hosts: hosts per stage kind (default: sized to the machine's cores).
    """

    def __init__(
        self,
        model: FaceModel,
        source: SourceFace,
        size: int,
        echo: bool = False,
        method: EstimatorFactory | None = None,
        stage_mode: str = "process",
        renderers: Mapping[str, RendererFactory] | None = None,
        default_renderer: str = "geometric",
        min_fps: float = DEFAULT_MIN_FPS,
        hosts: int | None = None,
    ) -> None:
        if stage_mode not in STAGE_MODES:
            raise ValueError(f"unknown stage mode {stage_mode!r}; choose from {STAGE_MODES}")
        if min_fps < 0:
            raise ValueError(f"min_fps must not be negative, got {min_fps}")
        self.renderers = refiner_table(renderers, default_renderer)
        self.default_renderer = default_renderer
        self.model, self.source, self.size, self.echo = model, source, size, echo
        self.method, self.stage_mode, self.min_fps, self.hosts = method, stage_mode, min_fps, hosts
        self.sessions: dict[str, Session] = {}
        self.uploads = SourceUploads(model, size)
        self.pool: WorkerPool | None = None
        self.warm_seconds: dict[str, float] = {}
        self._cpu = CpuAccount()
        self._frames_of_ended_sessions = 0
        self._frames_in_of_ended_sessions = 0
        self._background: set[asyncio.Task] = set()
        self._names = itertools.count(1)

    def app(self) -> web.Application:
        return front_door_app(self)

    async def offer(self, request: web.Request) -> web.Response:
        offer = await read_offer(request, self.renderers, self.default_renderer)
        expected = self.forecast()
        under_floor = expected is not None and expected < self.min_fps
        if under_floor and self.sessions:
            raise web.HTTPServiceUnavailable(text=self.refusal(expected))
        source = self.source if offer.source is None else self.uploads.take(offer.source)
        peer = new_peer()
        name = f"caller-{next(self._names)}"
        session = Session(secrets.token_urlsafe(16), name, peer, ReenactedTrack(), offer.refiner, source)
        self.sessions[session.id] = session

        @peer.on("track")
        def on_track(track: object) -> None:
            if track.kind == "video" and session.task is None:
                peer.addTrack(session.outgoing)
                session.task = asyncio.create_task(self._run(session, track))

        @peer.on("connectionstatechange")
        async def on_state() -> None:
            if peer.connectionState in ("failed", "closed"):
                await self.close_session(session.id)

        try:
            answer = await answer_offer(peer, offer.description)
        except Exception as error:  # aiortc raises its own errors too (no common codec, bad state)
            await self.close_session(session.id)
            if offer.source is not None:
                self.uploads.store.restore(offer.source, source, client(request))  # the caller may try again
            raise web.HTTPBadRequest(text=f"cannot answer this offer: {error}") from error
        self._spawn(self._close_unless_started(session))
        reply: dict[str, object] = {"sdp": answer.sdp, "type": answer.type, "session": session.id}
        if expected is not None:  # the forecast counted this caller: it is what each caller gets now
            reply["send_fps"] = send_rate(expected)
        if under_floor:
            reply["warning"] = self.warning(expected)
        return web.json_response(reply)

    async def _close_unless_started(self, session: Session) -> None:
        """Close an answered session whose video never started: it holds a caller's place."""
        await asyncio.sleep(TRACK_TIMEOUT_S)
        if session.task is None and session.id in self.sessions:
            LOG.warning("%s sent no video within %g s; closing it", session.name, TRACK_TIMEOUT_S)
            await self.close_session(session.id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, keeping its task until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def forecast(self) -> float | None:
        """The fps every caller would get with one more; None for the echo server, which has no pool."""
        if self.echo or self.pool is None:
            return None
        return self.expected_fps(extra=1)

    def refusal(self, expected: float) -> str:
        """Why one more caller cannot join the callers on: with it each would get ``expected`` fps.

        Only callers already on are protected by the floor: a first caller is taken whatever its
        forecast (:meth:`warning`), since refusing it protects nobody."""
        return (
            f"the server is full: with one more caller each of the {len(self.sessions) + 1} would get "
            f"about {expected:.1f} fps, below this server's floor of {self.min_fps:g} fps; try again later"
        )

    def warning(self, expected: float) -> str:
        """What a first caller under the floor is told: this machine gives it about ``expected`` fps."""
        return (
            f"this machine can give this call only about {expected:.1f} fps, below this server's floor of "
            f"{self.min_fps:g} fps (other programs busy, or a slow machine)"
        )

    def expected_fps(self, extra: int) -> float:
        """The fps every caller can expect with ``extra`` more callers placed in the pool (and the
        callers still connecting counted as placed); for one caller when that makes none (every
        call just left)."""
        loads = self._loads(extra)
        if not any(sum(counts) for counts in loads.values()):
            loads = self._loads(extra + 1)
        stages = self.stage_seconds()
        callers = max(sum(counts) for counts in loads.values())
        foreign = self._cpu.foreign_cores(calls=callers)
        return expected_fps(machine_cores(), loads, stages, self.call_cost(stages), foreign)

    def _loads(self, extra: int) -> dict[str, list[int]]:
        """Per stage kind, the callers on each host, with ``extra`` more placed and the callers
        still connecting counted as placed."""
        assert self.pool is not None
        connecting = sum(session.workers is None for session in self.sessions.values())
        return self.pool.loads(extra=extra + connecting)

    def stage_seconds(self) -> dict[str, float]:
        """Seconds per frame of each stage kind: measured on recent frames, else the warm-up's."""
        assert self.pool is not None
        measured = self.pool.frame_seconds()
        return {kind: measured[kind] or self.warm_seconds.get(kind, 0.0) for kind in STAGES}

    def call_cost(self, stages: dict[str, float]) -> CallCost:
        """What a call cost the server's processes (this one and the stage hosts) over the last
        seconds; before enough frames, the stages' seconds plus a default share."""
        default = CallCost(SERVER_SECONDS_PER_RECEIVED, sum(stages.values()) + SERVER_SECONDS_PER_DELIVERED)
        return self._cpu.cost(default)

    def frames_received(self) -> int:
        """Frames received from every caller since the server started (only ever grows)."""
        running = sum(s.pipeline.stats.frames_in for s in self.sessions.values() if s.pipeline is not None)
        return self._frames_in_of_ended_sessions + running

    def frames_sent(self) -> int:
        """Frames sent to every caller since the server started (only ever grows)."""
        return self._frames_of_ended_sessions + sum(s.outgoing.frames_sent for s in self.sessions.values())

    async def _sample_cpu(self) -> None:
        """Sample the CPU time of the server's processes and of the machine, beside the frames
        received and sent and the calls, once a second while it runs."""
        assert self.pool is not None
        while True:
            calls = sum(session.pipeline is not None for session in self.sessions.values())
            self._cpu.sample(self.pool.process_ids(), self.frames_received(), self.frames_sent(), calls)
            await asyncio.sleep(CPU_SAMPLE_PERIOD_S)

    async def _run(self, session: Session, track: object) -> None:
        """Run the session's pipeline; this task owns its workers and ends the session when done."""
        try:
            if self.echo or self.pool is None:
                session.pipeline = Pipeline(TrackSource(track), [], [session.outgoing])
            else:
                session.workers = await asyncio.to_thread(self._open_workers, session)
                session.pipeline = Pipeline(
                    TrackSource(track, TRACKING_SIZE), session.workers.stages, [session.outgoing]
                )
            await session.pipeline.run()
        except Exception:
            LOG.exception("session %s failed", session.name)
        finally:
            if session.workers is not None:
                await asyncio.to_thread(session.workers.close)  # logs what it cannot close, never raises
            if session.id in self.sessions:
                self._spawn(self.close_session(session.id))

    def _open_workers(self, session: Session) -> PooledSession:
        """The session's workers in the pool, on its source as its refiner computes it."""
        assert self.pool is not None  # a reenacting server has started its pool
        refiner = session.refiner
        source = computing_source(self.model, session.source, refiner)
        renderer = self.renderers[refiner]
        return open_reenactment(
            self.pool, session.id, source, self.method, Controls(), renderer, planning_stage(refiner)
        )

    async def close_session(self, session_id: str) -> None:
        """Stop a session's pipeline and peer connection and forget it.

        The pipeline is let finish (closing the peer ends its input track), never cancelled: a
        cancelled stage would leave its worker thread inside MediaPipe. The session's task frees
        its workers once its pipeline has returned.
        """
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        self._frames_of_ended_sessions += session.outgoing.frames_sent  # with the pop: counted once
        if session.pipeline is not None:
            self._frames_in_of_ended_sessions += session.pipeline.stats.frames_in
            session.pipeline.stop()
        session.outgoing.stop()
        await session.peer.close()
        if session.task is not None and session.task is not asyncio.current_task():
            await asyncio.wait({session.task}, timeout=SESSION_STOP_TIMEOUT_S)

    async def recalibrate(self, request: web.Request) -> web.Response:
        session_id = await requested_session(request)
        session = self.sessions.get(session_id)
        if session is None:
            raise web.HTTPNotFound(text="no live call has this session id")
        if session.workers is None:
            raise web.HTTPConflict(text="this call has no reenactment running (yet)")
        try:
            await asyncio.to_thread(session.workers.control, "recalibrate")
        except (StageProcessError, KeyError) as error:  # the call ended or its worker died meanwhile
            raise web.HTTPConflict(text=f"this call's reenactment is gone: {error}") from error
        return web.json_response({"recalibrated": True})

    async def stats(self, request: web.Request) -> web.Response:
        sessions = {session.name: self._session_stats(session) for session in self.sessions.values()}
        report: dict[str, object] = {
            "sessions": sessions,
            "refiners": sorted(self.renderers),
            "default_refiner": self.default_renderer,
        }
        expected_now: float | None = None  # every caller's fps now (with a pool)
        if self.pool is not None:
            expected_now = self.expected_fps(extra=0)
            stages = self.stage_seconds()
            callers = len(self.sessions)
            cost = self.call_cost(stages)
            report["pool"] = self.pool.load()
            report["capacity"] = {
                "min_fps": self.min_fps,
                "callers": callers,
                "stage_ms": {kind: seconds * 1e3 for kind, seconds in stages.items()},
                "cpu_ms_per_received": cost.per_received * 1e3,
                "cpu_ms_per_delivered": cost.per_delivered * 1e3,
                "received_fps_per_call": cost.received_rate,
                "foreign_cores": self._cpu.foreign_cores(),
                "foreign_cores_with_one_more": self._cpu.foreign_cores(calls=callers + 1),
                "expected_fps": expected_now,
                "expected_fps_with_one_more": self.expected_fps(extra=1),
            }
        own = self.sessions.get(request.query.get("session", ""))
        if own is not None:
            report["you"] = sessions[own.name] | {"name": own.name}
            if expected_now is not None:
                report["you"]["send_fps"] = send_rate(expected_now)
            if request.query.get("frames") == "1":
                report["you"] |= frame_timeline(own.outgoing)
        return web.json_response(report)

    @staticmethod
    def _session_stats(session: Session) -> dict[str, object]:
        return call_stats(session.peer.connectionState, session.refiner, session.pipeline, session.outgoing)

    async def startup(self, app: web.Application) -> None:
        """Start the worker pool and warm it up with the default refiner on the default source, or
        on the built-in avatar's picture taken as a photo where that is the default (the avatar
        itself is drawn from the model, never refined), a few seconds, so the first caller waits
        for no imports or first-use costs."""
        if self.echo:
            return
        self.pool = await asyncio.to_thread(reenactment_pool, self.stage_mode, self.hosts)
        default = self.default_renderer
        source = await asyncio.to_thread(
            lambda: computing_source(self.model, refined_source(self.model, self.source), default)
        )
        self.warm_seconds = await asyncio.to_thread(
            warm_up, self.pool, source, self.renderers[default], planning_stage(default)
        )
        self._spawn(self._sample_cpu())
        LOG.info(
            "pool warm: %s", ", ".join(f"{k} {v * 1e3:.1f} ms/frame" for k, v in self.warm_seconds.items())
        )

    async def shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(self.close_session(s) for s in list(self.sessions)))
        for task in list(self._background):
            task.cancel()
        pool, self.pool = self.pool, None
        if pool is not None:
            await asyncio.to_thread(pool.close)
