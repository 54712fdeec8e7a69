"""Frame sources: what they yield (upright RGB frames with their timestamps) and how they fail."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.sources import EndOfStream, FileSource, FrameSource
from tests.conftest import asymmetric_frames, write_rotated_clip


def drain(source: FrameSource) -> list[StagedFrame]:
    """Every frame a source gives until its end, then stop it."""

    async def frames() -> list[StagedFrame]:
        received = []
        try:
            while True:
                received.append(await source.recv())
        except EndOfStream:
            return received
        finally:
            source.stop()

    return asyncio.run(frames())


def test_file_source_turns_a_portrait_phone_clip_upright(tmp_path: Path) -> None:
    path = tmp_path / "phone.mp4"
    originals = asymmetric_frames(3)
    write_rotated_clip(path, originals, -90)
    frames = drain(FileSource(path, paced=False))
    assert [frame.index for frame in frames] == [0, 1, 2]
    for frame, original in zip(frames, originals):
        assert np.abs(frame.image.astype(int) - np.rot90(original, -1)).mean() < 3
