"""One pool of stage hosts per server, shared by every session, started warm.

For each stage kind (``reconstruct`` then ``reenact``) the pool runs a few hosts, sized to the
machine's cores; a new session gets a worker on the least-loaded host of each kind and keeps it
(its tracker and fit state live there) until it ends. Sessions on one host take turns frame by
frame (:class:`jr2net.realtime.fair_lock.FairLock`), each with at most one frame in flight per
stage, so none starves and a session's own frames never reorder.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from jr2net.realtime.pipeline import Stage
from jr2net.realtime.process_stage import StageProcess
from jr2net.realtime.stage_host import Preload, StageHost, ThreadStageHost, WorkerFactory
from jr2net.realtime.stage_modes import STAGE_MODES
from jr2net.realtime.threads import machine_cores

LOG = logging.getLogger("jr2net.realtime")
HostFactory = Callable[[str, int, Preload | None], StageHost]
"""Starts (or joins) host number ``index`` of a stage kind, with its preload."""


def hosts_per_stage(cores: int) -> int:
    """Hosts of each stage kind for a machine with ``cores`` cores: the two kinds run side by side
    and the event loop (codecs, RTP) needs a share too, so one each on up to 4 cores, then one
    more per two cores beyond the first."""
    return max(1, (cores - 1) // 2)


@dataclass
class PooledSession:
    """A session's workers in the pool: its pipeline stages, in order."""

    key: str
    hosts: list[StageHost]
    stages: list[Stage]

    def control(self, command: str) -> None:
        """Send ``command`` to every stage's worker (between two frames); the ones that take it
        carry it out.

        Raises:
            ValueError: no stage of the session took it.
        """
        taken = [host.control(self.key, command) for host in self.hosts]
        if not any(taken):
            raise ValueError(f"no stage of session {self.key} took the command {command!r}")

    def close(self) -> None:
        """Free the session's workers on every host, whatever happens on one; idempotent."""
        hosts, self.hosts = self.hosts, []
        for host in hosts:
            try:
                host.close_worker(self.key)
            except Exception:
                LOG.exception("could not close session %s's %s worker", self.key, host.name)


class WorkerPool:
    """The hosts of every stage kind; close it to stop them.

    Args:
        kinds: the stage kinds, in pipeline order.
        mode: ``process`` (a child process per host) or ``thread`` (hosts in this process).
        hosts: hosts per kind (default: :func:`hosts_per_stage` of the machine's cores).
        preload: each host's preload (it must pickle in process mode).
        host_factory: starts the hosts instead of ``mode`` (hosts shared with other pools, say:
            :mod:`jr2net.realtime.ray_stage_hosts`).
    """

    def __init__(
        self,
        kinds: Sequence[str],
        mode: str = "process",
        hosts: int | None = None,
        preload: Preload | None = None,
        host_factory: HostFactory | None = None,
    ) -> None:
        if mode not in STAGE_MODES:
            raise ValueError(f"unknown stage mode {mode!r}; choose from {STAGE_MODES}")
        self._host_factory = host_factory or _local_host_factory(mode)
        count = hosts_per_stage(machine_cores()) if hosts is None else hosts
        if count < 1:
            raise ValueError(f"a pool needs at least one host per stage, got {count}")
        self.kinds, self.mode, self.preload = list(kinds), mode, preload
        self.hosts: dict[str, list[StageHost]] = {kind: [] for kind in self.kinds}
        self._placing = threading.Lock()
        self._closed = False
        try:
            for index in range(count):  # every child starts before any is waited for
                for kind in self.kinds:
                    self.hosts[kind].append(self._host_factory(kind, index, preload))
            for host in self._all():
                host.wait_started()
        except BaseException:
            self.close()
            raise

    def open(self, key: str, factories: Mapping[str, WorkerFactory]) -> PooledSession:
        """Session ``key``'s workers, one per kind on that kind's least-loaded host (a host whose
        process died is replaced by a new one first).

        Raises:
            RuntimeError: the pool is closed (or closes while the workers are built: those built
                are closed with it).
        """
        if set(factories) != set(self.kinds):
            raise ValueError(f"give a worker factory for each of {self.kinds}, got {sorted(factories)}")
        self._replace_dead()
        session = PooledSession(key, [], [])
        try:
            for kind in self.kinds:
                with self._placing:  # chosen and counted at once: concurrent opens spread out
                    if self._closed:
                        raise RuntimeError("the worker pool closed while this session's workers were built")
                    host = min(self.hosts[kind], key=lambda h: h.placed())
                    host.sessions.add(key)
                session.hosts.append(host)
                session.stages.append(host.open(key, factories[kind]))
        except BaseException:
            session.close()
            raise
        return session

    def loads(self, extra: int = 0) -> dict[str, list[int]]:
        """Per kind, the sessions on each host, with ``extra`` more placed as :meth:`open` would."""
        loads = {}
        for kind, hosts in self.hosts.items():
            counts = [len(host.sessions) for host in hosts]
            for _ in range(extra):
                counts[counts.index(min(counts))] += 1
            loads[kind] = counts
        return loads

    def _replace_dead(self) -> None:
        """Start a new host in place of each one whose process died (its sessions ended with it)."""
        with self._placing:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            for kind, hosts in self.hosts.items():
                for index, host in enumerate(hosts):
                    if not host.alive:
                        LOG.warning("the %s host died; starting a new one", kind)
                        host.close()
                        hosts[index] = self._host_factory(kind, index, self.preload)
                        hosts[index].wait_started()

    def load(self) -> dict[str, list[dict[str, object]]]:
        """Per kind, per host: its sessions, median ms per frame and busy fraction (last 5 s)."""
        return {
            kind: [
                {
                    "alive": host.alive,
                    "sessions": len(host.sessions),
                    "frame_ms": None if (median := host.costs.median()) is None else median * 1e3,
                    "busy": host.costs.busy(),
                }
                for host in hosts
            ]
            for kind, hosts in self.hosts.items()
        }

    def frame_seconds(self) -> dict[str, float | None]:
        """Per kind, the median seconds per frame over its hosts' recent frames (None before any)."""
        costs = {}
        for kind, hosts in self.hosts.items():
            seconds = [s for host in hosts for s in host.costs.seconds]
            costs[kind] = sorted(seconds)[len(seconds) // 2] if seconds else None
        return costs

    def process_ids(self) -> list[int]:
        """The process ids of the live hosts that run in processes of their own."""
        return [host.pid for host in self._all() if host.pid is not None and host.alive]

    def close(self) -> None:
        """Stop every host (and the workers on them); the pool opens no session after."""
        with self._placing:
            self._closed = True
        for host in self._all():
            host.close()

    def _all(self) -> list[StageHost]:
        return [host for hosts in self.hosts.values() for host in hosts]

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _local_host_factory(mode: str) -> HostFactory:
    """Hosts of this pool's own, in child processes or in this process (``mode``)."""
    host = StageProcess if mode == "process" else ThreadStageHost
    return lambda kind, index, preload: host(kind, preload)
