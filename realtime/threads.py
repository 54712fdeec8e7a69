"""Thread settings of a live process: the stages overlap on the cores, each on one thread."""

from __future__ import annotations

import sys

import numba
import torch

LIVE_SWITCH_INTERVAL_S = 0.0005


def configure_live_threads() -> None:
    """Shorten the GIL switch interval and give torch and numba one thread each.

    Every torch op releases the GIL and must win it back; at Python's default 5 ms switch
    interval a stage thread queues behind the event loop and the other stage at every op (a
    convoy), so the interval is shortened. Measured on 2 cores (bench/e2e_latency.py, 20 s):
    13.7 fps at the defaults, 16.1 with the short interval, 18.6 with one torch thread too. With
    the stages in processes, a second numba thread per kernel cost more than it gave (13 -> 21 fps).
    """
    sys.setswitchinterval(LIVE_SWITCH_INTERVAL_S)
    torch.set_num_threads(1)
    numba.set_num_threads(1)
