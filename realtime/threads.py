"""Thread settings of a live process: the stages overlap on the cores, each on one thread."""

from __future__ import annotations

import os
import sys

import numba
import torch

LIVE_SWITCH_INTERVAL_S = 0.0005
LIVE_ONNX_THREADS = 2


def live_onnx_threads() -> int:
    """onnxruntime's threads for DCNet in a live reenact stage: :data:`LIVE_ONNX_THREADS`, at most
    the machine's cores.

    The reconstruct stage takes about half as long as the reenact stage, so its core idles half of
    every frame; DCNet's convolutions, the reenact stage's largest single step, take it with a
    second thread. On 2 cores, 640x480, one caller (bench/e2e_latency.py, no extra caller,
    alternating runs): 18.4 and 18.5 fps with one thread, 19.7, 19.6 and 21.0 with two; the
    generator alone on a 192² crop 13.3 -> 7.9 ms. Torch's other ops on two threads cost more than
    they gave (14.0 fps).
    """
    return max(1, min(LIVE_ONNX_THREADS, os.cpu_count() or 1))


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
