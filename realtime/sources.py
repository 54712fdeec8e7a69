"""Frame sources shaped like aiortc tracks (``async recv()``): a video file, or a camera (PyAV or OpenCV)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from jr2net.media import DEFAULT_FPS, MediaError, probe_video, upright_rgb
from jr2net.realtime.frames import PendingFrame, StagedFrame

if TYPE_CHECKING:
    import av
    import cv2


class EndOfStream(Exception):
    """The source has no more frames."""


class FrameSource(Protocol):
    """Anything the pipeline can pull frames from."""

    async def recv(self) -> StagedFrame | PendingFrame:
        """The next frame (pending: its pixels made when a stage takes it); raises
        :class:`EndOfStream` at the end."""

    def stop(self) -> None:
        """Release the device or file."""


Decoded = tuple[np.ndarray, int | None, Fraction | None]
"""One frame from a source's reader: RGB uint8 (H, W, 3) pixels, pts, time base."""

MICROSECONDS = Fraction(1, 1_000_000)
OPEN_TIMEOUT_MS = 10_000
READ_TIMEOUT_MS = 5_000
LOG = logging.getLogger("jr2net.realtime")


def _decode(container: av.container.InputContainer) -> Iterator[Decoded]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    for frame in container.decode(stream):
        yield upright_rgb(frame), frame.pts, frame.time_base


class _ThreadedSource:
    """Frames from a blocking reader pulled in a worker thread, optionally paced at their own timestamps."""

    def __init__(
        self, frames: Iterator[Decoded], close: Callable[[], None], paced: bool, max_frames: int | None
    ) -> None:
        self._frames = frames
        self._close = close
        self._paced = paced
        self._max_frames = max_frames
        self._index = 0
        self._started: float | None = None
        self._first_seconds: float | None = None

    async def recv(self) -> StagedFrame:
        if self._max_frames is not None and self._index >= self._max_frames:
            raise EndOfStream
        decoded = await asyncio.to_thread(next, self._frames, None)
        if decoded is None:
            raise EndOfStream
        image, pts, time_base = decoded
        if self._paced and pts is not None and time_base is not None:
            await self._wait_until(float(pts * time_base))
        frame = StagedFrame(
            image=image, index=self._index, pts=pts, time_base=time_base, captured=time.monotonic()
        )
        self._index += 1
        return frame

    async def _wait_until(self, seconds: float) -> None:
        now = time.monotonic()
        if self._started is None or self._first_seconds is None:
            self._started, self._first_seconds = now, seconds
            return
        delay = self._started + (seconds - self._first_seconds) - now
        if delay > 0:
            await asyncio.sleep(delay)

    def stop(self) -> None:
        self._close()


class FileSource(_ThreadedSource):
    """A video file, paced at its frame rate (like a camera) or read as fast as possible."""

    def __init__(self, path: Path, paced: bool = True, max_frames: int | None = None) -> None:
        import av

        probe_video(path)
        container = av.open(str(path))
        super().__init__(_decode(container), container.close, paced, max_frames)


CAMERA_FORMATS = {"linux": "v4l2", "darwin": "avfoundation", "win32": "dshow"}


class CameraSource(_ThreadedSource):
    """A local camera through PyAV: ``/dev/video0`` (v4l2), ``0`` (avfoundation) or
    ``video=Name`` (dshow), the format chosen by platform unless given."""

    def __init__(
        self,
        device: str,
        input_format: str | None = None,
        size: str = "640x480",
        fps: int = DEFAULT_FPS,
        max_frames: int | None = None,
    ) -> None:
        import av

        platform = next(
            (name for prefix, name in CAMERA_FORMATS.items() if sys.platform.startswith(prefix)), None
        )
        chosen = input_format or platform
        if chosen is None:
            raise MediaError(f"no camera input format known for {sys.platform}; pass one")
        try:
            container = av.open(device, format=chosen, options={"video_size": size, "framerate": str(fps)})
        except (av.FFmpegError, OSError) as error:
            raise MediaError(f"cannot open camera {device!r} ({chosen}): {error}") from error
        super().__init__(_decode(container), container.close, paced=False, max_frames=max_frames)


def _capture(capture: cv2.VideoCapture) -> Iterator[Decoded]:
    """Read until the capture fails; pts are microseconds of ``time.monotonic()`` since the first frame."""
    import cv2

    started = None
    while True:
        ok, image = capture.read()
        if not ok:
            LOG.info("the capture gave no frame (end of input, device gone or stalled): stream ends")
            return
        now = time.monotonic()
        started = now if started is None else started
        yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB), round((now - started) * 1_000_000), MICROSECONDS


class OpenCVCameraSource(_ThreadedSource):
    """A camera by OpenCV index (``cv2.VideoCapture(0)``: V4L2, AVFoundation, MSMF/DirectShow, whichever
    OpenCV picks), or anything else ``VideoCapture`` opens (a video file, a stream URL).

    Frames come as fast as the capture gives them, stamped with the time they were read. The size and
    frame rate are requests a camera may round to what it supports; a file ignores them. Where the
    backend supports timeouts (FFmpeg, V4L2, MSMF), a camera that gives no frame for
    ``READ_TIMEOUT_MS`` ends the stream instead of hanging it.
    """

    def __init__(
        self, camera: int | str, size: str = "640x480", fps: int = DEFAULT_FPS, max_frames: int | None = None
    ) -> None:
        import cv2

        timeouts = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            READ_TIMEOUT_MS,
        ]
        capture = cv2.VideoCapture(camera, cv2.CAP_ANY, timeouts)
        if not capture.isOpened():
            capture.release()
            raise MediaError(f"cannot open camera {camera!r} with OpenCV (no such device, or it is busy)")
        width, height = (int(side) for side in size.split("x"))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        capture.set(cv2.CAP_PROP_FPS, fps)
        super().__init__(_capture(capture), capture.release, paced=False, max_frames=max_frames)
