"""One call on a Ray worker: ``jr2net serve --ray`` runs each caller's session in a
:class:`SessionActor`, placed by Ray on a node with the resources the session declares.

The actor holds the call: the caller's peer connection (so the media flows between the caller and
this node, never through the front door), the pipeline, and its workers on the node's stage hosts,
which every call on the node shares (:mod:`jr2net.realtime.ray_stage_hosts`; or hosts of its own,
in threads). It is an async actor: aiortc runs on its event loop. It is named (by the session id)
and detached, so a front door that restarts finds it again in the namespace.

The actor only routes the call's frames between its caller and the hosts: it never imports torch,
numba, MediaPipe, the reenactor (the hosts do) or aiohttp (the front door reads the offers). Its
call's worker factories come made and packed by the front door
(:class:`~jr2net.realtime.stage_host.PackedFactory`), and the plan a frame carries from the
reconstruct host to the reenact host passes through it packed. So a replacement actor that starts
while calls run costs its node 0.47 s of a core, against 1.5 s when it imported them.

The slow part of a session's start (its imports; on a node's first call, its hosts' face model
and first-use costs) happens before its caller: the front door keeps an actor or more warm
(:meth:`SessionActor.warm`) and hands the next call to one (:meth:`SessionActor.take`), so an
offer waits only for the call's own workers (tracker, source).

A call ends once (the caller leaves, its video stops, or the front door hangs up): the actor then
frees its stages, says why through :meth:`SessionActor.ended`, and exits itself a little later
(the front door usually ends it at once). An actor killed, or lost with its node, ends its call too:
the front door's pending :meth:`SessionActor.ended` fails, and Ray has freed its resources.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from jr2net.realtime.admission import send_rate
from jr2net.realtime.call_report import call_stats, frame_timeline
from jr2net.realtime.offers import TRACK_TIMEOUT_S, answer_offer, new_peer
from jr2net.realtime.pipeline import Pipeline
from jr2net.realtime.ray_stage_hosts import expected_fps, frames_served, node_host_factory
from jr2net.realtime.reenactment_hosts import TRACKING_SIZE, WARM_UP_FRAMES, drive_warm_up, reenactment_pool
from jr2net.realtime.stage_host import PackedFactory
from jr2net.realtime.threads import configure_live_threads, shorten_switch_interval
from jr2net.realtime.webrtc import ReenactedTrack, TrackSource, limit_ice_to_loopback
from jr2net.realtime.worker_pool import PooledSession, WorkerPool

LOG = logging.getLogger("jr2net.serve")
ENDED_LINGER_S = 10.0  # an ended call's actor waits this long for the front door to read why, then exits
STOP_TIMEOUT_S = 10.0  # how long an ending call waits for its pipeline's frames in flight
HUNG_UP = "the call was hung up"
CALLER_LEFT = "the caller left"
VIDEO_ENDED = "the caller's video ended"
WORKER_STOPPED = "the worker for this call stopped"  # its actor, or the stage hosts it ran on
NO_VIDEO = f"the caller's video did not start within {TRACK_TIMEOUT_S:g} s"


class OfferRefused(ValueError):
    """The actor's peer connection cannot take the offer (no common codec, a bad SDP)."""


class NotRunning(RuntimeError):
    """The call has no reenactment running (before its video, after its end, or an echo)."""


@dataclass(frozen=True)
class WorkerSetup:
    """How every session actor of a front door runs its call.

    Attributes:
        stage_mode: ``process``: the stages run on the node's hosts, shared by its calls
            (:mod:`~jr2net.realtime.ray_stage_hosts`); ``thread``: on hosts of the call's own, in
            threads of its actor (quicker to start, slower per frame; the actor imports the workers).
        echo: send the caller's video back unprocessed (the transport floor).
        loopback_ice: offer only 127.0.0.1 as ICE candidate (the front door serves loopback).
    """

    stage_mode: str = "process"
    echo: bool = False
    loopback_ice: bool = False


@dataclass(frozen=True)
class SessionSpec:
    """One call, handed to a warm session actor by the front door.

    Attributes:
        id: the session id (secret: the actor's name, and what authorises recalibration).
        name: the public name (``caller-N``) that ``/stats`` shows.
        refiner: the refiner's name.
        factories: the call's worker factories by stage kind (its checked source, its method and
            renderer), made by the front door.
    """

    id: str
    name: str
    refiner: str
    factories: dict[str, PackedFactory]


