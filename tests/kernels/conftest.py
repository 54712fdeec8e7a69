"""Kernel backends under test: every test taking ``backend`` runs on torch, numba and (GPU) CUDA; the
CUDA kernels' host build, compiled once per session, and its launchers in and out of order."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from jr2net.kernels.cuda_host import HostLauncher, build_host_kernels, host_compiler
from jr2net.kernels.dispatch import implementation
from jr2net.kernels.fragments import Fragments

LAUNCH_SEEDS = [  # the host launch orders every host-run kernel is tested in
    pytest.param(None, id="in-order"),
    pytest.param(1, id="shuffled-1"),
    pytest.param(2, id="shuffled-2"),
]
KERNEL_BACKENDS = [
    pytest.param("torch"),
    pytest.param("numba"),
    pytest.param("cuda", marks=pytest.mark.gpu),
]


@pytest.fixture(params=KERNEL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def device_of(backend: str) -> torch.device:
    return torch.device("cuda" if backend == "cuda" else "cpu")


def rasterize_on(
    backend: str, screen: torch.Tensor, triangles: torch.Tensor, height: int, width: int
) -> Fragments:
    """Rasterize with ``backend`` on its device; the fragments come back on the CPU."""
    device = device_of(backend)
    fragments = implementation("rasterize", backend)(screen.to(device), triangles.to(device), height, width)
    return Fragments(*(t.cpu() for t in (fragments.tri_id, fragments.bary, fragments.depth)))


@pytest.fixture(scope="session")
def cxx() -> str:
    """The C++ compiler of the CUDA kernels' host build: skips without one, fails instead on CI."""
    compiler = host_compiler()
    if compiler is None:
        message = "no C++ compiler (c++, g++, clang++ or $CXX) for the host build of the CUDA kernels"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return compiler


@pytest.fixture(scope="session")
def host_kernels(cxx: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every ``kernels/cuda/*.cu`` built for the host, once per session: file name -> library."""
    return build_host_kernels(tmp_path_factory.mktemp("cuda_host"), cxx)


@pytest.fixture(params=LAUNCH_SEEDS)
def host_launcher(host_kernels: dict[str, Path], request: pytest.FixtureRequest) -> HostLauncher:
    """The host build's launcher, threads in id order or in a seeded random order."""
    return HostLauncher(host_kernels, request.param)


def assert_identical(actual: Any, expected: Any) -> None:
    """Every tensor field of two result dataclasses equal bit for bit, or which field differs and how."""
    for field in dataclasses.fields(expected):
        got, want = getattr(actual, field.name), getattr(expected, field.name)
        if not torch.equal(got, want):
            differ = got != want
            worst = float((got.double() - want.double()).abs().max())
            count = f"{int(differ.sum())} of {differ.numel()}"
            raise AssertionError(f"{field.name}: {count} values differ (max |difference| {worst})")
