"""A first-come, first-served lock: callers waiting on a shared stage take turns in arrival order."""

from __future__ import annotations

import threading
from collections import deque


class FairLock:
    """A mutex handed to its waiters in the order they asked (``threading.Lock`` promises no order).

    A session's pipeline asks a shared stage for one frame at a time, so with this lock every
    session waiting on a stage is served once before any is served twice: no session starves.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock (``timeout`` seconds at most; None: for ever); whether it was taken."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over between the timeout and here
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        """Hand the lock to the longest waiter, or free it."""
        with self._mutex:
            if not self._held:
                raise RuntimeError("release of an unheld FairLock")
            if self._waiters:
                self._waiters.popleft().set()  # stays held: the waiter owns it now
            else:
                self._held = False

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
