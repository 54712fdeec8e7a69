"""aiortc adapters: a received video track as a pipeline source, and the reenacted outgoing track.

The outgoing frames keep the input frame's ``pts`` and ``time_base`` (DESIGN.md, glass-to-glass
latency), so a client can match each reenacted frame to the frame it sent.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from fractions import Fraction

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from jr2net.media import DEFAULT_FPS
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.pipeline import STATS_WINDOW
from jr2net.realtime.sources import EndOfStream

VIDEO_CLOCK = Fraction(1, 90000)  # seconds per pts unit: RTP's 90 kHz video clock
FRAME_TICKS = int(1 / (VIDEO_CLOCK * DEFAULT_FPS))  # 3000: a frame's pts step at the default rate


class TrackSource:
    """Frames of a remote aiortc video track, as a pipeline source."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self._index = 0

    async def recv(self) -> StagedFrame:
        try:
            frame = await self.track.recv()
        except MediaStreamError as error:
            raise EndOfStream from error
        staged = StagedFrame(
            image=frame.to_ndarray(format="rgb24"),
            index=self._index,
            pts=frame.pts,
            time_base=frame.time_base,
            captured=time.monotonic(),
        )
        self._index += 1
        return staged

    def stop(self) -> None:
        self.track.stop()


class ReenactedTrack(MediaStreamTrack):
    """The outgoing video: the newest pipeline output, a frame at a time (also a pipeline sink).

    ``timeline`` keeps, for the latest frames handed to the encoder, ``(pts, captured, sent)``: its
    pts, when the input frame was received and when the encoder took the output
    (``time.monotonic()``, a clock other processes on the same machine share); ``first_pts`` is
    the first sent frame's pts (a receiver counts pts from it).
    """

    kind = "video"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._latest: StagedFrame | None = None
        self._fresh = asyncio.Event()
        self.frames_sent = 0
        self.timeline: deque[tuple[int, float, float]] = deque(maxlen=STATS_WINDOW)
        self.first_pts: int | None = None

    def send(self, frame: StagedFrame) -> None:
        """Offer a frame (called from the pipeline's worker threads)."""
        self._loop.call_soon_threadsafe(self._offer, frame)

    def _offer(self, frame: StagedFrame) -> None:
        self._latest = frame
        self._fresh.set()

    def close(self) -> None:
        """The pipeline has ended: end the track."""
        self._loop.call_soon_threadsafe(self.stop)

    async def recv(self) -> av.VideoFrame:
        while self._latest is None:
            if self.readyState != "live":
                raise MediaStreamError
            self._fresh.clear()
            try:
                await asyncio.wait_for(self._fresh.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                continue
        staged, self._latest = self._latest, None
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(staged.image), format="rgb24")
        frame.pts = staged.pts if staged.pts is not None else staged.index * FRAME_TICKS
        frame.time_base = staged.time_base or VIDEO_CLOCK
        self.frames_sent += 1
        self.timeline.append((frame.pts, staged.captured, time.monotonic()))
        if self.first_pts is None:
            self.first_pts = frame.pts
        return frame
