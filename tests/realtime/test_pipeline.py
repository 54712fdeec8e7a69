"""The realtime pipeline: latest-frame-wins hand-off, bounded latency, sinks, the live command."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from jr2net.cli import main
from jr2net.commands.live import key_command
from jr2net.media import iter_video_frames, probe_video
from jr2net.realtime import sinks, webrtc
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.handoff import LatestSlot
from jr2net.realtime.pipeline import Pipeline, Stage
from jr2net.realtime.reenactment import open_reenactment
from jr2net.realtime.reenactment_hosts import reenactment_pool
from jr2net.realtime.sinks import FileSink, VirtualCameraSink
from jr2net.realtime.sources import EndOfStream, FileSource
from jr2net.sources import load_source


def test_latest_slot_keeps_only_the_newest() -> None:
    async def scenario() -> tuple[list[int | None], int]:
        slot: LatestSlot[int] = LatestSlot()
        for value in (1, 2, 3):
            slot.put(value)
        first = await slot.get()
        slot.put(4)
        slot.close()
        return [first, await slot.get(), await slot.get()], slot.dropped

    values, dropped = asyncio.run(scenario())
    assert values == [3, 4, None] and dropped == 2


class _SyntheticSource:
    """Frames at a fixed rate, as a camera would deliver them."""

    def __init__(self, count: int, fps: float) -> None:
        self.count, self.period, self.index = count, 1.0 / fps, 0

    async def recv(self) -> StagedFrame:
        if self.index >= self.count:
            raise EndOfStream
        await asyncio.sleep(self.period)
        frame = StagedFrame(
            np.full((8, 8, 3), self.index, np.uint8),
            self.index,
            self.index,
            Fraction(1, 30),
            time.monotonic(),
        )
        self.index += 1
        return frame

    def stop(self) -> None:
        """Nothing to release."""


class _ListSink:
    blocking = False  # called on the event loop

    def __init__(self) -> None:
        self.indices: list[int] = []

    def send(self, frame: StagedFrame) -> None:
        self.indices.append(frame.index)

    def close(self) -> None:
        """Nothing to release."""


def _slow(frame: StagedFrame) -> StagedFrame:
    time.sleep(0.05)
    return replace(frame, image=255 - frame.image)


def test_a_slow_stage_drops_frames_and_latency_stays_bounded() -> None:
    sink = _ListSink()
    stats = asyncio.run(Pipeline(_SyntheticSource(90, fps=60), [Stage("slow", _slow)], [sink]).run())
    summary = stats.summary()
    assert stats.frames_in == 90 and 10 < stats.frames_out < 60
    assert summary["dropped"]["before slow"] > 20
    assert sink.indices == sorted(sink.indices), "order is kept"
    end_to_end = [x["end_to_end"] for x in stats.latencies]
    assert max(end_to_end) < 0.25, "latency does not grow with a queue"
    assert np.mean(end_to_end[-5:]) < 2 * np.mean(end_to_end[:5]) + 0.05


def test_a_stage_does_no_work_the_next_one_would_drop() -> None:
    """A quick stage before a slow one waits for the slow one to take its result, then starts on
    the newest frame: what it makes comes out, and the slow stage gets the freshest frame."""
    calls: list[int] = []

    def quick(frame: StagedFrame) -> StagedFrame:
        calls.append(frame.index)
        time.sleep(0.01)
        return frame

    sink = _ListSink()
    stages = [Stage("quick", quick), Stage("slow", _slow)]
    stats = asyncio.run(Pipeline(_SyntheticSource(90, fps=60), stages, [sink]).run())
    assert stats.frames_out >= len(calls) - 1, f"{len(calls)} quick calls for {stats.frames_out} frames out"
    assert stats.summary()["dropped"]["before slow"] == 0 and stats.summary()["dropped"]["before quick"] > 20
    in_slow = [x["slow"] for x in stats.latencies]
    assert np.median(in_slow) < 0.05 + 0.02, "the slow stage starts at once on what the quick one made"


class _CameraTrack(MediaStreamTrack):
    """A received track's decoded frames: 640×480 YUV at 60 fps, then the end."""

    kind = "video"

    def __init__(self, count: int) -> None:
        super().__init__()
        self.left = count

    async def recv(self) -> av.VideoFrame:
        if self.left == 0:
            raise MediaStreamError
        self.left -= 1
        await asyncio.sleep(1 / 60)
        frame = av.VideoFrame.from_ndarray(np.full((480, 640, 3), 200, np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = self.left, Fraction(1, 90000)
        return frame


def test_only_the_frames_a_stage_takes_are_converted_to_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """A received frame becomes RGB pixels at the tracker's size when the first stage takes it,
    in the stage's worker thread; the frames the slot drops are never converted."""
    developed: list[tuple[int, bool]] = []
    convert = webrtc.rgb_frame

    def counting(*args: object) -> StagedFrame:
        developed.append((args[1], threading.current_thread() is threading.main_thread()))
        return convert(*args)

    monkeypatch.setattr(webrtc, "rgb_frame", counting)
    seen: list[tuple[int, tuple[int, ...]]] = []

    def stage(frame: StagedFrame) -> StagedFrame:
        seen.append((frame.index, frame.image.shape))
        return _slow(frame)

    source = webrtc.TrackSource(_CameraTrack(60), longest=480)
    stats = asyncio.run(Pipeline(source, [Stage("slow", stage)], [_ListSink()]).run())
    assert stats.frames_in == 60 and stats.summary()["dropped"]["before slow"] > 20
    assert [index for index, _ in developed] == [index for index, _ in seen], "only what the stage took"
    assert not any(on_main for _, on_main in developed), "converted off the event loop"
    assert {shape for _, shape in seen} == {(360, 480, 3)}


def test_a_failing_sink_ends_the_run_with_its_error() -> None:
    class _Failing(_ListSink):
        def send(self, frame: StagedFrame) -> None:
            raise OSError("disk full")

    stages = [Stage("quick", lambda frame: frame), Stage("slow", _slow)]
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(asyncio.wait_for(Pipeline(_SyntheticSource(300, fps=60), stages, [_Failing()]).run(), 10))


def test_file_source_to_file_and_fake_virtual_camera(shared_media: Path, tmp_path: Path) -> None:
    source = FileSource(shared_media / "liveportrait/driving/d0.mp4", paced=False, max_frames=10)
    output = tmp_path / "out.mp4"
    camera = VirtualCameraSink(512, 512, backend="fake")
    flip = Stage("flip", lambda f: replace(f, image=np.ascontiguousarray(f.image[:, ::-1])))
    stats = asyncio.run(Pipeline(source, [flip], [FileSink(output, 512, 512, Fraction(25)), camera]).run())
    assert stats.frames_out == len(camera.camera.frames) >= 1
    first = next(iter_video_frames(shared_media / "liveportrait/driving/d0.mp4"))[2]
    assert np.abs(camera.camera.frames[0].astype(int) - first[:, ::-1].astype(int)).mean() < 1e-6
    written = [image for _, _, image in iter_video_frames(output)]
    for delivered, stored in ((camera.camera.frames[0], written[0]), (camera.camera.frames[-1], written[-1])):
        assert np.abs(delivered.astype(int) - stored.astype(int)).mean() < 3, (
            "both sinks got the same frames: the file starts and ends with the first and last delivered"
        )
    with pytest.raises(ValueError, match="512x512"):
        camera.camera.send(np.zeros((10, 10, 3), np.uint8))


def test_the_file_sink_repeats_a_frame_until_the_next_is_due(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """At 25 fps, frames sent at 0, 0.2 and 0.21 s fill the file as a screen would have shown them:
    the first for one frame, the second until 0.2 s (frame 5) is reached, the third once (its slot
    was taken: a frame is never dropped)."""
    clock = iter([0.0, 0.2, 0.21])
    monkeypatch.setattr(sinks, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    sink = FileSink(tmp_path / "out.mp4", 16, 16, Fraction(25))
    for index, level in enumerate((0, 120, 240)):
        sink.send(StagedFrame(np.full((16, 16, 3), level, np.uint8), index, None, None, 0.0))
    sink.close()
    levels = [round(float(image.mean())) for _, _, image in iter_video_frames(tmp_path / "out.mp4")]
    assert np.allclose(levels, [0, 120, 120, 120, 120, 120, 240], atol=4), levels


def test_live_command_with_a_file_as_camera(shared_media: Path, tmp_path: Path) -> None:
    output, stats_path = tmp_path / "live.mp4", tmp_path / "stats.json"
    args = [
        "live",
        "--input",
        str(shared_media / "liveportrait/driving/d0.mp4"),
        "--source",
        "model",
        "--size",
        "128",
    ]
    assert (
        main(
            [
                *args,
                "--vcam",
                "--vcam-backend",
                "fake",
                "-o",
                str(output),
                "--max-frames",
                "20",
                "--stats",
                str(stats_path),
            ]
        )
        == 0
    )
    stats = json.loads(stats_path.read_text())
    assert stats["frames_in"] == 20 and 0 < stats["frames_out"] <= 20
    assert {"reconstruct", "reenact", "end_to_end"} <= set(stats["latency"])
    assert probe_video(output).width == 128


def test_live_needs_somewhere_to_send(capsys: pytest.CaptureFixture[str], shared_media: Path) -> None:
    assert main(["live", "--input", str(shared_media / "liveportrait/driving/d0.mp4")]) == 1
    assert "nowhere to send" in capsys.readouterr().err


@pytest.mark.parametrize("planner", ["reconstruct", "reenact"])
def test_the_r_key_makes_the_next_frame_the_neutral_reference(
    face_model: object, capsys: pytest.CaptureFixture[str], planner: str
) -> None:
    """``live``'s key: ``r`` resets the session's planner, in whichever stage plans (relative
    motion restarts from the next frame); other keys are named and ignored."""
    source = load_source(face_model, "model", 96)
    with reenactment_pool("thread", hosts=1) as pool:
        session = open_reenactment(pool, "live", source, planner=planner)
        worker = pool.hosts[planner][0]._table.workers["live"]
        reenactor = worker.planner if planner == "reconstruct" else worker.reenactor
        picture = (source.image[0].permute(1, 2, 0) * 255).round().byte().numpy()
        frame = StagedFrame(picture, 0, None, None, time.monotonic())
        for stage in session.stages:
            frame = stage.work(frame)
        assert reenactor.reference is not None

        async def press(line: str) -> None:
            key_command(line, session)
            await asyncio.sleep(0.5)  # the recalibration runs in a worker thread

        asyncio.run(press("x\n"))
        assert reenactor.reference is not None and "unknown key 'x'" in capsys.readouterr().err
        asyncio.run(press("r\n"))
        assert reenactor.reference is None and reenactor.reference_landmarks is None
        assert "recalibrated" in capsys.readouterr().err
