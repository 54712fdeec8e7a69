"""One pool of stage hosts per Ray node, shared by every call that Ray places on it.

Each call of ``serve --ray`` keeps its own session actor (its peer connection, its pipeline, Ray's
accounting of its resources), but the stages' work, most of its CPU, runs on hosts that the node's
calls share, as the single server's sessions share its pool: a named, detached
:class:`StageHostActor` per stage kind and host index on each node (in :data:`STAGE_NAMESPACE`),
started by the first session actor that needs it there and found by the next ones. With a pool per
call, two calls on two cores ran four stage processes and got about half the frames of the single
server at the same load (``bench/e2e_latency.py --ray``).

A host actor declares no resources: the calls declare what their work costs, so Ray's admission
stays per call, and the host sees every GPU of its node (Ray leaves the visible devices of an actor
that asks for none as they are). It runs its workers one message at a time in its own process (its
own GIL), in the order the messages arrive; a session has at most one frame in flight per stage, so
the turns are fair. A worker whose session's actor is gone (killed, or lost with its front door) is
closed when the next session opens on that host.
"""

from __future__ import annotations

import logging

import ray
from ray._private.state import actors  # a DeveloperAPI: ray has no public view of an actor's state
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from jr2net.realtime import wire
from jr2net.realtime.process_stage import START_TIMEOUT_S, StageProcessError, answer, checked
from jr2net.realtime.stage_host import Message, Preload, StageHost, WorkerTable
from jr2net.realtime.threads import configure_live_threads
from jr2net.realtime.worker_pool import HostFactory, WorkerPool

LOG = logging.getLogger("jr2net.realtime")
STAGE_NAMESPACE = "jr2net-stages"  # the hosts' namespace: every front door's calls on a node share them


def host_name(node_id: str, kind: str, index: int) -> str:
    """The actor name of host ``index`` of stage ``kind`` on node ``node_id``."""
    return f"{node_id}/{kind}/{index}"


class StageHostActor:
    """The Ray actor of one shared host: a :class:`WorkerTable` preloaded once, in its own process.

    Args:
        preload: run first (the stage's imports and face model); what it returns is handed to
            every worker factory.
    """

    def __init__(self, preload: Preload | None) -> None:
        configure_live_threads()
        self._table = WorkerTable(None if preload is None else preload())
        self._owners: dict[str, str] = {}  # session key -> the id of the actor that opened its worker
        self._frames = 0

    def handle(self, message: bytes, owner: str | None = None) -> bytes:
        """Carry out one pickled :data:`Message` (``owner``: the id of the actor that opens a
        worker); the pickled answer, or a :class:`~jr2net.realtime.process_stage.StageFailure`."""
        decoded: Message = wire.loads(message)  # type: ignore[assignment]
        kind, key = decoded[0], decoded[1]
        if kind == "open":
            self._close_orphans()
            if owner is not None:
                self._owners[key] = owner
        elif kind == "close":
            self._owners.pop(key, None)
        elif kind == "frame":
            self._frames += 1
        return answer(self._table, decoded)

    def stats(self) -> dict[str, int]:
        """The sessions with a worker here and the frames served since the host started."""
        return {"sessions": len(self._table.workers), "frames": self._frames}

    def _close_orphans(self) -> None:
        """Close the workers whose session actor has died."""
        for key, owner in list(self._owners.items()):
            if actors(actor_id=owner).get("State") == "DEAD":
                LOG.warning("closing session %s…'s worker: its actor is gone", key[:4])
                del self._owners[key]
                answer(self._table, ("close", key))


_REMOTE_HOST = ray.remote(StageHostActor)


class NodeStageHost(StageHost):
    """A session actor's handle on a shared host of its node (the actor started if none runs).

    Its :meth:`close` frees only the workers opened through it: the host serves the node's other
    calls and stays (detached) for the next ones.

    Args:
        name: the stage's name.
        preload: the host's preload, if this starts it (it must pickle).
        node_id: the Ray node the host runs on.
        index: which of the node's hosts of this kind.
    """

    def __init__(self, name: str, preload: Preload | None, node_id: str, index: int) -> None:
        super().__init__(name)
        self._alive = True
        self._owner = _calling_actor()
        self._actor = _REMOTE_HOST.options(
            name=host_name(node_id, name, index),
            namespace=STAGE_NAMESPACE,
            get_if_exists=True,
            lifetime="detached",
            max_restarts=0,
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(preload)

    @property
    def alive(self) -> bool:
        """False once the host actor was found gone (a pool then starts a new one)."""
        return self._alive

    def wait_started(self) -> None:
        """Block until the host has preloaded.

        Raises:
            StageProcessError: it failed to start (the cause), or took over ``START_TIMEOUT_S``.
        """
        self._ask(self._actor.stats.remote(), START_TIMEOUT_S)

    def placed(self) -> int:
        """The sessions on the host, the node's other calls' included."""
        return self.stats()["sessions"]

    def stats(self) -> dict[str, int]:
        """The host's :meth:`StageHostActor.stats`."""
        return self._ask(self._actor.stats.remote(), None)

    def _call(self, message: Message, doing: str | None) -> object:
        owner = self._owner if message[0] == "open" else None
        reply = self._ask(self._actor.handle.remote(wire.dumps(message), owner), None)
        return checked(wire.loads(reply), self.name, doing)

    def _ask(self, reference: ray.ObjectRef, timeout: float | None) -> object:
        try:
            return ray.get(reference, timeout=timeout)
        except RayActorError as error:
            self._alive = False
            raise StageProcessError(f"the {self.name} stage's host on this node is gone: {error}") from error
        except RayTaskError as error:
            raise StageProcessError(f"the {self.name} stage's host failed: {error}") from error
        except GetTimeoutError as error:
            raise StageProcessError(f"the {self.name} stage's host did not start in {timeout:g} s") from error

    def close(self) -> None:
        """Close the workers opened through this handle (the host stays for the node's calls)."""
        for key in list(self.sessions):
            try:
                self.close_worker(key)
            except StageProcessError:
                LOG.exception("could not close session %s…'s %s worker", key[:4], self.name)
        self.sessions.clear()


def _calling_actor() -> str | None:
    """The id of the actor this runs in; None elsewhere (a driver)."""
    context = ray.get_runtime_context()
    return context.get_actor_id() if context.worker.mode == ray.WORKER_MODE else None


def node_host_factory(node_id: str) -> HostFactory:
    """Hosts for a :class:`WorkerPool`: node ``node_id``'s shared ones."""
    return lambda kind, index, preload: NodeStageHost(kind, preload, node_id, index)


def frames_served(pool: WorkerPool) -> int:
    """The fewest frames any of ``pool``'s shared hosts has served (0 for a host just started)."""
    return min(
        host.stats()["frames"]
        for hosts in pool.hosts.values()
        for host in hosts
        if isinstance(host, NodeStageHost)
    )
