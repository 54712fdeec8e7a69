"""``jr2net serve --ray``: the front door of calls that run on a Ray cluster.

The front door keeps the page, the uploads and the signalling; each call runs in its own
:class:`jr2net.realtime.ray_sessions.SessionActor`, which Ray places on a node with the resources a
session declares (:class:`jr2net.realtime.ray_cluster.SessionResources`). The actor holds the
caller's peer connection, so media flows between the caller and that node, never through here.

Routes, as the single server's (:mod:`jr2net.realtime.server`) where not said:

- ``POST /offer``: the call goes to a warm actor (the front door keeps ``warm`` of them started,
  or as many as the cluster has room for, each holding a session's resources), else to one placed
  now; 503 with the reason when no live node has a session's resources free (Ray's per-node view),
  or when Ray places none within :data:`PLACEMENT_TIMEOUT_S`.
- ``GET /stats``: each call's figures (from its actor) with the node it runs on, the warm actors
  (``wanted``: a number or ``"fill"``, ``placed``, ``ready``, and ``room``: whether the last top-up
  found room for all it wanted), and the cluster's nodes; ``?session=ID`` of a call that ended
  gives ``"ended"``: why, and when its worker stopped (killed, or lost with its node) an upload id
  of the same source to reconnect with.

A call ends cleanly whichever side ends it: the caller leaving, or its worker stopping (the front
door's pending ``ended()`` on the actor fails; Ray has freed the resources). Calls outlive the front
door (detached actors, named by session id in the namespace): a front door that starts adopts the
calls it finds there, so restarting it loses no call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import ray
from aiohttp import web
from ray.actor import ActorHandle
from ray.exceptions import ActorUnavailableError, RayActorError, RayError, RayTaskError

from jr2net.face_model import FaceModel
from jr2net.image_io import to_uint8
from jr2net.realtime.front_door import front_door_app, read_offer, refiner_table, requested_session
from jr2net.realtime.ray_cluster import NAMESPACE, SessionResources, cluster_view, named_actors, refusal
from jr2net.realtime.ray_sessions import (
    WORKER_STOPPED,
    NotRunning,
    OfferRefused,
    SessionSpec,
    WarmUp,
    WorkerSetup,
    session_actor,
)
from jr2net.realtime.reenactment import (
    EstimatorFactory,
    RendererFactory,
    session_factories,
)
from jr2net.realtime.reenactment_hosts import planning_stage
from jr2net.realtime.stage_host import PackedFactory, packed_factories
from jr2net.realtime.uploads import SourceUploads, client
from jr2net.reenact import Controls, SourceFace
from jr2net.sources import computing_source, refined_source

LOG = logging.getLogger("jr2net.serve")
PLACEMENT_TIMEOUT_S = 30.0  # a call's actor not running by then (Ray found no node after all) is a 503
START_TIMEOUT_S = 120.0  # its stages not built by then (preload, source) is a 503 too
STATS_TIMEOUT_S = 2.0  # a call's actor that does not answer /stats by then shows as unreachable
STATS_MAX_AGE_S = 1.0  # /stats asks the calls' actors at most this often
WARM_RETRY_S = 2.0  # a front door short of warm actors looks for room this often
UNAVAILABLE_RETRY_S = 1.0  # an actor Ray cannot reach for now is asked again after this
ADOPT_TIMEOUT_S = 10.0
ENDED_KEPT = 256  # ended calls whose reason /stats?session= still gives


@dataclass
class RemoteCall:
    """A call the front door placed (or adopted) and what it knows of it.

    Attributes:
        owner: the client's address (its reconnect upload is theirs); None for an adopted call.
        source: the uploaded source, to reconnect with if its worker stops (None: the default
            source, or an adopted call's, which stayed with its actor).
    """

    id: str
    name: str
    actor: ActorHandle  # of a SessionActor
    refiner: str
    where: dict[str, object]
    owner: str | None = None
    source: SourceFace | None = None


@dataclass
class WarmActor:
    """A session actor placed and warming up (``ready``: its warm-up) for the next call; its name
    ``id`` becomes that call's session id."""

    id: str
    actor: ActorHandle  # of a SessionActor
    where: dict[str, object]
    ready: asyncio.Future

    @property
    def is_ready(self) -> bool:
        """Whether its warm-up has finished well: a call given it waits for nothing else."""
        return self.ready.done() and not self.ready.cancelled() and self.ready.exception() is None


@dataclass(frozen=True)
class StatsSnapshot:
    """Every call's figures (by session id: its public name and figures) and the cluster's."""

    sessions: dict[str, tuple[str, dict[str, object]]]
    cluster: dict[str, object]


@dataclass(frozen=True)
class EndedCall:
    """Why a call ended; ``reconnect`` is an upload id of its source when its worker stopped."""

    reason: str
    worker_stopped: bool
    reconnect: str | None


class RayFrontDoor:
    """The front door's state: the model and default source (for uploads), the live calls.

    Args:
        model: the face model (uploads are fitted here, checked before they reach a worker).
        source: the source of callers who upload none.
        size: working size of uploaded sources.
        resources: what each call declares to Ray.
        namespace: the Ray namespace of the calls' actors.
        method: builds the reconstruct stage's estimator (None: the fitter).
        stage_mode: ``process``: the calls' stages on their node's shared hosts; ``thread``: each
            call's own, in threads of its actor.
        renderers: the refiners an offer may name (default: only ``geometric``).
        default_renderer: the refiner of offers that name none.
        echo: send every caller's video back unprocessed (from its actor).
        loopback_ice: the calls offer only 127.0.0.1 (a front door that serves loopback).
        warm: session actors kept started and warm for the next callers, where the cluster has
            room (each holds a session's resources while it waits; 0: each offer places its own,
            seconds slower); None (the default): as many as the cluster has room for, so a call
            always finds one and a replacement starts only as a call ends and frees its resources,
            not beside the calls as they start (two callers' p99 on 2 cores: +52 to +71 % over the
            plain server's with two kept warm, −15 to −27 % filled; ``bench/e2e_latency.py --ray``).
    """

    def __init__(
        self,
        model: FaceModel,
        source: SourceFace,
        size: int,
        resources: SessionResources = SessionResources(),
        namespace: str = NAMESPACE,
        method: EstimatorFactory | None = None,
        stage_mode: str = "process",
        renderers: Mapping[str, RendererFactory] | None = None,
        default_renderer: str = "geometric",
        echo: bool = False,
        loopback_ice: bool = False,
        warm: int | None = None,
    ) -> None:
        self.renderers = refiner_table(renderers, default_renderer)
        self.default_renderer = default_renderer
        if warm is not None and warm < 0:
            raise ValueError(f"warm actors cannot be fewer than 0, got {warm}")
        self.source, self.resources, self.namespace, self.warm = source, resources, namespace, warm
        self.method = method
        self.setup = WorkerSetup(stage_mode, echo, loopback_ice)
        warm_source = computing_source(model, refined_source(model, source), default_renderer)
        factories = session_factories(
            warm_source, renderer=self.renderers[default_renderer], planner=planning_stage(default_renderer)
        )
        self.warm_up = WarmUp(to_uint8(warm_source.picture[0]), packed_factories(factories))
        self.uploads = SourceUploads(model, size)
        self.calls: dict[str, RemoteCall] = {}
        self.ended: OrderedDict[str, EndedCall] = OrderedDict()
        self.warm_actors: list[WarmActor] = []
        self.room_for_warm = True  # whether the last top-up found room for every warm actor it wanted
        self._placing = asyncio.Lock()
        self._wanted = asyncio.Event()
        self._names = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self._stats: asyncio.Future | None = None
        self._stats_at = 0.0

    def app(self) -> web.Application:
        return front_door_app(self)

    async def offer(self, request: web.Request) -> web.Response:
        offer = await read_offer(request, self.renderers, self.default_renderer)
        upload = None if offer.source is None else self.uploads.take(offer.source)
        worker: WarmActor | None = None
        try:
            source = self.source if upload is None else upload
            factories = await asyncio.to_thread(self._factories, source, offer.refiner)
            name = f"caller-{next(self._names)}"
            while worker is None:
                worker = await self._worker()
                try:
                    spec = SessionSpec(worker.id, name, offer.refiner, factories)
                    await _within(worker.actor.take.remote(spec), START_TIMEOUT_S, "take the call")
                except RayActorError as error:  # it died as it waited (its node lost, say): the next one
                    LOG.warning("a warm session actor was gone: %s", error)
                    ray.kill(worker.actor)
                    worker = None
            call = RemoteCall(
                worker.id, name, worker.actor, offer.refiner, worker.where, client(request), upload
            )
            answer = await call.actor.answer.remote(offer.description.sdp, offer.description.type)
        except BaseException as error:  # a cancelled offer too: its detached actor must not stay
            if worker is not None:
                ray.kill(worker.actor)
            if offer.source is not None:
                self.uploads.store.restore(offer.source, upload, client(request))  # the caller may try again
            if isinstance(error, OfferRefused | RayError | web.HTTPServiceUnavailable):
                raise _http_error(error) from error
            raise
        finally:
            self._top_up()
        self.calls[call.id] = call
        self._watch(call)
        LOG.info("%s runs on %s", call.name, call.where.get("node"))
        return web.json_response(answer | {"session": call.id})

    def _factories(self, source: SourceFace, refiner: str) -> dict[str, PackedFactory]:
        """A call's worker factories on ``source`` with ``refiner``, packed for its actor."""
        renderer = self.renderers[refiner]
        computing = computing_source(self.uploads.model, source, refiner)
        return packed_factories(
            session_factories(computing, self.method, Controls(), renderer, planning_stage(refiner))
        )

    async def _worker(self) -> WarmActor:
        """A warm actor for a call: one kept warm, else one placed now and warmed.

        Raises:
            web.HTTPServiceUnavailable: no node has room for one (the reason).
            RayError: its worker failed as it started.
        """
        while True:
            if self.warm_actors:
                worker = self.warm_actors.pop(0)
                try:
                    await worker.ready
                except (RayError, web.HTTPServiceUnavailable) as error:  # the next one, or a new one
                    LOG.warning("a warm session actor failed: %s", error)
                    ray.kill(worker.actor)
                    continue
                return worker
            try:
                worker = await self._place()
            except web.HTTPServiceUnavailable:
                if self.warm_actors:  # a top-up placed one while this offer waited
                    continue
                raise
            try:
                await worker.ready
            except BaseException:
                ray.kill(worker.actor)
                raise
            return worker

    async def _place(self) -> WarmActor:
        """Create a session actor where Ray has room, and start its warm-up.

        Placements go one at a time: the next one sees this one's resources as taken.

        Raises:
            web.HTTPServiceUnavailable: no node can take it (the reason), or Ray placed it nowhere
                within :data:`PLACEMENT_TIMEOUT_S` (it is killed).
        """
        async with self._placing:
            full = await asyncio.to_thread(refusal, self.resources, len(self.calls))
            if full is not None:
                raise web.HTTPServiceUnavailable(text=full)
            key = secrets.token_urlsafe(16)
            actor = session_actor(key, self.setup, self.namespace, self.resources.options())
            try:
                where = await _within(actor.where.remote(), PLACEMENT_TIMEOUT_S, "start on a node")
            except BaseException:  # not placed in time, failed, or the front door stopping
                ray.kill(actor)
                raise
        ready = asyncio.ensure_future(_within(actor.warm.remote(self.warm_up), START_TIMEOUT_S, "warm up"))
        return WarmActor(key, actor, where, ready)

    def _top_up(self) -> None:
        """Have :meth:`_keep_warm` look now (a warm actor was taken, or a call's resources freed)."""
        self._wanted.set()

    async def _keep_warm(self) -> None:
        """Keep :attr:`warm` actors warm (all there is room for, when None) where the cluster has
        room: when asked, and every :data:`WARM_RETRY_S` (resources freed late, or a node joined)."""
        while True:
            self.room_for_warm = True
            while self.warm is None or len(self.warm_actors) < self.warm:
                try:
                    self.warm_actors.append(await self._place())
                except (web.HTTPServiceUnavailable, RayError) as error:  # no room: offers place their own
                    LOG.debug("no warm session actor for now: %s", error)
                    self.room_for_warm = False
                    break
            self._wanted.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), WARM_RETRY_S)

    def _watch(self, call: RemoteCall) -> None:
        """Follow the call until it ends, in the background."""
        self._background(self._follow(call))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, keeping its task until it ends (or the front door stops)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, call: RemoteCall) -> None:
        """Wait for the call to end, or its worker (its actor, or the stage hosts it ran on) to stop;
        then forget it, keeping why."""
        while True:
            try:
                reason = await call.actor.ended.remote()
                call.actor.exit.remote()  # its resources go back now rather than after its linger
                break
            except ActorUnavailableError:  # Ray cannot reach it for now: it may come back
                await asyncio.sleep(UNAVAILABLE_RETRY_S)
            except RayActorError:  # killed, crashed, or lost with its node
                reason = WORKER_STOPPED
                break
        self._forget(call, reason, stopped=reason == WORKER_STOPPED)

    def _forget(self, call: RemoteCall, reason: str, stopped: bool) -> None:
        """Drop a call that ended; keep why, and for a stopped worker's caller an upload of the same
        source to reconnect with (the default source needs none)."""
        self.calls.pop(call.id, None)
        reconnect = None
        if stopped and call.source is not None and call.owner is not None:
            reconnect = self.uploads.store.put(call.source, call.owner)
        self.ended[call.id] = EndedCall(reason, stopped, reconnect)
        while len(self.ended) > ENDED_KEPT:
            self.ended.popitem(last=False)
        LOG.info("%s ended: %s", call.name, reason)
        self._top_up()  # its resources are free again

    async def recalibrate(self, request: web.Request) -> web.Response:
        session_id = await requested_session(request)
        call = self.calls.get(session_id)
        if call is None:
            raise web.HTTPNotFound(text="no live call has this session id")
        try:
            await call.actor.recalibrate.remote()
        except (NotRunning, RayActorError) as error:
            raise web.HTTPConflict(text=f"this call's reenactment is not running: {error}") from error
        return web.json_response({"recalibrated": True})

    async def stats(self, request: web.Request) -> web.Response:
        snapshot = await self._snapshot()
        own_id = request.query.get("session", "")
        report: dict[str, object] = {
            "sessions": {name: _public(figures) for name, figures in snapshot.sessions.values()},
            "refiners": sorted(self.renderers),
            "default_refiner": self.default_renderer,
            "cluster": snapshot.cluster,
            "warm": {
                "wanted": "fill" if self.warm is None else self.warm,
                "placed": len(self.warm_actors),
                "ready": sum(worker.is_ready for worker in self.warm_actors),
                "room": self.room_for_warm,
            },
        }
        own = self.calls.get(own_id)
        if own is not None:
            frames = request.query.get("frames") == "1"
            fresh = frames or own_id not in snapshot.sessions
            figures = await self._call_stats(own, frames) if fresh else snapshot.sessions[own_id][1]
            report["you"] = figures | {"name": own.name}
        elif own_id in self.ended:
            ended = self.ended[own_id]
            report["ended"] = {
                "reason": ended.reason,
                "worker_stopped": ended.worker_stopped,
                "source": ended.reconnect,
            }
        return web.json_response(report)

    async def _snapshot(self) -> StatsSnapshot:
        """Every call's figures and the cluster's, asked at most once per :data:`STATS_MAX_AGE_S`
        whatever the number of pages asking (each asks every second)."""
        if self._stats is None or time.monotonic() - self._stats_at > STATS_MAX_AGE_S:
            self._stats_at = time.monotonic()
            self._stats = asyncio.ensure_future(self._take_snapshot())
        return await asyncio.shield(self._stats)

    async def _take_snapshot(self) -> StatsSnapshot:
        calls = list(self.calls.values())
        figures = await asyncio.gather(*(self._call_stats(call, frames=False) for call in calls))
        cluster = await asyncio.to_thread(cluster_view, self.resources)
        return StatsSnapshot({call.id: (call.name, report) for call, report in zip(calls, figures)}, cluster)

    async def _call_stats(self, call: RemoteCall, frames: bool) -> dict[str, object]:
        """A call's figures from its actor (with ``frames``, its frame timeline), with its node
        (address and id) and GPU ids; ``unreachable`` if it does not answer."""
        try:
            figures = await asyncio.wait_for(_awaited(call.actor.stats.remote(frames)), STATS_TIMEOUT_S)
        except (RayError, TimeoutError):
            figures = {"state": "unreachable", "refiner": call.refiner}
        return figures | {key: call.where.get(key) for key in ("node", "node_id", "gpus")}

    async def startup(self, app: web.Application) -> None:
        """Adopt the calls already running in the namespace (a restarted front door's)."""
        names = await asyncio.to_thread(named_actors, self.namespace)
        adopted = [call for call in await asyncio.gather(*(self._adopt(name) for name in names)) if call]
        numbers = [int(m.group(1)) for call in adopted if (m := re.fullmatch(r"caller-(\d+)", call.name))]
        self._names = itertools.count(max(numbers, default=0) + 1)
        for call in adopted:
            self.calls[call.id] = call
            self._watch(call)
        if adopted:
            LOG.info("adopted %d running call(s): %s", len(adopted), ", ".join(c.name for c in adopted))
        if self.warm != 0:
            self._background(self._keep_warm())

    async def _adopt(self, name: str) -> RemoteCall | None:
        """The running call of actor ``name``; None if it has none (ended, or a warm actor of a front
        door that stopped without a word: it is told to exit) or is gone."""
        try:
            actor = await asyncio.to_thread(ray.get_actor, name, self.namespace)
            about = await asyncio.wait_for(_awaited(actor.describe.remote()), ADOPT_TIMEOUT_S)
        except (ValueError, RayError, TimeoutError) as error:
            LOG.warning("call %s… could not be adopted: %s", name[:4], error)
            return None
        if about["ended"] is not None or about["name"] is None:
            actor.exit.remote()
            return None
        return RemoteCall(name, about["name"], actor, about["refiner"], about["where"])

    async def shutdown(self, app: web.Application) -> None:
        """Stop following the calls, which keep running on the cluster (a restarted front door
        adopts them; a private ``--ray local`` cluster ends them as it stops); end the warm actors."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        warm, self.warm_actors = self.warm_actors, []
        for worker in warm:
            worker.ready.cancel()
            ray.kill(worker.actor)

    async def hang_up_all(self) -> None:
        """End every call (their actors exit): for a front door that takes its cluster down with it."""
        calls = list(self.calls.values())
        await asyncio.gather(*(call.actor.hang_up.remote() for call in calls), return_exceptions=True)


def _http_error(error: Exception) -> web.HTTPException:
    """What an offer that could not be placed or answered gets: 400 for an offer the worker could
    not take, 503 for a call no worker could run."""
    if isinstance(error, web.HTTPException):
        return error
    cause = error.cause if isinstance(error, RayTaskError) else error
    if isinstance(error, OfferRefused):
        return web.HTTPBadRequest(text=str(cause))
    return web.HTTPServiceUnavailable(text=f"this call's worker failed to start: {cause}")


def _public(figures: dict[str, object]) -> dict[str, object]:
    """A call's figures as every caller may see them (no frame timeline, no send rate)."""
    return {key: value for key, value in figures.items() if key not in ("frames", "first_pts", "send_fps")}


async def _within(reference: Any, seconds: float, doing: str) -> Any:
    """A Ray object reference's value, waited for ``seconds`` at most.

    Raises:
        web.HTTPServiceUnavailable: no value by then (the actor did not ``doing`` in time).
    """
    try:
        return await asyncio.wait_for(_awaited(reference), seconds)
    except TimeoutError as error:
        raise web.HTTPServiceUnavailable(
            text=f"this call's worker could not {doing} within {seconds:g} s; try again later"
        ) from error


async def _awaited(reference: Any) -> Any:
    """A Ray object reference's value, as a coroutine (for ``asyncio.wait_for``)."""
    return await reference
