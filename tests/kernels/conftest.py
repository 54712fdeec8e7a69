"""Kernel backends under test: every test taking ``backend`` runs on torch, numba and (GPU) CUDA."""

from __future__ import annotations

import pytest
import torch

from jr2net.kernels.dispatch import implementation
from jr2net.kernels.fragments import Fragments

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
