"""Shared benchmark plumbing: warm-up, synchronised timing, median/p99, and the JSON envelope."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch

from jr2net.provenance import checkout_commit

VERSIONED = ("torch", "numpy", "numba", "cupy-cuda13x", "onnxruntime", "mediapipe", "av", "aiortc")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> dict[str, float]:
    """Median and p99 wall time of ``fn`` in ms after ``warmup`` calls, synchronising each call."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    p99_index = min(len(samples) - 1, round(0.99 * (len(samples) - 1)))
    return {"median_ms": statistics.median(samples), "p99_ms": samples[p99_index], "repeats": repeats}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        model = names[0] if names else model
    return f"{model}, {len(os.sched_getaffinity(0))} cores usable, torch threads {torch.get_num_threads()}"


def write_report(
    path: Path, runs: list[dict], devices: list[torch.device], extra: dict | None = None
) -> dict:
    """Write ``{"commit", "versions", "device", "runs", **extra}`` as JSON and return it."""
    report = {
        "commit": checkout_commit(),
        "versions": versions(),
        "device": "; ".join(device_description(d) for d in devices),
        "runs": runs,
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report
