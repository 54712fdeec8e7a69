"""Thread settings of a live process: the stages overlap on the cores, each on one thread."""

from __future__ import annotations

import os
import sys

LIVE_SWITCH_INTERVAL_S = 0.0005
LIVE_ONNX_THREADS = 2


def usable_cores() -> list[int]:
    """The CPUs this process may run on (all of them where the platform cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def machine_cores() -> int:
    """The cores this process may run on."""
    return len(usable_cores())


def live_onnx_threads() -> int:
    """onnxruntime's threads for DCNet in a live reenact stage: :data:`LIVE_ONNX_THREADS`, at most
    the cores this process may run on.

    The reconstruct stage takes about half as long as the reenact stage, so its core idles half of
    every frame; DCNet's convolutions, the reenact stage's largest single step, take it with a
    second thread: the generator alone on a 192² crop takes 7.9 instead of 13.3 ms. Live, on 2
    cores at 640x480 (bench/e2e_latency.py, no extra caller), the gain is inside the run-to-run
    spread: one caller 19.6 fps mean over 7 runs (16.6-21.0) against 19.1 over 6 (17.7-21.1) with
    one thread; of three callers offered, the two admitted got 9.7 and 9.9 fps against 8.8 and 8.9
    (one run each). Torch's other ops on two threads cost more than they gave (14.0 fps).
    """
    return min(LIVE_ONNX_THREADS, machine_cores())


def shorten_switch_interval() -> None:
    """Shorten the GIL switch interval, for a live process whose threads take turns on one GIL (see
    :func:`configure_live_threads`)."""
    sys.setswitchinterval(LIVE_SWITCH_INTERVAL_S)


def configure_live_threads() -> None:
    """Shorten the GIL switch interval and give torch and numba one thread each.

    Torch and numba are imported here, by the processes that compute, not where this module is:
    a process that only routes frames (a Ray session actor) never loads them (0.86 s of a core).

    Every torch op releases the GIL and must win it back; at Python's default 5 ms switch
    interval a stage thread queues behind the event loop and the other stage at every op (a
    convoy), so the interval is shortened. Measured on 2 cores (bench/e2e_latency.py, 20 s):
    13.7 fps at the defaults, 16.1 with the short interval, 18.6 with one torch thread too. With
    the stages in processes, a second numba thread per kernel cost more than it gave (13 -> 21 fps).
    """
    import numba
    import torch

    shorten_switch_interval()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
