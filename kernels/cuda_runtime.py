"""CuPy loading for the CUDA kernels: one place, imported lazily, checked once.

CuPy (and numba-cuda) import fine on machines without a GPU and fail on first use, so
:func:`cuda_unavailable_reason` actually runs a tiny kernel once and caches the answer; the CPU
path never touches CuPy. Kernels run on torch's current CUDA stream on tensors shared zero-copy
through ``__cuda_array_interface__``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

LOG = logging.getLogger("jr2net.kernels")
SOURCES = Path(__file__).resolve().parent / "cuda"
COMPILE_OPTIONS = ("--std=c++17", "--fmad=false")
THREADS = 256


@functools.cache
def cuda_unavailable_reason() -> str | None:
    """``None`` when CUDA kernels can run here, else why not (logged once)."""
    if not torch.cuda.is_available():
        reason = "torch sees no CUDA device"
    else:
        try:
            import cupy

            probe = cupy.arange(4, dtype=cupy.float32) * 2
            reason = None if float(probe.sum()) == 12.0 else "CuPy returned a wrong result"
        except Exception as error:  # CuPy raises many kinds of errors without a working driver
            reason = f"CuPy unusable: {type(error).__name__}: {error}"
    if reason is not None:
        LOG.info("CUDA kernels unavailable (%s); the CPU kernels are used", reason)
    return reason


def require_cuda() -> None:
    """Raise a clear error when the CUDA kernels cannot run here."""
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(
            f"the CUDA kernels cannot run: {reason} (install the 'gpu' extra on a CUDA machine)"
        )


@functools.cache
def kernel(source: str, name: str) -> Any:
    """A compiled ``cupy.RawKernel`` from ``kernels/cuda/<source>`` (compiled once per process)."""
    import cupy

    module = cupy.RawModule(code=(SOURCES / source).read_text(), options=COMPILE_OPTIONS)
    return module.get_function(name)


def as_cupy(tensor: Tensor) -> Any:
    """Zero-copy CuPy view of a contiguous CUDA tensor."""
    import cupy

    return cupy.asarray(tensor.contiguous())


class Launch(Protocol):
    """How the ``*_cuda`` modules run a kernel: :func:`launch` (CuPy, on a GPU) or
    :class:`jr2net.kernels.cuda_host.HostLauncher` (the host build, on the CPU)."""

    def __call__(self, source: str, name: str, count: int, *args: Any) -> None:
        """Run kernel ``name`` of ``cuda/<source>`` with one thread per item of ``count``; ``args``
        are tensors (passed as pointers) and numpy scalars of the kernel's parameter types."""


def grid_blocks(count: int) -> int:
    """Blocks of :data:`THREADS` in the 1-D grid of a launch over ``count`` items."""
    return (count + THREADS - 1) // THREADS


def launch(source: str, name: str, count: int, *args: Any) -> None:
    """Launch ``name`` with one thread per item on torch's current stream; tensors pass zero-copy."""
    import cupy

    if count == 0:
        return
    converted = tuple(as_cupy(a) if isinstance(a, Tensor) else a for a in args)
    blocks = grid_blocks(count)
    with cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
        kernel(source, name)((blocks,), (THREADS,), converted)
