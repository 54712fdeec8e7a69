"""Reading images and videos, writing videos (PyAV), with clear errors for bad files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import av

DEFAULT_FPS = 30
"""Frames per second where a stream states none (and a camera's requested rate): most webcams'."""


class MediaError(ValueError):
    """A file is missing, corrupt, or not an image or video the project can read."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: frame rate, frame count (when the container says), upright size, audio."""

    fps: Fraction
    frame_count: int | None
    width: int
    height: int
    has_audio: bool


def _require_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    return path


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3), EXIF orientation applied."""
    path = _require_file(path)
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB")).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise MediaError(f"{path}: not a readable image ({error})") from error


def is_image(path: Path) -> bool:
    """Whether PIL recognises the file as an image (content, not the suffix)."""
    try:
        with Image.open(_require_file(path)):
            return True
    except (UnidentifiedImageError, OSError):
        return False


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns (0..3) that stand a decoded frame upright: its display matrix's
    rotation (portrait phone clips store landscape pixels plus a rotation), rounded to a multiple of 90."""
    return round(frame.rotation / 90) % 4


def upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded PyAV frame as RGB uint8 (H, W, 3), turned as its display matrix says, so (H, W) is the
    size a player shows (the coded size, swapped for a portrait phone clip)."""
    image = frame.to_ndarray(format="rgb24")
    turns = _quarter_turns(frame)
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def probe_video(path: Path) -> VideoInfo:
    """Frame rate, frame count, upright size (display rotation applied) and audio presence of a video file
    (its first frame must decode)."""
    import av

    path = _require_file(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = stream.average_rate or stream.guessed_rate or Fraction(DEFAULT_FPS)
            first = next(container.decode(stream), None)
            if first is None:
                raise MediaError(f"{path}: not a readable video (no frame decodes)")
            width, height = stream.codec_context.width, stream.codec_context.height
            if _quarter_turns(first) % 2:
                width, height = height, width
            return VideoInfo(
                fps=Fraction(fps),
                frame_count=stream.frames or None,
                width=width,
                height=height,
                has_audio=bool(container.streams.audio),
            )
    except av.FFmpegError as error:
        raise MediaError(f"{path}: not a readable video ({error})") from error


def iter_video_frames(path: Path) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode a video: ``(index, time in seconds, RGB uint8 (H, W, 3))`` per frame, upright (see
    :func:`upright_rgb`)."""
    import av

    path = _require_file(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                seconds = (
                    float(frame.pts * stream.time_base) if frame.pts is not None else index / DEFAULT_FPS
                )
                yield index, seconds, upright_rgb(frame)
    except av.FFmpegError as error:
        raise MediaError(f"{path}: video decoding failed ({error})") from error


def remember_frames(
    frames: Iterable[tuple[int, float, np.ndarray]], images: dict[int, np.ndarray]
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Pass ``(index, time in seconds, RGB uint8 (H, W, 3))`` frames through unchanged, storing each image
    in ``images`` under its index on the way.

    For a consumer that yields its results later than it takes frames in (``Reconstructor.video``): the
    caller pops ``images[result.index]`` per result, so only the frames still in flight are held.
    """
    for index, time_s, image in frames:
        images[index] = image
        yield index, time_s, image


class VideoWriter:
    """H.264 (yuv420p) MP4 writer for RGB uint8 frames; a context manager.

    Odd frame sizes are padded by one pixel (yuv420p needs even sizes).
    """

    def __init__(self, path: Path, fps: Fraction, width: int, height: int, crf: int = 20) -> None:
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self.frames_written = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 (H, W, 3) frame."""
        import av

        height, width = self._stream.height, self._stream.width
        if frame.shape[0] != height or frame.shape[1] != width:
            frame = np.pad(
                frame, ((0, height - frame.shape[0]), (0, width - frame.shape[1]), (0, 0)), mode="edge"
            )
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and close the file."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def mux_audio(video: Path, audio_source: Path, output: Path) -> bool:
    """Write ``output``: the video stream of ``video`` plus the first audio stream of ``audio_source``
    (packets copied, cut at the video's end). Returns False, writing nothing, when there is no audio."""
    import av

    with av.open(str(_require_file(audio_source))) as audio_input:
        if not audio_input.streams.audio:
            return False
        with av.open(str(_require_file(video))) as video_input, av.open(str(output), mode="w") as container:
            video_stream, audio_stream = video_input.streams.video[0], audio_input.streams.audio[0]
            video_out = container.add_stream_from_template(video_stream)
            audio_out = container.add_stream_from_template(audio_stream)
            end = None
            for packet in video_input.demux(video_stream):
                if packet.dts is None:
                    continue
                if packet.pts is not None and packet.duration:
                    stop = (packet.pts + packet.duration) * packet.time_base
                    end = stop if end is None else max(end, stop)
                packet.stream = video_out
                container.mux(packet)
            for packet in audio_input.demux(audio_stream):
                if packet.dts is None or (
                    end is not None and packet.pts is not None and packet.pts * packet.time_base >= end
                ):
                    continue
                packet.stream = audio_out
                container.mux(packet)
    return True
