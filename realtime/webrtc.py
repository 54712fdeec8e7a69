"""aiortc adapters: a received video track as a pipeline source, and the reenacted outgoing track.

The outgoing frames keep the input frame's ``pts`` and ``time_base`` (DESIGN.md, glass-to-glass
latency), so a client can match each reenacted frame to the frame it sent.
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from fractions import Fraction
from functools import partial

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from jr2net.media import DEFAULT_FPS
from jr2net.realtime.frames import PendingFrame, StagedFrame
from jr2net.realtime.handoff import LatestSlot
from jr2net.realtime.pipeline import STATS_WINDOW
from jr2net.realtime.sources import EndOfStream

VIDEO_CLOCK = Fraction(1, 90000)  # seconds per pts unit: RTP's 90 kHz video clock
FRAME_TICKS = int(1 / (VIDEO_CLOCK * DEFAULT_FPS))  # 3000: a frame's pts step at the default rate


def working_size(width: int, height: int, longest: int | None) -> tuple[int, int]:
    """``(width, height)`` scaled down so the longer side is at most ``longest`` (None: as is),
    both even (the encoder's chroma planes are half size)."""
    if longest is None or max(width, height) <= longest:
        return width, height
    scale = longest / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class TrackSource:
    """Frames of a remote aiortc video track, as a pipeline source.

    Each decoded frame is handed over as a :class:`PendingFrame`: its conversion to RGB runs only
    if a stage takes it.

    Args:
        track: the received track.
        longest: scale each frame (in its conversion to RGB, once) so its longer side is at
            most this many pixels: the tracker's working size, so no larger frame crosses a
            process boundary. None keeps the size.
    """

    def __init__(self, track: MediaStreamTrack, longest: int | None = None) -> None:
        self.track, self.longest = track, longest
        self._index = 0

    async def recv(self) -> PendingFrame:
        try:
            frame = await self.track.recv()
        except MediaStreamError as error:
            raise EndOfStream from error
        pending = PendingFrame(partial(rgb_frame, frame, self._index, time.monotonic(), self.longest))
        self._index += 1
        return pending

    def stop(self) -> None:
        self.track.stop()


def rgb_frame(frame: av.VideoFrame, index: int, captured: float, longest: int | None) -> StagedFrame:
    """A decoded frame as a :class:`StagedFrame` of (H, W, 3) RGB pixels, scaled by area
    averaging so the longer side is at most ``longest`` (twice as fast as PyAV's default bicubic
    scaler, and as good for shrinking)."""
    width, height = working_size(frame.width, frame.height, longest)
    interpolation = None if (width, height) == (frame.width, frame.height) else "AREA"
    return StagedFrame(
        image=frame.to_ndarray(width=width, height=height, format="rgb24", interpolation=interpolation),
        index=index,
        pts=frame.pts,
        time_base=frame.time_base,
        captured=captured,
    )


class ReenactedTrack(MediaStreamTrack):
    """The outgoing video: the newest pipeline output, a frame at a time (also a pipeline sink,
    called on the event loop: ``send`` only hands the frame over).

    ``timeline`` keeps, for the latest frames handed to the encoder, ``(pts, captured, sent)``: its
    pts, when the input frame was received and when the encoder took the output
    (``time.monotonic()``, a clock other processes on the same machine share); ``first_pts`` is
    the first sent frame's pts (a receiver counts pts from it).
    """

    kind = "video"
    blocking = False

    def __init__(self) -> None:
        super().__init__()
        self._latest = LatestSlot[StagedFrame]()
        self.frames_sent = 0
        self.timeline: deque[tuple[int, float, float]] = deque(maxlen=STATS_WINDOW)
        self.first_pts: int | None = None

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before the encoder took them."""
        return self._latest.dropped

    def send(self, frame: StagedFrame) -> None:
        """Offer a frame; one the encoder has not taken yet is dropped."""
        if self.readyState == "live":
            self._latest.put(frame)

    def close(self) -> None:
        """The pipeline has ended: end the track."""
        self.stop()

    def stop(self) -> None:
        super().stop()
        self._latest.close()

    async def recv(self) -> av.VideoFrame:
        staged = await self._latest.get()
        if staged is None or staged.image is None:
            raise MediaStreamError
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(staged.image), format="rgb24")
        frame.pts = staged.pts if staged.pts is not None else staged.index * FRAME_TICKS
        frame.time_base = staged.time_base or VIDEO_CLOCK
        self.frames_sent += 1
        self.timeline.append((frame.pts, staged.captured, time.monotonic()))
        if self.first_pts is None:
            self.first_pts = frame.pts
        return frame


def limit_ice_to_loopback() -> None:
    """Offer only 127.0.0.1 as ICE host candidate (aioice otherwise offers every interface)."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine's loopback."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
