"""The asyncio frame pipeline: source → stages → sinks, latest frame wins between stages.

Each stage's CPU work runs in a worker thread of the pipeline's own executor (torch, numba,
MediaPipe and PyAV release the GIL in their heavy parts; a stage in another process is waited for
without it), so stages overlap on the cores while the event loop stays free, and the threads end
with the pipeline. Between stages sits a :class:`LatestSlot`: when a stage falls behind, older
frames are dropped, so latency stays bounded under overload instead of growing with a queue. A
stage starts on a frame only once the next stage has taken its previous result, so no work is done
that the next stage would drop (the CPU goes to frames that come out); and it starts late enough to
finish about when the next stage is ready for it (from both stages' recent service times, turns on
a shared host included), so the frame it takes is as fresh as can be. A source may hand over
pending frames (:class:`~jr2net.realtime.frames.PendingFrame`): the first stage develops the one it
takes, in its worker thread, and the dropped ones are never converted to pixels.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from jr2net.realtime.frames import PendingFrame, StagedFrame, developed
from jr2net.realtime.handoff import LatestSlot
from jr2net.realtime.sinks import FrameSink
from jr2net.realtime.sources import EndOfStream, FrameSource

T = TypeVar("T")
STATS_WINDOW = 3000  # frames of latency history kept (about 100 s at 30 fps)
LIVE_FPS_WINDOW_S = 5.0
Slot = LatestSlot[StagedFrame | PendingFrame]  # a hand-off; the first holds source frames, maybe pending
SERVICE_WINDOW = 15  # frames of service time kept per stage, to time the stage before it


@dataclass(frozen=True)
class Stage:
    """A named step; ``work`` runs in a worker thread and returns the frame for the next step."""

    name: str
    work: Callable[[StagedFrame], StagedFrame]


@dataclass
class PipelineStats:
    """What a run did: frame counts, drops per hand-off, and the latest frames' latencies (seconds)."""

    frames_in: int = 0
    frames_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    latencies: deque[dict[str, float]] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    delivered: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    started: float = field(default_factory=time.monotonic)
    first_out: float | None = None
    finished: float | None = None

    def live_fps(self, window_s: float = LIVE_FPS_WINDOW_S) -> float:
        """Frames delivered per second over the last ``window_s`` seconds (or since the start)."""
        now = self.finished or time.monotonic()
        span = min(window_s, now - self.started)
        recent = sum(1 for t in self.delivered if t >= now - span)
        return recent / span if span > 0 else 0.0

    def summary(self) -> dict[str, object]:
        """Median and p99 latency per stage and end to end (ms), fps over the run and over the last
        seconds, seconds to the first frame out, drops."""
        keys = self.latencies[0].keys() if self.latencies else ()
        latency = {
            key: {
                "median_ms": float(np.median([x[key] for x in self.latencies]) * 1e3),
                "p99_ms": float(np.percentile([x[key] for x in self.latencies], 99) * 1e3),
            }
            for key in keys
        }
        elapsed = (self.finished or time.monotonic()) - self.started
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "fps": self.frames_out / elapsed if elapsed > 0 else 0.0,
            "live_fps": self.live_fps(),
            "first_frame_s": None if self.first_out is None else self.first_out - self.started,
            "dropped": dict(self.dropped),
            "latency": latency,
        }


