"""Admission control: whether one more caller would push every caller below the fps floor.

The model is the pool's: each stage kind's hosts serve their sessions in turns, so a host with
``n`` sessions gives each ``1 / (n * seconds per frame)`` fps (counted host by host, as the pool
placed them); and all the work (both stages plus
the server process's own per-frame share: decoding, encoding, RTP) shares the machine's cores.
The seconds come from what the pool and the server measured on recent frames (a warm-up pass
before the first caller), so the model follows the machine it runs on.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping, Sequence

SAMPLE_WINDOW = 10  # samples of the server process's CPU time kept (one a second)


def expected_fps(
    cores: int, loads: Mapping[str, Sequence[int]], stage_seconds: Mapping[str, float], server_seconds: float
) -> float:
    """Frames per second every caller can expect (the most loaded host's callers get the fewest).

    Args:
        cores: the machine's cores.
        loads: per stage kind, the callers on each of its hosts.
        stage_seconds: per stage kind, seconds per frame on a host.
        server_seconds: the server process's own CPU seconds per frame.
    """
    callers = max((sum(counts) for counts in loads.values()), default=0)
    if callers < 1:
        raise ValueError("expected fps of no callers")
    per_host = [1.0 / (max(loads[kind]) * seconds) for kind, seconds in stage_seconds.items() if seconds > 0]
    work = sum(stage_seconds.values()) + server_seconds
    machine = cores / (callers * work) if work > 0 else math.inf
    return min([machine, *per_host])


class ServerCpu:
    """The server process's CPU seconds per frame delivered, over its last few samples.

    Args:
        default: the figure before enough frames were seen.
        min_frames: frames a figure needs across the kept samples.
    """

    def __init__(self, default: float, min_frames: int = 30) -> None:
        self.default, self.min_frames = default, min_frames
        self._samples: deque[tuple[float, int]] = deque(maxlen=SAMPLE_WINDOW)

    def sample(self, frames: int) -> float:
        """Record the process's CPU time beside ``frames`` (a running total of frames delivered by
        all sessions); the seconds per frame over the kept samples."""
        self._samples.append((time.process_time(), frames))
        (cpu_then, frames_then), (cpu_now, frames_now) = self._samples[0], self._samples[-1]
        if frames_now - frames_then < self.min_frames:
            return self.default
        return (cpu_now - cpu_then) / (frames_now - frames_then)
