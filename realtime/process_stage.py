"""Pipeline stages that run in their own process, each with its own GIL.

The fitter and the reenactor spend much of a frame in Python (hundreds of small numpy and torch
calls). In one process their threads and the event loop (RTP, SRTP, jitter buffer) take turns on
one GIL, and each stage runs several times slower than alone. A :class:`StageProcess` hosts one
stage's worker in a spawned child; the pipeline's worker thread only sends the frame down a pipe
and waits, without the GIL.

A child is started with a ``preload`` hook only (what every worker of its kind needs, loaded before
any is asked for: the reenactment stages' imports and face model take about 2 s) and given its
worker later by :meth:`StageProcess.build`, so a server can keep children warm for the next
session whatever its source will be. The host knows nothing of what it runs: the hook and the
worker factory are any picklable callables.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import pickle
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.pipeline import Stage
from jr2net.realtime.threads import configure_live_threads

StageWorker = Callable[[StagedFrame], StagedFrame]
Preload = Callable[[], Any]
"""Runs first in a child; what it returns is handed to the worker factory."""
WorkerFactory = Callable[[Any], StageWorker]
"""Builds the worker in the child from what the preload returned (None without a preload)."""
START_TIMEOUT_S = 120.0
CLOSE_TIMEOUT_S = 10.0


class StageProcessError(RuntimeError):
    """The stage's child process failed (its traceback is in the message) or is gone."""


@dataclass(frozen=True)
class _Failure:
    traceback: str


def _send(connection: multiprocessing.connection.Connection, message: object) -> None:
    """Plain pickle: ``Connection.send`` would pass torch tensors as shared-memory file
    descriptors, a socket round trip per tensor that cost a tenth of the reenact stage."""
    connection.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _receive(connection: multiprocessing.connection.Connection) -> object:
    return pickle.loads(connection.recv_bytes())


def _build(connection: multiprocessing.connection.Connection, preload: Preload | None) -> StageWorker | None:
    """Preload, then build the worker from the factory the parent sends; None when told to stop.

    A failure to preload or to build goes to the parent with its traceback.
    """
    try:
        preloaded = None if preload is None else preload()
    except Exception:
        _send(connection, _Failure(traceback.format_exc()))
        return None
    _send(connection, "started")
    factory = _receive(connection)
    if factory is None:
        return None
    try:
        worker = factory(preloaded)
    except Exception:
        _send(connection, _Failure(traceback.format_exc()))
        return None
    _send(connection, "ready")
    return worker


