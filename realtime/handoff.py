"""Latest-frame-wins hand-off between pipeline stages: a slow consumer drops frames, never queues."""

from __future__ import annotations

import asyncio
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; a new one replaces an unread one (counted in ``dropped``)."""

    def __init__(self) -> None:
        self._item: T | None = None
        self._ready = asyncio.Event()
        self._taken = asyncio.Event()
        self._taken.set()
        self._closed = False
        self._abandoned = False
        self.dropped = 0
        self.taken_at = time.monotonic()  # when the consumer last took an item

    def put(self, item: T) -> None:
        """Offer an item; an item nobody took yet is dropped."""
        if self._closed:
            raise RuntimeError("put on a closed slot")
        if self._item is not None:
            self.dropped += 1
        self._item = item
        if not self._abandoned:
            self._taken.clear()
        self._ready.set()

    async def get(self) -> T | None:
        """The newest item, waiting for one; ``None`` once the slot is closed and empty."""
        while self._item is None:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        item, self._item = self._item, None
        self.taken_at = time.monotonic()
        self._taken.set()
        return item

    async def wait_taken(self) -> None:
        """Wait until the item offered last was taken (at once when the slot is empty, or when its
        consumer has gone)."""
        await self._taken.wait()

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def abandon(self) -> None:
        """The consumer is gone: no item will be taken, and nobody waits for that any more."""
        self._abandoned = True
        self._taken.set()

    def close(self) -> None:
        """No more items will come; a waiting ``get`` returns what is left, then ``None``."""
        self._closed = True
        self._ready.set()
