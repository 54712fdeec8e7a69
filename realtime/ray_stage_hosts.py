"""One pool of stage hosts per Ray node, shared by every call that Ray places on it.

Each call of ``serve --ray`` keeps its own session actor (its peer connection, its pipeline, Ray's
accounting of its resources), but the stages' work, most of its CPU, runs on hosts that the node's
calls share, as the single server's sessions share its pool: a named, detached
:class:`StageHostActor` per stage kind and host index on each node (in :data:`STAGE_NAMESPACE`),
started by the first session actor that needs it there and found by the next ones. With a pool per
call, two calls on two cores ran four stage processes and got about half the frames of the single
server at the same load (``bench/e2e_latency.py --ray``).

Ray places, names and accounts for the hosts; the frames do not go through Ray. A Ray call cost
1.5 ms (a 0.5 MB frame in) to 3 ms (0.8 MB out) and 0.6 ms of the host's CPU, against a tenth of
that down a pipe, so each session's pool connects to each host over a local socket (authenticated
by a key the host gives through Ray) and speaks the stage processes' messages there. The host takes
the messages of all its connections in arrival order, one at a time (a :class:`FairLock`: each
session has at most one frame in flight per stage, so turns are fair), in its own process (its own
GIL). A connection that closes, the session actor's exit or death included, closes the workers
opened through it.

A host actor declares no resources: the calls declare what their work costs, so Ray's admission
stays per call, and the host sees every GPU of its node (Ray leaves the visible devices of an actor
that asks for none as they are).
"""

from __future__ import annotations

import logging
import multiprocessing.connection
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from jr2net.realtime.fair_lock import FairLock
from jr2net.realtime.process_stage import (
    START_TIMEOUT_S,
    StageProcessError,
    answer,
    checked,
    receive_message,
    send_message,
    serve_messages,
)
from jr2net.realtime.stage_host import FrameCosts, Message, Preload, StageHost, WorkerTable
from jr2net.realtime.threads import configure_live_threads
from jr2net.realtime.worker_pool import HostFactory, WorkerPool

LOG = logging.getLogger("jr2net.realtime")
STAGE_NAMESPACE = "jr2net-stages"  # the hosts' namespace: every front door's calls on a node share them
SOCKET_FAMILY = "AF_UNIX"


def host_name(node_id: str, kind: str, index: int) -> str:
    """The actor name of host ``index`` of stage ``kind`` on node ``node_id``."""
    return f"{node_id}/{kind}/{index}"


def _socket_address() -> str:
    """A fresh local socket address: abstract on Linux (no file to leave behind), else a file in a
    private temporary folder."""
    if sys.platform == "linux":
        return f"\0jr2net-stage-{secrets.token_hex(8)}"
    return os.path.join(tempfile.mkdtemp(prefix="jr2net-stage-"), "host.sock")


class StageHostActor:
    """The Ray actor of one shared host: a :class:`WorkerTable` preloaded once, serving the
    messages of every connected pool.

    Args:
        preload: run first (the stage's imports and face model); what it returns is handed to
            every worker factory.
    """

    def __init__(self, preload: Preload | None) -> None:
        configure_live_threads()
        self._table = WorkerTable(None if preload is None else preload())
        self._turns = FairLock()
        self._frames = 0
        self._costs = FrameCosts()
        self._authkey = secrets.token_bytes(32)
        self._listener = multiprocessing.connection.Listener(
            _socket_address(), SOCKET_FAMILY, authkey=self._authkey
        )
        threading.Thread(target=self._accept, name="jr2net-host-accept", daemon=True).start()

    def address(self) -> tuple[str, bytes]:
        """Where a pool connects (the socket's address) and the key it authenticates with."""
        return self._listener.address, self._authkey

    def stats(self) -> dict[str, float | None]:
        """The sessions with a worker here, the frames served since the host started and the
        median seconds of its recent frames (None before any)."""
        return {"sessions": len(self._table.workers), "frames": self._frames, "frame_s": self._costs.median()}

    def _accept(self) -> None:
        while True:
            try:
                connection = self._listener.accept()
            except (multiprocessing.AuthenticationError, EOFError, OSError) as error:
                LOG.warning("a connection to the stage host failed as it opened: %s", error)
                continue
            threading.Thread(target=self._serve, args=(connection,), name="jr2net-host", daemon=True).start()

    def _serve(self, connection: multiprocessing.connection.Connection) -> None:
        """One pool's messages until it disconnects (or sends ``None``); then close the workers it left
        open."""
        opened: set[str] = set()
        try:
            serve_messages(connection, lambda message: self._carry_out(message, opened))
        except (EOFError, OSError):
            pass
        finally:
            connection.close()
            with self._turns:
                for key in opened:
                    LOG.warning("closing session %s…'s worker: its pool disconnected", key[:4])
                    answer(self._table, ("close", key))

    def _carry_out(self, message: Message, opened: set[str]) -> bytes:
        """One message in turn; ``opened`` follows the workers this connection opened."""
        kind, key = message[0], message[1]
        with self._turns:
            existed = key in self._table.workers
            started = time.perf_counter()
            reply = answer(self._table, message)
            if kind == "frame":
                self._costs.add(time.perf_counter() - started)
                self._frames += 1
            elif kind == "open" and not existed and key in self._table.workers:
                opened.add(key)
            elif kind == "close":
                opened.discard(key)
        return reply


