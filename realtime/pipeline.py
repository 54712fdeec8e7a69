"""The asyncio frame pipeline: source → stages → sinks, latest frame wins between stages.

Each stage's CPU work runs in a worker thread (``asyncio.to_thread``: torch, numba, MediaPipe and
PyAV release the GIL in their heavy parts), so stages overlap on the cores while the event loop
stays free. Between stages sits a :class:`LatestSlot`: when a stage falls behind, older frames
are dropped, so latency stays bounded under overload instead of growing with a queue.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.handoff import LatestSlot
from jr2net.realtime.sinks import FrameSink
from jr2net.realtime.sources import EndOfStream, FrameSource

STATS_WINDOW = 3000  # frames of latency history kept (about 100 s at 30 fps)


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
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    def summary(self) -> dict[str, object]:
        """Median and p99 latency per stage and end to end (ms), achieved fps, drops."""
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
            "dropped": dict(self.dropped),
            "latency": latency,
        }


class Pipeline:
    """Pulls frames from a source through stages into sinks until the source ends or ``stop()``."""

    def __init__(self, source: FrameSource, stages: Sequence[Stage], sinks: Sequence[FrameSink]) -> None:
        self.source, self.stages, self.sinks = source, list(stages), list(sinks)
        self.stats = PipelineStats()
        self._stopping = False
        self._slots: list[LatestSlot[StagedFrame]] = []

    def stop(self) -> None:
        """Finish after the frames already in flight."""
        self._stopping = True

    async def run(self) -> PipelineStats:
        """Run to the end of the source (or ``stop()``); re-raises the first error of any part.

        Nothing is cancelled: on an error the other parts are asked to stop and let finish, so
        no worker thread is still inside the source, a stage or a sink when they are closed.
        """
        self._slots = [LatestSlot[StagedFrame]() for _ in range(len(self.stages) + 1)]
        slots = self._slots
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

    async def _pump(self, out: LatestSlot[StagedFrame]) -> None:
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

    async def _work(self, stage: Stage, inbox: LatestSlot[StagedFrame], out: LatestSlot[StagedFrame]) -> None:
        try:
            while (frame := await inbox.get()) is not None:
                result = await asyncio.to_thread(stage.work, frame)
                out.put(result.stamped(stage.name))
        except Exception:
            self._stopping = True
            raise
        finally:
            out.close()

    async def _deliver(self, inbox: LatestSlot[StagedFrame]) -> None:
        try:
            while (frame := await inbox.get()) is not None:
                for sink in self.sinks:
                    await asyncio.to_thread(sink.send, frame)
                latencies = frame.stage_latencies()
                latencies["end_to_end"] = time.monotonic() - frame.captured
                self.stats.latencies.append(latencies)
                self.stats.frames_out += 1
        except Exception:
            self._stopping = True
            raise
