"""The host build of the CUDA kernels itself: its launch grid and orders, what it refuses to build or
run, and that the parity tests catch a broken kernel (mutated copies of the ``.cu`` files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.kernels.cuda_host import HostLauncher, build_host_library
from jr2net.kernels.cuda_runtime import SOURCES, THREADS, grid_blocks
from jr2net.kernels.rasterize_cuda import launch_rasterize
from jr2net.kernels.rasterize_numba import rasterize_numba
from jr2net.kernels.rasterize_torch import DEFAULT_NEAR
from tests.kernels.conftest import assert_identical
from tests.kernels.scenes import RANDOM_HEIGHT, RANDOM_WIDTH, random_mesh, tied_mesh

RECORD = """
extern "C" __global__ void record(long long* ran, long long* next, unsigned int* grid) {
    ran[(*next)++] = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    grid[0] = blockDim.x;
    grid[1] = gridDim.x;
}
"""


def build_text(tmp_path: Path, cxx: str, name: str, text: str) -> dict[str, Path]:
    """``text`` saved as ``tmp_path/name`` and built for the host: {name: library}."""
    source = tmp_path / name
    source.write_text(text)
    return {name: build_host_library(source, tmp_path, cxx)}


def mutated(tmp_path: Path, cxx: str, source: str, old: str, new: str) -> dict[str, Path]:
    """The host build of ``kernels/cuda/<source>`` with its one ``old`` replaced by ``new``."""
    text = (SOURCES / source).read_text()
    assert text.count(old) == 1, f"{old!r} is not in {source} exactly once"
    return build_text(tmp_path, cxx, source, text.replace(old, new))


def launched_order(library: dict[str, Path], count: int, seed: int | None) -> tuple[np.ndarray, list[int]]:
    """The flat thread ids in the order the record kernel ran them, and (blockDim.x, gridDim.x)."""
    ran = torch.full((grid_blocks(count) * THREADS,), -1, dtype=torch.int64)
    next_slot = torch.zeros(1, dtype=torch.int64)
    grid = torch.zeros(2, dtype=torch.int32)
    HostLauncher(library, seed)("record.cu", "record", count, ran, next_slot, grid)
    return ran.numpy(), grid.tolist()


def test_a_launch_runs_every_thread_of_the_cupy_grid_past_the_count(tmp_path: Path, cxx: str) -> None:
    library = build_text(tmp_path, cxx, "record.cu", RECORD)
    ran, grid = launched_order(library, 600, None)
    assert grid == [THREADS, 3]
    assert np.array_equal(ran, np.arange(3 * THREADS))
    shuffled, _ = launched_order(library, 600, 1)
    assert np.array_equal(np.sort(shuffled), ran) and not np.array_equal(shuffled, ran)
    first_block = shuffled[:THREADS] // THREADS
    assert len(set(first_block.tolist())) == 3, "blocks interleave in a shuffled launch"
    assert np.array_equal(launched_order(library, 600, 1)[0], shuffled)
    assert not np.array_equal(launched_order(library, 600, 2)[0], shuffled)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("__shared__ float cache[256]; cache[threadIdx.x] = 1.0f;", "__shared__ memory needs a GPU"),
        ("__syncthreads();", "__syncthreads needs a GPU"),
    ],
)
def test_a_kernel_that_needs_threads_together_is_not_built(
    tmp_path: Path, cxx: str, statement: str, message: str
) -> None:
    kernel = f'extern "C" __global__ void together(float* out) {{ {statement} out[0] = 1.0f; }}\n'
    with pytest.raises(RuntimeError, match="host build of together.cu failed") as error:
        build_text(tmp_path, cxx, "together.cu", kernel)
    assert message in str(error.value)


def test_a_launch_with_other_argument_types_than_the_kernel_is_refused(host_kernels: dict[str, Path]) -> None:
    screen, triangles = random_mesh(0)
    keys = torch.zeros(2 * RANDOM_HEIGHT * RANDOM_WIDTH, dtype=torch.int64)
    sizes = (np.int64(2), np.int64(screen.shape[1]), np.int64(triangles.shape[0]))
    image = (np.int32(RANDOM_HEIGHT), np.int32(RANDOM_WIDTH), np.float32(DEFAULT_NEAR))
    with pytest.raises(
        TypeError, match=r"rasterize_triangles takes \(pf4, pi8, i8, i8, i8, i4, i4, f4, pi8\)"
    ):
        HostLauncher(host_kernels)(
            "rasterize.cu", "rasterize_triangles", 800, screen, triangles.int(), *sizes, *image, keys
        )


def test_parity_fails_when_the_depth_key_loses_the_triangle_id(
    tmp_path: Path, cxx: str, host_kernels: dict[str, Path]
) -> None:
    broken = mutated(tmp_path, cxx, "rasterize.cu", "<< 32) | (unsigned long long)f;", "<< 32);")
    screen, triangles = random_mesh(0)
    fragments = launch_rasterize(
        HostLauncher({**host_kernels, **broken}), screen, triangles, RANDOM_HEIGHT, RANDOM_WIDTH, DEFAULT_NEAR
    )
    with pytest.raises(AssertionError, match="tri_id"):
        assert_identical(fragments, rasterize_numba(screen, triangles, RANDOM_HEIGHT, RANDOM_WIDTH))


def test_a_depth_test_that_keeps_the_first_of_equals_fails_only_out_of_order(
    tmp_path: Path, cxx: str, host_kernels: dict[str, Path]
) -> None:
    """A plain first-writer-wins depth test is right when triangles run in id order; the shuffled
    launches are what catch it on the tied mesh (every pixel covered twice at equal depth)."""
    pixel = "image[(long long)row * width + col]"
    broken = mutated(
        tmp_path,
        cxx,
        "rasterize.cu",
        "atomicMin(image + (long long)row * width + col, key);",
        f"if ((key >> 32) < ({pixel} >> 32)) {pixel} = key;",
    )
    screen, triangles = tied_mesh(0)
    expected = rasterize_numba(screen, triangles, RANDOM_HEIGHT, RANDOM_WIDTH)
    kernels = {**host_kernels, **broken}

    def run(seed: int | None) -> object:
        launcher = HostLauncher(kernels, seed)
        return launch_rasterize(launcher, screen, triangles, RANDOM_HEIGHT, RANDOM_WIDTH, DEFAULT_NEAR)

    assert_identical(run(None), expected)
    for seed in (1, 2):
        with pytest.raises(AssertionError, match="tri_id"):
            assert_identical(run(seed), expected)