_REMOTE_HOST = ray.remote(StageHostActor)


class NodeStageHost(StageHost):
    """A session's pool's link to a shared host of its node (the host started if none runs).

    Its :meth:`close` frees only the workers opened through it: the host serves the node's other
    calls and stays (detached) for the next ones.

    Args:
        name: the stage's name.
        preload: the host's preload, if this starts it (it must pickle).
        node_id: the Ray node the host runs on (this process's node: the link is a local socket).
        index: which of the node's hosts of this kind.
    """

    def __init__(self, name: str, preload: Preload | None, node_id: str, index: int) -> None:
        super().__init__(name)
        self._alive = True
        self._connection: multiprocessing.connection.Connection | None = None
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
        """False once the host was found gone (a pool then starts a new one)."""
        return self._alive

    def wait_started(self) -> None:
        """Block until the host has preloaded, and connect to it.

        Raises:
            StageProcessError: it failed to start (the cause), or took over ``START_TIMEOUT_S``.
        """
        with self._lock:
            self._connect()

    def placed(self) -> int:
        """The sessions on the host, the node's other calls' included."""
        return int(self.stats()["sessions"])

    def stats(self) -> dict[str, float | None]:
        """The host's :meth:`StageHostActor.stats`."""
        return self._ask(self._actor.stats.remote())

    def turn_seconds(self) -> float | None:
        """How long a session on the host waits from one of its frames to the next when every
        session there keeps it busy: its sessions times its recent seconds per frame (None
        before a frame)."""
        stats = self.stats()
        return None if stats["frame_s"] is None else stats["sessions"] * stats["frame_s"]

    def _connect(self) -> multiprocessing.connection.Connection:
        if self._connection is None:
            address, authkey = self._ask(self._actor.address.remote(), START_TIMEOUT_S)
            self._connection = multiprocessing.connection.Client(address, SOCKET_FAMILY, authkey=authkey)
        return self._connection

    def _call(self, message: Message, doing: str | None) -> object:
        connection = self._connect()
        try:
            send_message(connection, message)
            reply = receive_message(connection)
        except (EOFError, OSError) as error:
            self._alive = False
            raise StageProcessError(f"the {self.name} stage's host on this node is gone") from error
        return checked(reply, self.name, doing)

    def _ask(self, reference: ray.ObjectRef, timeout: float | None = None) -> object:
        """The value of a call on the host actor."""
        try:
            return ray.get(reference, timeout=timeout)
        except RayActorError as error:
            self._alive = False
            raise StageProcessError(f"the {self.name} stage's host on this node is gone: {error}") from error
        except GetTimeoutError as error:
            raise StageProcessError(f"the {self.name} stage's host did not start in {timeout:g} s") from error

    def close(self) -> None:
        """Close the workers opened through this link, then the link (the host stays)."""
        for key in list(self.sessions):
            try:
                self.close_worker(key)
            except StageProcessError:
                LOG.warning("session %s…'s %s worker is closed with its host", key[:4], self.name)
        self.sessions.clear()
        if self._connection is not None:
            self._connection.close()


def node_host_factory(node_id: str) -> HostFactory:
    """Hosts for a :class:`WorkerPool`: node ``node_id``'s shared ones."""
    return lambda kind, index, preload: NodeStageHost(kind, preload, node_id, index)


def frames_served(pool: WorkerPool) -> int:
    """The fewest frames any of ``pool``'s shared hosts has served (0 for a host just started)."""
    hosts = [host for hosts in pool.hosts.values() for host in hosts]
    return min(int(host.stats()["frames"]) for host in hosts if isinstance(host, NodeStageHost))


def expected_fps(hosts: Sequence[StageHost]) -> float | None:
    """The frames a second a session on ``hosts`` (one per stage kind) can expect while every
    session on them keeps them busy: its slowest host's turns (None unless every host is shared and
    has served a frame lately). The stages' own bound: the machine's other work (decoding,
    encoding) shows only as it slows the hosts' frames."""
    turns = [host.turn_seconds() if isinstance(host, NodeStageHost) else None for host in hosts]
    if not turns or any(turn is None or turn <= 0 for turn in turns):
        return None
    return 1.0 / max(turns)  # type: ignore[type-var]
