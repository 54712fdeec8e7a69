"""Latest-frame-wins hand-off between pipeline stages: a slow consumer drops frames, never queues."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; a new one replaces an unread one (counted in ``dropped``)."""

    def __init__(self) -> None:
        self._item: T | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> None:
        """Offer an item; an item nobody took yet is dropped."""
        if self._closed:
            raise RuntimeError("put on a closed slot")
        if self._item is not None:
            self.dropped += 1
        self._item = item
        self._ready.set()

    async def get(self) -> T | None:
        """The newest item, waiting for one; ``None`` once the slot is closed and empty."""
        while self._item is None:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        item, self._item = self._item, None
        return item

    def close(self) -> None:
        """No more items will come; a waiting ``get`` returns what is left, then ``None``."""
        self._closed = True
        self._ready.set()