@dataclass(frozen=True)
class WarmUp:
    """What a session actor warms its node's hosts with: the default source's picture
    ((H, W, 3) uint8) and the factories of a warm-up session on it, made by the front door."""

    picture: np.ndarray
    factories: dict[str, PackedFactory]


class SessionActor:
    """One caller's session on a Ray worker (create it with :func:`session_actor`): started and
    warmed up before its call (:meth:`warm`), then given the call (:meth:`take`)."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.setup = setup
        self.spec: SessionSpec | None = None
        self.started_at = time.time()
        self.outgoing = ReenactedTrack()
        self.peer: RTCPeerConnection | None = None
        self.pool: WorkerPool | None = None
        self.workers: PooledSession | None = None
        self.pipeline: Pipeline | None = None
        self.ended_reason: str | None = None
        self._ended = asyncio.Event()
        self._run_task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()

    async def where(self) -> dict[str, object]:
        """Where Ray placed this session: its node (id, address), worker process and the ids of the
        GPUs Ray gave it (its ``CUDA_VISIBLE_DEVICES``; empty when it declared none)."""
        context = ray.get_runtime_context()
        return {
            "node_id": context.get_node_id(),
            "node": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "gpus": list(context.get_accelerator_ids().get("GPU", [])),
        }

    async def warm(self, warm_up: WarmUp) -> None:
        """Join this node's stage hosts (started, preloaded with the face model, by the first
        session here) and drive ``warm_up``'s picture through them once unless another session
        has, so its caller waits for no imports or first-use costs: the seconds of a session's
        start, before any caller."""
        shorten_switch_interval()
        if self.setup.loopback_ice:
            limit_ice_to_loopback()
        if self.setup.echo:
            return
        if self.setup.stage_mode == "thread":
            configure_live_threads()  # the workers run in this process
            self.pool = await asyncio.to_thread(reenactment_pool, "thread", 1)
        else:
            node = node_host_factory(ray.get_runtime_context().get_node_id())
            self.pool = await asyncio.to_thread(reenactment_pool, host_factory=node)
            if await asyncio.to_thread(frames_served, self.pool) >= WARM_UP_FRAMES:
                return  # the node's hosts are warm: another call warmed them
        await asyncio.to_thread(drive_warm_up, self.pool, warm_up.picture, warm_up.factories)

    async def take(self, spec: SessionSpec) -> None:
        """Become the session of call ``spec``: its workers on the warm hosts (its own tracker, fit
        state and source)."""
        self.spec = spec
        if self.pool is None:
            return
        self.workers = await asyncio.to_thread(self.pool.open, spec.id, spec.factories)

    async def answer(self, sdp: str, kind: str) -> dict[str, str]:
        """Take the caller's offer; the answer's ``{"sdp", "type"}`` and the ``"send_fps"`` its
        caller should send at (where known).

        Raises:
            OfferRefused: the offer cannot be taken (the call is ended then).
        """
        self.peer = peer = new_peer()

        @peer.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and self._run_task is None:
                peer.addTrack(self.outgoing)
                self._run_task = asyncio.create_task(self._run(track))

        @peer.on("connectionstatechange")
        def on_state() -> None:
            if peer.connectionState in ("failed", "closed"):
                self._spawn(self.hang_up(CALLER_LEFT))

        try:
            answer = await answer_offer(peer, RTCSessionDescription(sdp=sdp, type=kind))
        except Exception as error:  # aiortc raises its own errors too (no common codec, bad state)
            await self.hang_up(f"the offer could not be taken: {error}")
            raise OfferRefused(f"cannot answer this offer: {error}") from error
        self._spawn(self._end_unless_started())
        return {"sdp": answer.sdp, "type": answer.type} | await self._send_rate()

    async def _run(self, track: MediaStreamTrack) -> None:
        """The call's pipeline, from the caller's video to the outgoing track, until either ends."""
        stages = [] if self.workers is None else self.workers.stages
        source = TrackSource(track) if self.setup.echo else TrackSource(track, TRACKING_SIZE)
        self.pipeline = Pipeline(source, stages, [self.outgoing])
        reason = WORKER_STOPPED  # a stage failed (its node's host died, say) unless the run ends well
        try:
            await self.pipeline.run()
            reason = VIDEO_ENDED
        except Exception:
            LOG.exception("session %s failed", self.label)
        finally:
            self._spawn(self.hang_up(reason))

    async def _end_unless_started(self) -> None:
        """End a call whose video never started: it holds its node's resources."""
        await asyncio.sleep(TRACK_TIMEOUT_S)
        if self._run_task is None:
            await self.hang_up(NO_VIDEO)

    async def hang_up(self, reason: str = HUNG_UP) -> None:
        """End the call (once; later calls do nothing): stop the pipeline (let finish, never
        cancelled), close the peer connection, free the stages, then say ``reason`` through
        :meth:`ended` and exit :data:`ENDED_LINGER_S` later."""
        if self.ended_reason is not None:
            return
        self.ended_reason = reason
        if self.pipeline is not None:
            self.pipeline.stop()
        self.outgoing.stop()
        if self.peer is not None:
            await self.peer.close()
        if self._run_task is not None and self._run_task is not asyncio.current_task():
            await asyncio.wait({self._run_task}, timeout=STOP_TIMEOUT_S)
        workers, pool, self.workers, self.pool = self.workers, self.pool, None, None
        if workers is not None:
            await asyncio.to_thread(workers.close)
        if pool is not None:
            await asyncio.to_thread(pool.close)
        self._ended.set()
        LOG.info("%s ended: %s", self.label, reason)
        me = ray.get_runtime_context().current_actor
        asyncio.get_running_loop().call_later(ENDED_LINGER_S, lambda: me.exit.remote())

    async def ended(self) -> str:
        """Wait for the call to end; why it ended."""
        await self._ended.wait()
        assert self.ended_reason is not None
        return self.ended_reason

    async def exit(self) -> None:
        """Leave the cluster (Ray frees the resources); for an ended call."""
        ray.actor.exit_actor()

    async def recalibrate(self) -> None:
        """The call's next driving frame becomes its neutral.

        Raises:
            NotRunning: no reenactment runs (an echo, or the call ended).
        """
        if self.workers is None:
            raise NotRunning("this call has no reenactment running")
        await asyncio.to_thread(self.workers.control, "recalibrate")

    async def stats(self, frames: bool = False) -> dict[str, object]:
        """The call's figures (as the single server's), where it runs, and with ``frames`` its
        latest sent frames' ``[pts, captured, sent]`` (this node's monotonic seconds)."""
        state = "new" if self.peer is None else self.peer.connectionState
        refiner = None if self.spec is None else self.spec.refiner
        report = call_stats(state, refiner, self.pipeline, self.outgoing) | await self._send_rate()
        return report | (frame_timeline(self.outgoing) if frames else {})

    async def _send_rate(self) -> dict[str, int]:
        """``{"send_fps"}``: the rate its caller should send at (as the single server tells its
        callers: a little above what the node's shared hosts can give each of their calls now),
        or nothing before the hosts have a forecast (or on hosts of its own)."""
        workers = self.workers
        expected = None if workers is None else await asyncio.to_thread(expected_fps, workers.hosts)
        return {} if expected is None else {"send_fps": send_rate(expected)}

    async def describe(self) -> dict[str, Any]:
        """For a front door that adopts this call: its public name and refiner (None for a warm actor
        without a call yet), where it runs, when it started (Unix seconds) and why it ended (None
        while it runs)."""
        return {
            "name": None if self.spec is None else self.spec.name,
            "refiner": None if self.spec is None else self.spec.refiner,
            "where": await self.where(),
            "started": self.started_at,
            "ended": self.ended_reason,
        }

    @property
    def label(self) -> str:
        """The call's public name, for logs (``warm`` before it has a call)."""
        return "warm" if self.spec is None else self.spec.name

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


_REMOTE_SESSION = ray.remote(SessionActor)


def session_actor(
    key: str, setup: WorkerSetup, namespace: str, options: dict[str, float]
) -> ray.actor.ActorHandle:
    """Create a session actor named ``key`` (its call's session id) in ``namespace``, declaring
    ``options`` (``num_cpus``, ``num_gpus``): detached (it outlives the front door that made it),
    never restarted (a call cannot resume on a new worker; the caller reconnects)."""
    return _REMOTE_SESSION.options(
        name=key, namespace=namespace, lifetime="detached", max_restarts=0, **options
    ).remote(setup)
