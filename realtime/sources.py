"""Frame sources shaped like aiortc tracks (``async recv()``): a video file, or a camera."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from jr2net.media import MediaError, probe_video, upright_rgb
from jr2net.realtime.frames import StagedFrame


class EndOfStream(Exception):
    """The source has no more frames."""


class FrameSource(Protocol):
    """Anything the pipeline can pull frames from."""

    async def recv(self) -> StagedFrame:
        """The next frame; raises :class:`EndOfStream` at the end."""

    def stop(self) -> None:
        """Release the device or file."""


def _decode(container: object, stream: object) -> Iterator[tuple[object, int | None, Fraction | None]]:
    for frame in container.decode(stream):
        yield upright_rgb(frame), frame.pts, frame.time_base


class _PyAVSource:
    """Frames decoded by PyAV in a worker thread, optionally paced at the stream's own rate."""

    def __init__(self, container: object, paced: bool, max_frames: int | None) -> None:
        self._container = container
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self._frames = _decode(container, stream)
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
        self._container.close()


class FileSource(_PyAVSource):
    """A video file, paced at its frame rate (like a camera) or read as fast as possible."""

    def __init__(self, path: Path, paced: bool = True, max_frames: int | None = None) -> None:
        import av

        probe_video(path)
        super().__init__(av.open(str(path)), paced, max_frames)


CAMERA_FORMATS = {"linux": "v4l2", "darwin": "avfoundation", "win32": "dshow"}


class CameraSource(_PyAVSource):
    """A local camera through PyAV: ``/dev/video0`` (v4l2), ``0`` (avfoundation) or
    ``video=Name`` (dshow), the format chosen by platform unless given."""

    def __init__(
        self, device: str, input_format: str | None = None, size: str = "640x480", fps: int = 30
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
        super().__init__(container, paced=False, max_frames=None)
