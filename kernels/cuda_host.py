"""Host build of the CUDA kernels: the very ``cuda/*.cu`` files compiled for the CPU and launched there.

Machines without a GPU (CI) still execute the CUDA sources: each ``.cu`` is compiled by the system
C++ compiler into a shared library, with ``cuda/host/cuda_host.h`` standing in for the CUDA
built-ins, and :class:`HostLauncher` runs a launch there with the grid :func:`cuda_runtime.launch`
uses (``grid_blocks(count)`` blocks of ``THREADS``), every (block, thread) in turn, in order or in
a seeded random order. It is a :class:`cuda_runtime.Launch`, so the ``*_cuda`` modules' own
argument lists run through it unchanged. Threads run one after another: a race can show only
through the order, never through two threads at once.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from jr2net.kernels.cuda_runtime import SOURCES, THREADS, grid_blocks

HEADER = SOURCES / "host" / "cuda_host.h"
# One rounding per float operation, in float32: no FMA contraction, no fast math (see the header).
FLAGS = ("-O2", "-shared", "-fPIC", "-std=c++17", "-ffp-contract=off", "-fno-fast-math")
COMPILERS = ("c++", "g++", "clang++")
_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(')


def host_compiler() -> str | None:
    """The C++ compiler to use: ``$CXX``, else the first of :data:`COMPILERS` on PATH; None if none."""
    return os.environ.get("CXX") or next(filter(None, map(shutil.which, COMPILERS)), None)


def kernel_names(source: Path) -> list[str]:
    """The ``extern "C" __global__`` kernels a ``.cu`` file defines, in order."""
    return _KERNEL.findall(source.read_text())


def build_host_library(source: Path, directory: Path, compiler: str) -> Path:
    """Compile ``source`` for the host into ``directory/<stem>.so``.

    A small unity file includes the ``.cu`` itself (after the header, ``-include``) and adds the
    exported launcher of each of its kernels; ``compiler`` may carry words of its own (``ccache g++``);
    a failed build raises with the compiler's message.
    """
    unity = directory / f"{source.stem}_host.cpp"
    trampolines = "".join(f"JR2NET_HOST_KERNEL({name})\n" for name in kernel_names(source))
    unity.write_text(f'#include "{source.resolve()}"\n{trampolines}')
    library = directory / f"{source.stem}.so"
    command = [*shlex.split(compiler), *FLAGS, "-include", str(HEADER), "-o", str(library), str(unity)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"host build of {source.name} failed ({' '.join(command)}):\n{result.stderr}")
    return library


def build_host_kernels(directory: Path, compiler: str, sources: Path = SOURCES) -> dict[str, Path]:
    """Every ``.cu`` of ``sources`` built for the host: source file name -> shared library."""
    return {cu.name: build_host_library(cu, directory, compiler) for cu in sorted(sources.glob("*.cu"))}


def launch_order(blocks: int, seed: int | None) -> np.ndarray:
    """Flat thread ids ``block * THREADS + thread`` of a grid, (blocks · THREADS,) int64: in order for
    ``seed=None``, else a seeded permutation (blocks in random order, their threads interleaved)."""
    ids = np.arange(blocks * THREADS, dtype=np.int64)
    return ids if seed is None else np.random.default_rng(seed).permutation(ids)


def _kind(value: Any) -> str:
    """The kind of a launch argument as the header's ``jr2net_host_kind`` writes a parameter's."""
    if isinstance(value, Tensor):
        return "p" + ("f" if value.dtype.is_floating_point else "i") + str(value.element_size())
    return ("f" if value.dtype.kind == "f" else "i") + str(value.dtype.itemsize)


def _value(value: Any) -> ctypes._SimpleCData:
    """The C value of a launch argument: a CPU tensor's data pointer or a numpy scalar."""
    if isinstance(value, Tensor):
        if value.device.type != "cpu" or not value.is_contiguous():
            raise ValueError(
                f"the host launch takes contiguous CPU tensors, got one on {value.device} "
                f"(contiguous: {value.is_contiguous()})"
            )
        return ctypes.c_void_p(value.data_ptr())
    if isinstance(value, np.generic):
        return np.ctypeslib.as_ctypes_type(value.dtype)(value)
    raise TypeError(
        f"launch arguments are tensors and numpy scalars, as for CuPy; got {type(value).__name__}"
    )


@functools.cache
def _library(path: Path) -> ctypes.CDLL:
    return ctypes.CDLL(str(path))


class HostLauncher:
    """:class:`cuda_runtime.Launch` on the CPU through host-built kernels.

    Args:
        libraries: source file name (``rasterize.cu``) -> its host build (:func:`build_host_kernels`).
        seed: ``None`` runs the threads in id order; an int, in that seed's random order.
    """

    def __init__(self, libraries: Mapping[str, Path], seed: int | None = None) -> None:
        self.libraries = dict(libraries)
        self.seed = seed

    def __call__(self, source: str, name: str, count: int, *args: Any) -> None:
        """Run kernel ``name`` of ``source`` once per item of ``count`` (and the grid's spare threads)."""
        if count == 0:
            return
        library = _library(self.libraries[source])
        signature_of = getattr(library, f"jr2net_host_signature_{name}")
        signature_of.restype = ctypes.c_char_p
        values = [_value(a) for a in args]
        expected, given = signature_of().decode().split(), [_kind(a) for a in args]
        if given != expected:
            raise TypeError(
                f"{source}:{name} takes ({', '.join(expected)}), launched with ({', '.join(given)})"
            )
        pointers = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
        blocks = grid_blocks(count)
        order = launch_order(blocks, self.seed)
        run = getattr(library, f"jr2net_host_launch_{name}")
        run.argtypes = [ctypes.c_void_p, ctypes.c_longlong, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p]
        run.restype = None
        run(order.ctypes.data, order.size, THREADS, blocks, pointers)
