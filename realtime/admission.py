"""Admission control: whether one more caller would push every caller below the fps floor.

The model is the pool's: each stage kind's hosts serve their sessions in turns, so a host with
``n`` sessions gives each ``1 / (n * seconds per frame)`` fps (counted host by host, as the pool
placed them); and all the work (both stages plus
the server process's own per-frame share: decoding, encoding, RTP) shares the machine's cores.
The seconds come from what the pool and the server measured on recent frames (a warm-up pass
before the first caller), so the model follows the machine it runs on. Cores that other work
keeps busy (:class:`ForeignLoad`: another program, or callers' own clients on the same machine)
are taken out of the machine's.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

SAMPLE_WINDOW = 10  # samples of the server process's CPU time kept (one a second)
PROC = Path("/proc")


def expected_fps(
    cores: int,
    loads: Mapping[str, Sequence[int]],
    stage_seconds: Mapping[str, float],
    server_seconds: float,
    foreign_cores: float = 0.0,
) -> float:
    """Frames per second every caller can expect (the most loaded host's callers get the fewest).

    Args:
        cores: the machine's cores.
        loads: per stage kind, the callers on each of its hosts.
        stage_seconds: per stage kind, seconds per frame on a host.
        server_seconds: the server process's own CPU seconds per frame.
        foreign_cores: cores kept busy by work that is not the server's (see :class:`ForeignLoad`).
    """
    callers = max((sum(counts) for counts in loads.values()), default=0)
    if callers < 1:
        raise ValueError("expected fps of no callers")
    per_host = [1.0 / (max(loads[kind]) * seconds) for kind, seconds in stage_seconds.items() if seconds > 0]
    work = sum(stage_seconds.values()) + server_seconds
    free = max(0.0, cores - foreign_cores)
    machine = free / (callers * work) if work > 0 else math.inf
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


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (every state of ``/proc/stat``'s
    first line but idle and iowait); None where there is no ``/proc/stat``."""
    try:
        fields = (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(value) for value in fields]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used, None when it is gone or unreadable."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ForeignLoad:
    """Cores kept busy by work that is not the server's, averaged over the last samples.

    Each :meth:`sample` reads the machine's busy CPU time and the server's own processes' (the
    server and its stage hosts); between two samples, what the machine did beyond those, per second
    of wall time, is the foreign load. A process counts from its second sample on (a new host's
    earlier CPU time is not spread over the interval). Where ``/proc`` is missing the load is 0.
    """

    def __init__(self) -> None:
        self._last: tuple[float, float, dict[int, float]] | None = None
        self._loads: deque[float] = deque(maxlen=SAMPLE_WINDOW)

    def sample(self, pids: Iterable[int]) -> float:
        """Record the machine's and ``pids``' CPU time now; the mean foreign cores so far."""
        now, machine = time.monotonic(), machine_busy_seconds()
        if machine is None:
            return 0.0
        own = {pid: seconds for pid in pids if (seconds := process_seconds(pid)) is not None}
        if self._last is not None:
            then, machine_then, own_then = self._last
            ours = sum(seconds - own_then[pid] for pid, seconds in own.items() if pid in own_then)
            if now > then:
                self._loads.append(max(0.0, (machine - machine_then - ours) / (now - then)))
        self._last = (now, machine, own)
        return self.cores()

    def cores(self) -> float:
        """The mean foreign cores over the kept samples (0 before two samples)."""
        return sum(self._loads) / len(self._loads) if self._loads else 0.0
