"""Sources uploaded by callers, each kept for the one call it was uploaded for.

An upload gets an unguessable id; the offer that names it takes it (once: no other caller can use
or see it), and it is freed when that call ends. Ids not taken expire, each client (by address)
has a few waiting at most (its own oldest goes first, never another client's), and the server a
fixed number in all, so uploads cannot pile up in memory.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from jr2net.reenact import SourceFace

PENDING_TTL_S = 600.0
MAX_PENDING = 64
MAX_PENDING_PER_CLIENT = 4


class UnknownSource(KeyError):
    """No waiting upload has this id (never uploaded, already taken by a call, or expired)."""


@dataclass(frozen=True)
class _Pending:
    uploaded: float
    owner: str
    source: SourceFace


class SourceStore:
    """Uploaded sources waiting for their call."""

    def __init__(
        self,
        ttl_s: float = PENDING_TTL_S,
        max_pending: int = MAX_PENDING,
        max_per_client: int = MAX_PENDING_PER_CLIENT,
    ) -> None:
        self.ttl_s, self.max_pending, self.max_per_client = ttl_s, max_pending, max_per_client
        self._pending: OrderedDict[str, _Pending] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._pending)

    def put(self, source: SourceFace, owner: str) -> str:
        """Keep ``source``, uploaded by client ``owner`` (its address), for one call; its id
        (URL-safe, 128 random bits)."""
        self._expire()
        own = [key for key, pending in self._pending.items() if pending.owner == owner]
        for key in own[: max(0, len(own) - self.max_per_client + 1)]:
            del self._pending[key]
        while len(self._pending) >= self.max_pending:
            self._pending.popitem(last=False)
        key = secrets.token_urlsafe(16)
        self._pending[key] = _Pending(time.monotonic(), owner, source)
        return key

    def take(self, key: str) -> SourceFace:
        """The source uploaded as ``key``, no longer waiting (a second take fails).

        Raises:
            UnknownSource: no waiting upload has this id.
        """
        self._expire()
        try:
            return self._pending.pop(key).source
        except KeyError:
            raise UnknownSource(
                f"no uploaded source {key!r} is waiting: it was never uploaded, is already in a "
                f"call, or expired ({self.ttl_s:g} s)"
            ) from None

    def restore(self, key: str, source: SourceFace, owner: str) -> None:
        """Put back a source taken by a call that could not start, under its id, for another try."""
        self._pending[key] = _Pending(time.monotonic(), owner, source)

    def _expire(self) -> None:
        oldest = time.monotonic() - self.ttl_s
        while self._pending and next(iter(self._pending.values())).uploaded < oldest:
            self._pending.popitem(last=False)
