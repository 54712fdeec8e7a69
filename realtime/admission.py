"""Admission control: whether one more caller would push every caller below the fps floor.

The model is the pool's: each stage kind's hosts serve their sessions in turns, so a host with
``n`` sessions gives each ``1 / (n * seconds per frame)`` fps (wall seconds, counted host by host,
as the pool placed them); and all the server's work (both stages plus the server process's own:
decoding, encoding, RTP) shares the cores that other work leaves free. That work is counted in CPU
seconds per frame delivered, and the other work in cores (:class:`CpuAccount`, from ``/proc``):
wall seconds would count the slowdown other work causes once more, as its cores are taken out.
The figures come from what the server measured on recent frames (a warm-up pass before the first
caller), so the model follows the machine it runs on, callers' own clients on it included.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_WINDOW = 10  # CPU samples kept (one a second)
PROC = Path("/proc")


def expected_fps(
    cores: int,
    loads: Mapping[str, Sequence[int]],
    stage_seconds: Mapping[str, float],
    cpu_seconds: float,
    foreign_cores: float = 0.0,
) -> float:
    """Frames per second every caller can expect (the most loaded host's callers get the fewest).

    Args:
        cores: the machine's cores.
        loads: per stage kind, the callers on each of its hosts.
        stage_seconds: per stage kind, wall seconds per frame on a host.
        cpu_seconds: CPU seconds the server's processes spend per frame delivered, all work in.
        foreign_cores: cores other work keeps busy (see :class:`CpuAccount`).
    """
    callers = max((sum(counts) for counts in loads.values()), default=0)
    if callers < 1:
        raise ValueError("expected fps of no callers")
    busiest = {kind: max(loads[kind]) for kind in stage_seconds}  # 0 on a kind a leaving call has left
    per_host = [1.0 / (busiest[kind] * s) for kind, s in stage_seconds.items() if s > 0 and busiest[kind]]
    free = max(0.0, cores - foreign_cores)
    machine = free / (callers * cpu_seconds) if cpu_seconds > 0 else math.inf
    return min([machine, *per_host])


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
    """CPU seconds (user + system, every thread) process ``pid`` has used; this process's from the
    clock, another's from ``/proc`` (None when it is gone or unreadable)."""
    if pid == os.getpid():
        return time.process_time()
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    """One reading: when (monotonic), the machine's busy CPU seconds (None without ``/proc``), each
    own process's CPU seconds, and the frames delivered so far."""

    at: float
    machine: float | None
    processes: dict[int, float]
    frames: int


class CpuAccount:
    """The CPU the server's own processes spend per frame delivered, and the cores other work keeps
    busy, over the last :data:`SAMPLE_WINDOW` samples.

    Between the oldest and the newest kept sample: own CPU seconds per frame are what the server's
    processes (the server and its stage hosts) used over the frames delivered; foreign cores are
    what the whole machine was busy beyond those processes, per second of wall time. A process
    counts once it is in both samples (a new host's CPU time from before is not spread over the
    window). Without ``/proc/stat`` the foreign load is 0.

    Args:
        min_frames: frames delivered across the kept samples before the per-frame figure counts.
    """

    def __init__(self, min_frames: int = 30) -> None:
        self.min_frames = min_frames
        self._samples: deque[CpuSample] = deque(maxlen=SAMPLE_WINDOW)

    def sample(self, pids: Iterable[int], frames: int) -> None:
        """Read the CPU time of the machine and of processes ``pids`` now, beside ``frames`` (a
        running total of frames delivered by all sessions)."""
        processes = {pid: seconds for pid in pids if (seconds := process_seconds(pid)) is not None}
        self._samples.append(CpuSample(time.monotonic(), machine_busy_seconds(), processes, frames))

    def _own_seconds(self) -> float:
        before, after = self._samples[0].processes, self._samples[-1].processes
        return sum(seconds - before[pid] for pid, seconds in after.items() if pid in before)

    def per_frame(self, default: float) -> float:
        """Own CPU seconds per frame delivered; ``default`` before :attr:`min_frames` frames."""
        if not self._samples:
            return default
        frames = self._samples[-1].frames - self._samples[0].frames
        return self._own_seconds() / frames if frames >= self.min_frames else default

    def foreign_cores(self) -> float:
        """Cores other work kept busy (0 before two samples, or without ``/proc/stat``)."""
        if len(self._samples) < 2:
            return 0.0
        first, last = self._samples[0], self._samples[-1]
        if first.machine is None or last.machine is None or last.at <= first.at:
            return 0.0
        return max(0.0, (last.machine - first.machine - self._own_seconds()) / (last.at - first.at))
