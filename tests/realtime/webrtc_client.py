"""aiortc clients of ``jr2net serve`` (the single server or the Ray front door) on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from fractions import Fraction
from typing import Protocol

import aiohttp
import av
import numpy as np
from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

PULLS: set[asyncio.Future] = set()


class Served(Protocol):
    """A server with an aiohttp app: the single server or the Ray front door."""

    def app(self) -> web.Application: ...


class ClipTrack(MediaStreamTrack):
    """Sends a shared clip's frames at 25 fps, as a browser's camera would; ``handed[i]`` is when
    frame ``i`` went to the encoder (``time.monotonic()``, the clock the server stamps with)."""

    kind = "video"

    def __init__(self, frames: list[np.ndarray]) -> None:
        super().__init__()
        self.frames, self.index, self.started = frames, 0, time.monotonic()
        self.handed: list[float] = []

    async def recv(self) -> av.VideoFrame:
        await asyncio.sleep(max(0.0, self.started + self.index / 25 - time.monotonic()))
        frame = av.VideoFrame.from_ndarray(self.frames[self.index % len(self.frames)], format="rgb24")
        frame.pts, frame.time_base = self.index * 3600, Fraction(1, 90000)
        self.index += 1
        self.handed.append(time.monotonic())
        return frame


@asynccontextmanager
async def serve_app(server: Served) -> AsyncIterator[str]:
    """Serve ``server``'s app on a free loopback port: ``async with serve_app(server) as base``
    gives its base URL and shuts the server down on leaving (a generator left by a ``return``
    inside ``async for`` would be finalised only as ``asyncio.run`` ends, after it has cancelled
    every task, so the server's shutdown would never run)."""
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def connect(
    base: str,
    track: MediaStreamTrack,
    received: list[np.ndarray],
    refiner: str | None = None,
    source: str | None = None,
    arrivals: list[float] | None = None,
) -> tuple[RTCPeerConnection, str]:
    """A caller sending ``track``, each frame it gets back appended to ``received`` (and when it
    came, ``time.monotonic()``, to ``arrivals``); its session id."""
    client = RTCPeerConnection()
    client.addTrack(track)

    @client.on("track")
    def on_track(incoming: MediaStreamTrack) -> None:
        async def pull() -> None:
            while True:
                try:
                    frame = await incoming.recv()
                except MediaStreamError:
                    return
                received.append(frame.to_ndarray(format="rgb24"))
                if arrivals is not None:
                    arrivals.append(time.monotonic())

        PULLS.add(asyncio.ensure_future(pull()))

    await client.setLocalDescription(await client.createOffer())
    async with aiohttp.ClientSession() as http:
        offer = {"sdp": client.localDescription.sdp, "type": "offer"}
        offer |= {} if refiner is None else {"refiner": refiner}
        offer |= {} if source is None else {"source": source}
        response = await http.post(f"{base}/offer", json=offer)
        assert response.status == 200, await response.text()
        answer = await response.json()
    await client.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    return client, answer["session"]


async def offer_status(http: aiohttp.ClientSession, base: str, extra: dict) -> tuple[int, str]:
    """The status and text of an otherwise valid video offer with ``extra`` fields."""
    peer = RTCPeerConnection()
    peer.addTransceiver("video")
    await peer.setLocalDescription(await peer.createOffer())
    offer = {"sdp": peer.localDescription.sdp, "type": "offer"} | extra
    response = await http.post(f"{base}/offer", json=offer)
    await peer.close()
    return response.status, await response.text()


async def until(condition: Callable[[], Awaitable[bool]], within_s: float, what: str) -> float:
    """Wait for ``condition``, asking every 0.1 s; the seconds it took.

    Raises:
        AssertionError: ``what`` did not happen within ``within_s``.
    """
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > within_s:
            raise AssertionError(f"{what} did not happen within {within_s:g} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def server_stats(base: str, session: str = "") -> dict:
    """The server's ``GET /stats`` (as the caller of ``session`` sees it)."""
    async with aiohttp.ClientSession() as http:
        return await (await http.get(f"{base}/stats?session={session}")).json()


async def each_got(received: list[list[np.ndarray]], count: int) -> bool:
    """Whether every caller's ``received`` list holds ``count`` frames or more."""
    return all(len(frames) >= count for frames in received)
