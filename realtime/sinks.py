"""Frame sinks behind one interface, with a registry: a video file and a virtual camera.

The virtual camera uses pyvirtualcam (v4l2loopback, OBS or Unity Capture, per platform) on users'
machines; ``backend="fake"`` keeps the frames in memory for tests, as pyvirtualcam's own tests do.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from jr2net.media import DEFAULT_FPS, VideoWriter
from jr2net.realtime.frames import StagedFrame


class FrameSink(Protocol):
    """Anything the pipeline can deliver frames to; ``blocking`` says whether ``send`` may wait
    (encoding, device I/O: it runs in a worker thread) or returns at once (it runs on the event loop)."""

    blocking: bool

    def send(self, frame: StagedFrame) -> None:
        """Deliver one frame (its ``image`` is RGB uint8)."""

    def close(self) -> None:
        """Flush and release."""


class FileSink:
    """H.264 MP4 at a fixed frame rate that plays in real time: a frame is repeated until the next
    one arrives (as a dropped live frame leaves the previous one on screen)."""

    blocking = True

    def __init__(self, path: Path, width: int, height: int, fps: Fraction = Fraction(DEFAULT_FPS)) -> None:
        self._writer = VideoWriter(path, fps, width, height)
        self._fps = float(fps)
        self._started: float | None = None

    def send(self, frame: StagedFrame) -> None:
        now = time.monotonic()
        self._started = now if self._started is None else self._started
        due = round((now - self._started) * self._fps) + 1
        for _ in range(max(1, due - self._writer.frames_written)):
            self._writer.write(frame.image)

    def close(self) -> None:
        self._writer.close()


class FakeVirtualCamera:
    """Stands in for a virtual camera device: keeps what it was sent."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.frames: list[np.ndarray] = []

    def send(self, image: np.ndarray) -> None:
        if image.shape != (self.height, self.width, 3):
            raise ValueError(
                f"virtual camera is {self.width}x{self.height}, got a frame of shape {image.shape}"
            )
        self.frames.append(image)

    def close(self) -> None:
        """Nothing to release."""


class VirtualCameraSink:
    """A virtual webcam other programs (video-call apps) can open."""

    blocking = True

    def __init__(
        self, width: int, height: int, fps: float = float(DEFAULT_FPS), backend: str = "pyvirtualcam"
    ) -> None:
        if backend == "fake":
            self.camera: object = FakeVirtualCamera(width, height, fps)
        elif backend == "pyvirtualcam":
            try:
                import pyvirtualcam
            except ImportError as error:
                raise RuntimeError(
                    "the virtual camera needs pyvirtualcam: pip install pyvirtualcam"
                ) from error
            try:
                self.camera = pyvirtualcam.Camera(width=width, height=height, fps=fps)
            except RuntimeError as error:
                raise RuntimeError(
                    f"no virtual camera device available ({error}); on Linux load v4l2loopback"
                ) from error
        else:
            raise ValueError(f"unknown virtual camera backend {backend!r}; choose pyvirtualcam or fake")

    def send(self, frame: StagedFrame) -> None:
        self.camera.send(np.ascontiguousarray(frame.image))

    def close(self) -> None:
        self.camera.close()


SINKS = {"file": FileSink, "vcam": VirtualCameraSink}
