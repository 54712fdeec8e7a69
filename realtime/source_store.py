"""Sources uploaded by callers, each kept for the one call it was uploaded for.

An upload gets an unguessable id; the offer that names it takes it (once: no other caller can use
or see it), and it is freed when that call ends. Ids not taken expire, and at most a fixed number
wait at a time (the oldest goes first), so uploads cannot pile up in memory.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict

from jr2net.reenact import SourceFace

PENDING_TTL_S = 600.0
MAX_PENDING = 16


class UnknownSource(KeyError):
    """No waiting upload has this id (never uploaded, already taken by a call, or expired)."""


class SourceStore:
    """Uploaded sources waiting for their call."""

    def __init__(self, ttl_s: float = PENDING_TTL_S, max_pending: int = MAX_PENDING) -> None:
        self.ttl_s, self.max_pending = ttl_s, max_pending
        self._pending: OrderedDict[str, tuple[float, SourceFace]] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._pending)

    def put(self, source: SourceFace) -> str:
        """Keep ``source`` for one call; its id (URL-safe, 128 random bits)."""
        self._expire()
        while len(self._pending) >= self.max_pending:
            self._pending.popitem(last=False)
        key = secrets.token_urlsafe(16)
        self._pending[key] = (time.monotonic(), source)
        return key

    def take(self, key: str) -> SourceFace:
        """The source uploaded as ``key``, no longer waiting (a second take fails).

        Raises:
            UnknownSource: no waiting upload has this id.
        """
        self._expire()
        try:
            return self._pending.pop(key)[1]
        except KeyError:
            raise UnknownSource(
                f"no uploaded source {key!r} is waiting: it was never uploaded, is already in a "
                f"call, or expired ({self.ttl_s:g} s)"
            ) from None

    def restore(self, key: str, source: SourceFace) -> None:
        """Put back a source taken by a call that could not start, under its id, for another try."""
        self._pending[key] = (time.monotonic(), source)

    def _expire(self) -> None:
        oldest = time.monotonic() - self.ttl_s
        while self._pending and next(iter(self._pending.values()))[0] < oldest:
            self._pending.popitem(last=False)
