"""Hosts of one pipeline stage shared by many sessions: each session has its own worker there.

A host runs the workers of one stage kind (``reconstruct``, say) for every session placed on it,
keyed by the session's id, so per-session state (a tracker, a warm-started fit, a source) stays
with its session while the stage's process, its imports and its model are paid for once. Callers
take turns on a :class:`FairLock`; every call is a message of :data:`Message` handled by a
:class:`WorkerTable`, here (:class:`ThreadStageHost`) or in a child process
(:class:`jr2net.realtime.process_stage.StageProcess`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from jr2net.realtime.fair_lock import FairLock
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.pipeline import Stage
from jr2net.realtime.wire import Packed

StageWorker = Callable[[StagedFrame], StagedFrame]
Preload = Callable[[], Any]
"""Runs once per host, first; what it returns is handed to every worker factory there."""
WorkerFactory = Callable[[Any], StageWorker]
"""Builds a session's worker from what the host's preload returned (None without a preload)."""
Message = tuple
"""``("open", key, factory)``, ``("frame", key, StagedFrame)``, ``("control", key, command)`` or
``("close", key)``; a ``control`` answers ``"ignored"`` where the worker takes no commands (no
``control`` method) or did not take this one (its ``control`` returned False)."""


@dataclass(frozen=True)
class PackedFactory:
    """A worker factory made where its modules are imported (a front door), carried packed by a
    process that never loads them (a Ray session actor), and loaded in the host that calls it."""

    factory: Packed[WorkerFactory]

    def __call__(self, preloaded: Any) -> StageWorker:
        return self.factory.unpack()(preloaded)


def packed_factories(factories: Mapping[str, WorkerFactory]) -> dict[str, PackedFactory]:
    """Each stage kind's factory of ``factories``, packed."""
    return {kind: PackedFactory(Packed.of(factory)) for kind, factory in factories.items()}


COST_WINDOW = 300  # frames of per-frame cost kept per host
COST_MAX_AGE_S = 30.0  # a cost older than this says nothing about the load now


class WorkerTable:
    """The workers of one host by session key, and what each message does to them."""

    def __init__(self, preloaded: object) -> None:
        self.preloaded = preloaded
        self.workers: dict[str, StageWorker] = {}

    def handle(self, message: Message) -> object:
        """Carry out one message; its answer (the frame's result, or ``"ok"``)."""
        kind, key, *rest = message
        if kind == "open":
            if key in self.workers:
                raise ValueError(f"session {key} already has a worker here")
            self.workers[key] = rest[0](self.preloaded)
            return "ok"
        if kind == "frame":
            return self._worker(key)(rest[0])
        if kind == "control":
            control = getattr(self._worker(key), "control", None)
            return "ok" if control is not None and control(rest[0]) else "ignored"
        if kind == "close":
            _close(self.workers.pop(key, None))
            return "ok"
        raise ValueError(f"unknown message {kind!r}")

    def close(self) -> None:
        """Close every worker."""
        for key in list(self.workers):
            _close(self.workers.pop(key))

    def _worker(self, key: str) -> StageWorker:
        try:
            return self.workers[key]
        except KeyError:
            raise KeyError(f"no worker for session {key} here (closed, or never opened)") from None


def _close(worker: object) -> None:
    close = getattr(worker, "close", None)
    if close is not None:
        close()


class FrameCosts:
    """The seconds a host spent on its latest frames (its turn on the lock, not the wait for it).

    Written by the threads that call the host, read by the event loop: every read works on a
    snapshot (``list`` of a deque copies it without letting another thread in).
    """

    def __init__(self) -> None:
        self._frames: deque[tuple[float, float]] = deque(maxlen=COST_WINDOW)  # (seconds, finished at)

    def add(self, seconds: float) -> None:
        self._frames.append((seconds, time.monotonic()))

    @property
    def seconds(self) -> list[float]:
        """Seconds per frame of the kept frames of the last :data:`COST_MAX_AGE_S`, oldest first."""
        since = time.monotonic() - COST_MAX_AGE_S
        return [seconds for seconds, finished in list(self._frames) if finished >= since]

    def median(self) -> float | None:
        """Median seconds per frame of the recent frames, None without any."""
        seconds = self.seconds
        return float(np.median(seconds)) if seconds else None

    def busy(self, window_s: float = 5.0) -> float:
        """Fraction of the last ``window_s`` seconds spent on frames."""
        since = time.monotonic() - window_s
        return min(1.0, sum(s for s, finished in list(self._frames) if finished >= since) / window_s)


class StageHost:
    """One stage kind's host: sessions open their worker here, send frames, close it.

    Args:
        name: the stage's name (``reconstruct``, ``reenact``): its pipeline stage name too.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.sessions: set[str] = set()
        self.costs = FrameCosts()
        self._lock = FairLock()

    @property
    def alive(self) -> bool:
        """Whether the host can serve (a host process that died cannot)."""
        return True

    @property
    def pid(self) -> int | None:
        """The host's own process id; None for a host in the calling process."""
        return None

    def wait_started(self) -> None:
        """Block until the host can take its first message (a host in this process can at once)."""

    def placed(self) -> int:
        """The sessions with a worker on this host (a pool places a new one on the host with the
        fewest): its own count; a host shared with other pools counts theirs too."""
        return len(self.sessions)

    def open(self, key: str, factory: WorkerFactory) -> Stage:
        """Build session ``key``'s worker here (``factory(preloaded)``); the session's pipeline stage.

        The session counts as this host's from the start (a pool placing sessions concurrently sees
        it), and no longer if the build fails.
        """
        self.sessions.add(key)
        try:
            with self._lock:
                self._call(("open", key, factory), f"build the {self.name} stage")
        except BaseException:
            self.sessions.discard(key)
            raise
        return Stage(self.name, lambda frame: self.work(key, frame))

    def work(self, key: str, frame: StagedFrame) -> StagedFrame:
        """Session ``key``'s worker on ``frame``, in turn with the other sessions."""
        with self._lock:
            started = time.perf_counter()
            result = self._call(("frame", key, frame), None)
            self.costs.add(time.perf_counter() - started)
        return result

    def control(self, key: str, command: str) -> bool:
        """Hand session ``key``'s worker a command (its ``control(command)``), between two frames;
        whether the worker took it."""
        with self._lock:
            return self._call(("control", key, command), None) == "ok"

    def close_worker(self, key: str) -> None:
        """Close and forget session ``key``'s worker; nothing if it has none or the host is gone."""
        if key not in self.sessions:
            return
        self.sessions.discard(key)
        if self.alive:
            with self._lock:
                self._call(("close", key), None)

    def close(self) -> None:
        """Stop the host and every worker on it."""
        raise NotImplementedError

    def _call(self, message: Message, doing: str | None) -> object:
        """Carry out ``message`` (the lock is held); ``doing`` names a build for error messages."""
        raise NotImplementedError

    def __enter__(self) -> StageHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ThreadStageHost(StageHost):
    """A host in this process: the calling thread runs the worker (quick to start, shares the GIL).

    Once closed it builds nothing more: an open that was on its way when the server stopped (a
    call that hung up while its workers were built) would leave a worker, MediaPipe graph and all,
    that nobody closes."""

    def __init__(self, name: str, preload: Preload | None = None) -> None:
        super().__init__(name)
        self._table = WorkerTable(None if preload is None else preload())
        self._closed = False

    @property
    def alive(self) -> bool:
        return not self._closed

    def _call(self, message: Message, doing: str | None) -> object:
        if self._closed:
            raise RuntimeError(f"the {self.name} host is closed")
        return self._table.handle(message)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._table.close()
        self.sessions.clear()
