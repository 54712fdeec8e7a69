"""A stage host in its own process, with its own GIL.

The fitter and the reenactor spend much of a frame in Python (hundreds of small numpy and torch
calls). In one process their threads and the event loop (RTP, SRTP, jitter buffer) take turns on
one GIL, and each stage runs several times slower than alone. A :class:`StageProcess` hosts one
stage kind's workers (one per session) in a spawned child; the caller's thread only sends the
message down a pipe and waits, without the GIL.

The child runs a ``preload`` hook first (what every worker of its kind needs: the reenactment
stages' imports and face model take about 2 s), so a server starts its hosts warm before any
session, whatever each session's source will be. The host knows nothing of what it runs: the hook
and the worker factories are any picklable callables.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.connection
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from jr2net.realtime import wire
from jr2net.realtime.stage_host import Message, Preload, StageHost, WorkerTable
from jr2net.realtime.threads import configure_live_threads

START_TIMEOUT_S = 120.0
CLOSE_TIMEOUT_S = 10.0


class StageProcessError(RuntimeError):
    """The stage's child process failed (its traceback is in the message) or is gone."""


@dataclass(frozen=True)
class StageFailure:
    """A host's answer to a message it could not carry out: the traceback where it failed."""

    traceback: str


def send_message(connection: multiprocessing.connection.Connection, message: object) -> None:
    """Pickled by :mod:`~jr2net.realtime.wire`: ``Connection.send`` would pass torch tensors as
    shared-memory file descriptors, a socket round trip per tensor that cost a tenth of the
    reenact stage."""
    connection.send_bytes(wire.dumps(message))


def receive_message(connection: multiprocessing.connection.Connection) -> object:
    """The next message of :func:`send_message` on ``connection``."""
    return wire.loads(connection.recv_bytes())


def _loaded(data: bytes) -> object:
    """A received message, or the :class:`StageFailure` of loading it."""
    try:
        return wire.loads(data)
    except Exception:
        return StageFailure(traceback.format_exc())


def serve_messages(
    connection: multiprocessing.connection.Connection, carry_out: Callable[[Message], bytes]
) -> None:
    """Answer ``connection``'s messages in order until ``None``: each with what ``carry_out`` makes
    of it (pickled), or, for one that cannot be loaded (a worker factory the host cannot import,
    say), with the :class:`StageFailure` of loading it instead of ending.

    Raises:
        EOFError, OSError: the connection broke.
    """
    while (message := _loaded(connection.recv_bytes())) is not None:
        if isinstance(message, StageFailure):
            send_message(connection, message)
        else:
            connection.send_bytes(carry_out(message))  # type: ignore[arg-type]


def answer(table: WorkerTable, message: Message) -> bytes:
    """The table's answer to one message, pickled; a failure (in the worker, or pickling what it
    returned) as a :class:`StageFailure`."""
    try:
        return wire.dumps(table.handle(message))
    except Exception:
        return wire.dumps(StageFailure(traceback.format_exc()))


def checked(reply: object, name: str, doing: str | None) -> object:
    """A host's ``reply`` to a message of stage ``name``.

    Raises:
        StageProcessError: the reply is a :class:`StageFailure` (``doing`` names a build that
            failed; None: a frame or command).
    """
    if isinstance(reply, StageFailure):
        failed = f"could not {doing}" if doing else "stage failed"
        raise StageProcessError(f"the {name} {failed} in its process:\n{reply.traceback}")
    return reply


def _child(connection: multiprocessing.connection.Connection, preload: Preload | None) -> None:
    """The child's loop: preload, then messages until ``None``.

    Ctrl-C reaches the whole process group; the parent decides when the child stops.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_live_threads()
    try:
        preloaded = None if preload is None else preload()
    except Exception:
        send_message(connection, StageFailure(traceback.format_exc()))
        return
    table = WorkerTable(preloaded)
    try:
        send_message(connection, "started")
        serve_messages(connection, functools.partial(answer, table))
    except (EOFError, OSError):
        pass  # the pipe broke: the parent is gone
    finally:
        table.close()


class StageProcess(StageHost):
    """One child process hosting one stage kind's workers.

    Args:
        name: the stage's name.
        preload: run in the child as it starts (it must pickle: a module-level function, say);
            what it returns is handed to every worker factory.
    """

    def __init__(self, name: str, preload: Preload | None = None) -> None:
        super().__init__(name)
        context = multiprocessing.get_context("spawn")
        self._connection, child_end = context.Pipe()
        self._process = context.Process(
            target=_child, args=(child_end, preload), name=f"jr2net-{name}", daemon=True
        )
        self._process.start()
        child_end.close()
        self._started = False

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def wait_started(self) -> None:
        """Block until the child has preloaded.

        Raises:
            StageProcessError: the preload failed (with its traceback), or took too long.
        """
        with self._lock:
            self._wait_started()

    def _wait_started(self) -> None:
        if self._started:
            return
        if not self._connection.poll(START_TIMEOUT_S):
            raise StageProcessError(f"the {self.name} stage's process did not start in {START_TIMEOUT_S:g} s")
        reply = self._reply("before it started")
        if isinstance(reply, StageFailure):
            raise StageProcessError(f"the {self.name} stage's process could not start:\n{reply.traceback}")
        if reply != "started":
            raise StageProcessError(f"the {self.name} stage's process answered {reply!r} as it started")
        self._started = True

    def _call(self, message: Message, doing: str | None) -> object:
        self._wait_started()
        try:
            send_message(self._connection, message)
        except OSError as error:
            raise StageProcessError(self._exited("")) from error
        return checked(self._reply(""), self.name, doing)

    def _reply(self, when: str) -> object:
        try:
            return receive_message(self._connection)
        except (EOFError, OSError) as error:
            raise StageProcessError(self._exited(when)) from error

    def close(self) -> None:
        """Stop the child (it closes its workers) and wait for it; idempotent.

        A frame still in flight is waited for (``CLOSE_TIMEOUT_S`` at most) so that the stop
        message cannot interleave with it on the pipe; a child that does not stop is terminated.
        """
        if self._process.is_alive():
            if self._lock.acquire(timeout=CLOSE_TIMEOUT_S):
                try:
                    with contextlib.suppress(OSError):  # a broken pipe: terminated below
                        send_message(self._connection, None)
                finally:
                    self._lock.release()
            self._process.join(CLOSE_TIMEOUT_S)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(CLOSE_TIMEOUT_S)
        self._connection.close()
        self.sessions.clear()

    def _exited(self, when: str) -> str:
        self._process.join(1.0)  # let the exit code settle
        return f"the {self.name} stage's process exited (code {self._process.exitcode}) {when}".rstrip()