class Pipeline:
    """Pulls frames from a source through stages into sinks until the source ends or ``stop()``."""

    def __init__(self, source: FrameSource, stages: Sequence[Stage], sinks: Sequence[FrameSink]) -> None:
        self.source, self.stages, self.sinks = source, list(stages), list(sinks)
        self.stats = PipelineStats()
        self._stopping = False
        self._slots: list[Slot] = []
        self._service = {stage.name: deque[float](maxlen=SERVICE_WINDOW) for stage in self.stages}

    def stop(self) -> None:
        """Finish after the frames already in flight."""
        self._stopping = True

    async def run(self) -> PipelineStats:
        """Run to the end of the source (or ``stop()``); re-raises the first error of any part.

        Nothing is cancelled: on an error the other parts are asked to stop and let finish, so
        no worker thread is still inside the source, a stage or a sink when they are closed.
        """
        self._slots = [Slot() for _ in range(len(self.stages) + 1)]
        slots = self._slots
        blocking = sum(sink.blocking for sink in self.sinks)
        self._executor = ThreadPoolExecutor(len(self.stages) + blocking + 1, "jr2net-pipeline")
        try:
            tasks = [asyncio.create_task(self._pump(slots[0]))]
            tasks += [
                asyncio.create_task(self._work(stage, slots[i], slots[i + 1]))
                for i, stage in enumerate(self.stages)
            ]
            tasks.append(asyncio.create_task(self._deliver(slots[-1])))
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            self.source.stop()
            for sink in self.sinks:
                sink.close()
        finally:
            self._executor.shutdown(wait=False)
        self.stats.finished = time.monotonic()
        self.stats.dropped = self._drops()
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if errors:
            raise errors[0]
        return self.stats

    def summary(self) -> dict[str, object]:
        """:meth:`PipelineStats.summary` with the drops counted so far (also while running)."""
        self.stats.dropped = self._drops()
        return self.stats.summary()

    def _drops(self) -> dict[str, int]:
        consumers = [*(stage.name for stage in self.stages), "sinks"]
        return {f"before {name}": slot.dropped for name, slot in zip(consumers, self._slots)}

    async def _in_thread(self, call: Callable[[StagedFrame], T], frame: StagedFrame | PendingFrame) -> T:
        """``call`` on ``frame`` (developed first if pending) in a worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: call(developed(frame)))

    async def _developed(self, frame: StagedFrame | PendingFrame) -> StagedFrame:
        """``frame`` with its pixels, a pending one developed in a worker thread."""
        if isinstance(frame, PendingFrame):
            return await asyncio.get_running_loop().run_in_executor(self._executor, frame.develop)
        return frame

    async def _pump(self, out: Slot) -> None:
        try:
            while not self._stopping:
                try:
                    frame = await self.source.recv()
                except EndOfStream:
                    break
                self.stats.frames_in += 1
                out.put(frame)
        except Exception:
            self._stopping = True
            raise
        finally:
            out.close()

    async def _work(self, stage: Stage, inbox: Slot, out: Slot) -> None:
        after = self.stages[self.stages.index(stage) + 1] if stage is not self.stages[-1] else None
        try:
            while True:
                await out.wait_taken()  # no work the next stage would drop
                if after is not None:
                    await asyncio.sleep(self._lead(stage, after) - (time.monotonic() - out.taken_at))
                if out.abandoned or (frame := await inbox.get()) is None:
                    break
                started = time.monotonic()
                result = await self._in_thread(stage.work, frame)
                self._service[stage.name].append(time.monotonic() - started)
                out.put(result.stamped(stage.name))
        except Exception:
            self._stopping = True
            raise
        finally:
            inbox.abandon()
            out.close()

    def _lead(self, stage: Stage, after: Stage) -> float:
        """How long after ``after`` took a frame ``stage`` should start on the next one to finish
        as ``after`` gets free: the difference of their median service times (0 before any)."""
        own, next_ = self._service[stage.name], self._service[after.name]
        if not own or not next_:
            return 0.0
        return float(np.median(next_) - np.median(own))

    async def _deliver(self, inbox: Slot) -> None:
        try:
            while (taken := await inbox.get()) is not None:
                frame = await self._developed(taken)
                if frame.image is None:
                    raise ValueError(f"the last stage left frame {frame.index} without pixels")
                for sink in self.sinks:
                    if sink.blocking:
                        await self._in_thread(sink.send, frame)
                    else:
                        sink.send(frame)
                latencies = frame.stage_latencies()
                now = time.monotonic()
                latencies["end_to_end"] = now - frame.captured
                self.stats.latencies.append(latencies)
                self.stats.delivered.append(now)
                self.stats.first_out = self.stats.first_out or now
                self.stats.frames_out += 1
        except Exception:
            self._stopping = True
            raise
        finally:
            inbox.abandon()
