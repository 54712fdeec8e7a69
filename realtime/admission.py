"""Admission control: whether one more caller would push every caller below the fps floor.

The model is the pool's: each stage kind's hosts serve their sessions in turns, so a host with
``n`` sessions gives each ``1 / (n * seconds per frame)`` fps (wall seconds, counted host by host,
as the pool placed them); and all the server's work shares the cores that other work leaves free.
That work is counted in CPU seconds (:class:`CpuAccount`, from ``/proc``; wall seconds would count
the slowdown other work causes once more, as its cores are taken out), in two parts: per frame the
server *receives* from a call (receiving and decoding, in the server process: a call sends at its
camera's rate whatever it gets back; its encoding of the frames back is counted with it) and per
frame it *delivers* (both stages). Other work's cores (on the cores this process may use) are an
idle share plus a share per call, extrapolated to one call more: where callers' own clients run on
this machine, each call brings its client's load. The figures come from what the server measured
over its last ten samples, one a second (a warm-up pass before the first caller), so the model
follows the machine it runs on.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jr2net.realtime.threads import usable_cores

SAMPLE_WINDOW = 10  # CPU samples kept (one a second)
PROC = Path("/proc")
CAMERA_FPS = 30.0  # frames a second a call is assumed to send before one is measured
SEND_HEADROOM = 1.2  # a caller is asked to send this much faster than it is expected to get back


@dataclass(frozen=True)
class CallCost:
    """CPU seconds one call costs the server: per frame received from it (``per_received``: the
    server process's work, receiving and decoding, with its encoding and sending of the frames
    back spread over them) and per frame delivered to it (``per_delivered``: both stages), and the
    frames a second it sends (``received_rate``)."""

    per_received: float
    per_delivered: float
    received_rate: float = CAMERA_FPS


def expected_fps(
    cores: int,
    loads: Mapping[str, Sequence[int]],
    stage_seconds: Mapping[str, float],
    cost: CallCost,
    foreign_cores: float = 0.0,
) -> float:
    """Frames per second every caller can expect (the most loaded host's callers get the fewest).

    Args:
        cores: the machine's cores.
        loads: per stage kind, the callers on each of its hosts.
        stage_seconds: per stage kind, wall seconds per frame on a host.
        cost: what one call costs the server's processes in CPU.
        foreign_cores: cores other work keeps busy with this many callers (see :class:`CpuAccount`).
    """
    callers = max((sum(counts) for counts in loads.values()), default=0)
    if callers < 1:
        raise ValueError("expected fps of no callers")
    busiest = {kind: max(loads[kind]) for kind in stage_seconds}  # 0 on a kind a leaving call has left
    per_host = [1.0 / (busiest[kind] * s) for kind, s in stage_seconds.items() if s > 0 and busiest[kind]]
    share = max(0.0, cores - foreign_cores) / callers  # cores per call
    left = max(0.0, share - cost.received_rate * cost.per_received)  # for the frames delivered
    machine = left / cost.per_delivered if cost.per_delivered > 0 else math.inf
    return min([machine, *per_host])


def send_rate(expected: float) -> int:
    """The frames a second a caller should send when each caller is ``expected`` to get that many
    back: a little more (:data:`SEND_HEADROOM`, so the stages always have a fresh frame), at most
    :data:`CAMERA_FPS`, at least 1.

    Every frame sent is received and decoded by the server (about 7 ms of its CPU on 2 cores at
    640x480) whether or not a stage takes it. On 2 cores (``bench.e2e_latency``, three runs each,
    a noisy machine), callers following this rate let a third caller in at 8.6-9.1 fps in two runs
    of three (never without it, nor at 1.5x headroom), two callers got 22.5-30.9 fps in all against
    21.4-25.2; the delay of the driver's motion was about the same, the frame's own pts delay often
    higher (a capped sender's frame waits for its turn where a 30 fps one is replaced by a fresher)."""
    return max(1, min(round(CAMERA_FPS), math.ceil(SEND_HEADROOM * expected)))


def machine_busy_seconds(cores: Iterable[int]) -> float | None:
    """CPU seconds the CPUs ``cores`` have spent busy since boot (from their ``cpuN`` lines of
    ``/proc/stat``: user, nice, system, irq, softirq and steal; guest time is inside user and nice
    already); None where there is no ``/proc/stat``."""
    try:
        lines = (PROC / "stat").read_text().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{core}" for core in cores}
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if name in wanted:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
            busy += user + nice + system + irq + softirq + steal
    return busy / os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) process ``pid`` has used, from ``/proc`` (None
    when it is gone or unreadable)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    """One reading: when (monotonic), the machine's busy CPU seconds (None without ``/proc``), the
    server process's and each stage host process's CPU seconds (and how many hosts could not be
    read), and the running totals of frames received from the calls and delivered to them, beside
    the calls running."""

    at: float
    machine: float | None
    server: float
    hosts: dict[int, float]
    unread_hosts: int
    received: int
    delivered: int
    calls: int


class CpuAccount:
    """What a call costs the server's processes, and the cores other work keeps busy, over the last
    :data:`SAMPLE_WINDOW` samples (between the oldest and the newest kept one).

    - :meth:`cost`: the server process's CPU per frame received, the hosts' per frame delivered,
      and the frames a second a call sends. With the stages in the server process (no host
      process) all of its CPU counts per frame delivered.
    - :meth:`foreign_cores`: what the machine was busy beyond the server's processes, per second;
      for a number of calls, the idle share (last seen with no call) plus each running call's share
      times that number. Without ``/proc/stat`` it is 0.

    A host process counts once it is in both samples (a new host's CPU time from before is not
    spread over the window).

    Args:
        min_frames: frames delivered across the kept samples before the measured cost counts.
    """

    def __init__(self, min_frames: int = 30) -> None:
        self.min_frames = min_frames
        self._samples: deque[CpuSample] = deque(maxlen=SAMPLE_WINDOW)
        self._idle_foreign = 0.0

    def sample(self, host_pids: Iterable[int], received: int, delivered: int, calls: int) -> None:
        """Read the CPU time of the machine's usable cores, this (the server's) process and the
        live stage hosts ``host_pids`` now, beside the running totals of frames ``received`` and
        ``delivered`` and the ``calls`` receiving frames. A change of hosts (one replaced) starts
        the window again: a new host's start-up is neither a call's cost nor other work."""
        pids = list(host_pids)
        hosts = {pid: seconds for pid in pids if (seconds := process_seconds(pid)) is not None}
        unread = len(pids) - len(hosts)
        now, machine = time.monotonic(), machine_busy_seconds(usable_cores())
        reading = CpuSample(now, machine, time.process_time(), hosts, unread, received, delivered, calls)
        if self._samples and set(self._samples[-1].hosts) != set(hosts):
            self._samples.clear()
        self._samples.append(reading)
        if len(self._samples) > 1 and all(sample.calls == 0 for sample in self._samples):
            self._idle_foreign = self._foreign_now()

    def cost(self, default: CallCost) -> CallCost:
        """A call's measured cost; ``default`` before :attr:`min_frames` frames were delivered, or
        while a stage host's CPU time cannot be read (no ``/proc``)."""
        if len(self._samples) < 2:
            return default
        first, last = self._samples[0], self._samples[-1]
        received, delivered = last.received - first.received, last.delivered - first.delivered
        calls = self._mean_calls()
        if delivered < self.min_frames or received <= 0 or calls <= 0 or last.unread_hosts:
            return default
        server, hosts = last.server - first.server, self._hosts_seconds()
        rate = received / max(last.at - first.at, 1e-3) / calls
        if not last.hosts:
            return CallCost(0.0, server / delivered, rate)
        return CallCost(server / received, hosts / delivered, rate)

    def foreign_cores(self, calls: int | None = None) -> float:
        """Cores other work kept busy over the window (0 before two samples); with ``calls``, what
        it comes to with that many calls running."""
        now = self._foreign_now()
        running = self._mean_calls()
        if calls is None or running <= 0:
            return now
        idle = min(self._idle_foreign, now)
        return idle + (now - idle) / running * calls

    def _mean_calls(self) -> float:
        """The calls receiving frames, averaged over the window's samples (0 without any)."""
        return sum(sample.calls for sample in self._samples) / len(self._samples) if self._samples else 0.0

    def _hosts_seconds(self) -> float:
        before, after = self._samples[0].hosts, self._samples[-1].hosts
        return sum(seconds - before[pid] for pid, seconds in after.items() if pid in before)

    def _foreign_now(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        first, last = self._samples[0], self._samples[-1]
        if first.machine is None or last.machine is None or last.at <= first.at:
            return 0.0
        own = last.server - first.server + self._hosts_seconds()
        return max(0.0, (last.machine - first.machine - own) / (last.at - first.at))
