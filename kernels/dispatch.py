"""Backend choice for the kernels: ``auto``, ``cuda``, ``numba`` or ``torch``.

``auto`` takes CUDA for CUDA tensors when CuPy works, numba for CPU tensors (the torch reference
when numba cannot be imported, said once in a log line). Implementations are imported on first
use, so the CPU path never imports CuPy and ``--help`` never compiles numba code.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import torch

from jr2net.kernels.cuda_runtime import cuda_unavailable_reason

LOG = logging.getLogger("jr2net.kernels")
BACKENDS = ("auto", "cuda", "numba", "torch")
OPS = ("rasterize", "shade_maps", "warp", "correspond")
_MODULES = {"rasterize": "rasterize", "shade_maps": "maps", "warp": "warp", "correspond": "correspond"}


@functools.cache
def numba_unavailable_reason() -> str | None:
    """``None`` when numba imports, else why not (logged once)."""
    try:
        importlib.import_module("numba")
    except ImportError as error:
        LOG.warning("numba unavailable (%s); the slower torch reference kernels are used on the CPU", error)
        return str(error)
    return None


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend for tensors on ``device``; a clear error when it cannot run there."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}; choose from {BACKENDS}")
    if backend == "auto":
        if device.type == "cuda":
            return "cuda" if cuda_unavailable_reason() is None else "torch"
        return "numba" if numba_unavailable_reason() is None else "torch"
    if backend in _REQUIREMENTS:
        label, device_type, unavailable_reason = _REQUIREMENTS[backend]
        if device.type != device_type:
            raise ValueError(f"backend {backend!r} needs {label} tensors, got tensors on {device}")
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"backend {backend!r} cannot run: {reason}")
    return backend


# backend -> (tensor kind in messages, torch device type, why it cannot run here or None)
_REQUIREMENTS: dict[str, tuple[str, str, Callable[[], str | None]]] = {
    "cuda": ("CUDA", "cuda", cuda_unavailable_reason),
    "numba": ("CPU", "cpu", numba_unavailable_reason),
}


def implementation(op: str, backend: str) -> Callable[..., Any]:
    """The function implementing ``op`` (rasterize, shade_maps, warp, correspond) on a concrete backend."""
    if op not in OPS:
        raise ValueError(f"unknown kernel op {op!r}; choose from {OPS}")
    if backend not in BACKENDS[1:]:
        raise ValueError(f"not a concrete backend: {backend!r}")
    module = importlib.import_module(f"jr2net.kernels.{_MODULES[op]}_{backend}")
    function = getattr(module, f"{op}_{backend}")
    return _serialised(function) if backend == "numba" else function


_NUMBA_LOCK = threading.Lock()


@functools.cache
def _serialised(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run under one process-wide lock: numba's parallel kernels must not be entered
    from two threads at once where numba uses its workqueue threading layer (no TBB, no OpenMP)."""

    @functools.wraps(function)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _NUMBA_LOCK:
            return function(*args, **kwargs)

    return locked