def _answer(worker: StageWorker, frame: StagedFrame) -> bytes:
    """The worker's result for one frame, pickled; a failure (in the worker, or pickling what it
    returned) as a :class:`_Failure`."""
    try:
        return pickle.dumps(worker(frame), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return pickle.dumps(_Failure(traceback.format_exc()), protocol=pickle.HIGHEST_PROTOCOL)


def _child(connection: multiprocessing.connection.Connection, preload: Preload | None) -> None:
    """The child's loop: preload, then one worker factory, then frames until ``None``.

    Ctrl-C reaches the whole process group; the parent decides when the child stops.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_live_threads()
    worker = None
    try:
        worker = _build(connection, preload)
        while worker is not None and (frame := _receive(connection)) is not None:
            connection.send_bytes(_answer(worker, frame))
    except (EOFError, OSError):
        pass  # the pipe broke: the parent is gone (a spare of a server that ended, say)
    finally:
        close = getattr(worker, "close", None)
        if close is not None:
            close()


class StageProcess:
    """One child process hosting one stage's worker (a frame in, a frame out, in order).

    Args:
        name: the stage's name in messages (until :meth:`build` names it).
        preload: run in the child as it starts (it must pickle: a module-level function, say);
            what it returns is handed to the worker factory.
    """

    def __init__(self, name: str = "stage", preload: Preload | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self._connection, child_end = context.Pipe()
        self._process = context.Process(
            target=_child, args=(child_end, preload), name=f"jr2net-{name}", daemon=True
        )
        self._process.start()
        child_end.close()
        self._lock = threading.Lock()
        self._built = False

    def build(self, name: str, factory: WorkerFactory) -> Stage:
        """Give the child its worker (``factory(preloaded)`` runs there: it must pickle); blocks until ready.

        Raises:
            StageProcessError: the child failed to start or to build the worker.
        """
        if self._built:
            raise RuntimeError(f"stage process {self.name!r} already has a worker")
        self.name = name
        self._expect("started", waited_for="start")
        try:
            _send(self._connection, factory)
        except OSError as error:
            raise StageProcessError(self._exited(f"before it could build the {name} stage")) from error
        self._built = True
        self._expect("ready", waited_for=f"build the {name} stage")
        return Stage(name, self.work)

    def work(self, frame: StagedFrame) -> StagedFrame:
        """Run the worker on ``frame`` in the child.

        Raises:
            StageProcessError: the worker raised (with its traceback) or the child died.
        """
        with self._lock:
            try:
                _send(self._connection, frame)
                result = _receive(self._connection)
            except (EOFError, OSError) as error:
                raise StageProcessError(self._exited("")) from error
        if isinstance(result, _Failure):
            raise StageProcessError(f"the {self.name} stage failed in its process:\n{result.traceback}")
        return result

    def close(self) -> None:
        """Stop the child (it closes its worker) and wait for it; idempotent.

        A frame still in :meth:`work` is waited for (``CLOSE_TIMEOUT_S`` at most) so that the stop
        message cannot interleave with it on the pipe; a child that does not stop is terminated.
        """
        if self._process.is_alive():
            if self._lock.acquire(timeout=CLOSE_TIMEOUT_S):
                try:
                    with contextlib.suppress(OSError):  # a broken pipe: terminated below
                        _send(self._connection, None)
                finally:
                    self._lock.release()
            self._process.join(CLOSE_TIMEOUT_S)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(CLOSE_TIMEOUT_S)
        self._connection.close()

    def _expect(self, message: str, waited_for: str) -> None:
        if not self._connection.poll(START_TIMEOUT_S):
            raise StageProcessError(
                f"the {self.name} stage's process did not {waited_for} in {START_TIMEOUT_S:g} s"
            )
        try:
            reply = _receive(self._connection)
        except (EOFError, OSError) as error:
            raise StageProcessError(self._exited(f"before it could {waited_for}")) from error
        if isinstance(reply, _Failure):
            raise StageProcessError(
                f"the {self.name} stage's process could not {waited_for}:\n{reply.traceback}"
            )
        if reply != message:
            raise StageProcessError(
                f"the {self.name} stage's process answered {reply!r}, expected {message!r}"
            )

    def _exited(self, when: str) -> str:
        self._process.join(1.0)  # let the exit code settle
        return f"the {self.name} stage's process exited (code {self._process.exitcode}) {when}".rstrip()

    def __enter__(self) -> StageProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StageProcessPool:
    """Stage processes started ahead, so a new session need not wait for imports.

    Starting a child costs about 2 s of CPU, which a running session would lose frames to, so
    :meth:`take` never starts spares: :meth:`refill` does, when the caller is idle.

    Args:
        spare: how many children to keep started (a reenactment session takes two).
        preload: every child's :class:`StageProcess` ``preload``.
    """

    def __init__(self, spare: int, preload: Preload | None = None) -> None:
        self.spare = spare
        self.preload = preload
        self._ready: list[StageProcess] = []
        self.refill()

    @property
    def ready(self) -> int:
        """How many started children are waiting."""
        return len(self._ready)

    def take(self, count: int) -> list[StageProcess]:
        """``count`` started children: the spares first, new ones for the rest."""
        taken, self._ready = self._ready[:count], self._ready[count:]
        return taken + [StageProcess(preload=self.preload) for _ in range(count - len(taken))]

    def refill(self) -> None:
        """Start children until ``spare`` are waiting."""
        self._ready += [StageProcess(preload=self.preload) for _ in range(self.spare - len(self._ready))]

    def close(self) -> None:
        """Stop the spares."""
        for child in self._ready:
            child.close()
        self._ready = []
