"""The CUDA kernels, run on the CPU through their host build, against the numba twins and the torch
reference: host CUDA equals numba bit for bit in every launch order, and numba equals torch bit for
bit except for the shading maps' normalisation and SH sums, which torch orders differently.

The same ``.cu`` files and the same ``*_cuda`` argument lists run here as on a GPU; only the launch
differs (:class:`jr2net.kernels.cuda_host.HostLauncher`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
import torch

from jr2net.face_model import FaceModel
from jr2net.geometry import COVISIBILITY_TOLERANCE
from jr2net.kernels.correspond_cuda import launch_correspond
from jr2net.kernels.correspond_numba import correspond_numba
from jr2net.kernels.correspond_torch import Correspondence, CorrespondInputs, correspond_torch
from jr2net.kernels.cuda_host import HostLauncher
from jr2net.kernels.fragments import Fragments
from jr2net.kernels.maps_cuda import launch_shade_maps
from jr2net.kernels.maps_numba import shade_maps_numba
from jr2net.kernels.maps_torch import ShadedMaps, shade_maps_torch
from jr2net.kernels.rasterize_cuda import launch_rasterize
from jr2net.kernels.rasterize_numba import rasterize_numba
from jr2net.kernels.rasterize_torch import DEFAULT_NEAR, rasterize_torch
from jr2net.kernels.warp_cuda import launch_warp
from jr2net.kernels.warp_numba import warp_numba
from jr2net.kernels.warp_torch import DEFAULT_DEPTH_TOLERANCE, WarpInputs, WarpResult, warp_torch
from tests.kernels import scenes
from tests.kernels.conftest import assert_identical

SEEDS = (0, 1, 2)
ICT_SIZE = 256
RasterInputs = tuple[torch.Tensor, torch.Tensor, int, int]  # screen (B, V, 3), triangles (F, 3), H, W

RASTER_SCENES: dict[str, Callable[[FaceModel], RasterInputs]] = {
    **{
        f"random-{s}": lambda _, s=s: (*scenes.random_mesh(s), scenes.RANDOM_HEIGHT, scenes.RANDOM_WIDTH)
        for s in SEEDS
    },
    "tied-0": lambda _: (*scenes.tied_mesh(0), scenes.RANDOM_HEIGHT, scenes.RANDOM_WIDTH),
    **{
        f"ict-pose{i}": lambda model, pose=pose: (
            scenes.ict_screen(model, *pose, ICT_SIZE),
            model.triangles,
            ICT_SIZE,
            ICT_SIZE,
        )
        for i, pose in enumerate(scenes.POSES)
    },
}
SHADING_SCENES: dict[str, Callable[[FaceModel], tuple[torch.Tensor, ...]]] = {
    **{f"random-{s}": lambda _, s=s: scenes.random_shading_inputs(s) for s in SEEDS},
    **{
        f"ict-pose{i}": lambda model, pose=pose: scenes.ict_shading_inputs(model, *pose, 128)
        for i, pose in enumerate(scenes.POSES)
    },
}
WARP_SCENES: dict[str, Callable[[FaceModel], WarpInputs]] = {
    **{f"random-{s}": lambda _, s=s: scenes.random_warp_inputs(s) for s in SEEDS},
    **{
        f"ict-yaws{i}": lambda model, yaws=yaws: scenes.two_views(model, *yaws)
        for i, yaws in enumerate(scenes.YAW_PAIRS)
    },
}

CORRESPOND_SCENES: dict[str, Callable[[FaceModel], CorrespondInputs]] = {
    **{f"random-{s}": lambda _, s=s: scenes.random_correspond_inputs(s) for s in SEEDS},
    **{
        f"ict-yaws{i}": lambda model, yaws=yaws: scenes.ict_correspondence(model, *yaws)
        for i, yaws in enumerate(scenes.YAW_PAIRS)
    },
}


class Case(NamedTuple):
    """One scene's inputs (the op's positional arguments) and the numba twin's result."""

    inputs: tuple[Any, ...]
    numba: Any


@pytest.fixture(scope="module", params=list(RASTER_SCENES))
def raster_case(face_model: FaceModel, request: pytest.FixtureRequest) -> Case:
    inputs = RASTER_SCENES[request.param](face_model)
    return Case(inputs, rasterize_numba(*inputs))


@pytest.fixture(scope="module", params=list(SHADING_SCENES))
def shading_case(face_model: FaceModel, request: pytest.FixtureRequest) -> Case:
    inputs = SHADING_SCENES[request.param](face_model)
    return Case(inputs, shade_maps_numba(*inputs))


@pytest.fixture(scope="module", params=list(WARP_SCENES))
def warp_case(face_model: FaceModel, request: pytest.FixtureRequest) -> Case:
    inputs = (WARP_SCENES[request.param](face_model),)
    return Case(inputs, warp_numba(*inputs))


@pytest.fixture(scope="module", params=list(CORRESPOND_SCENES))
def correspond_case(face_model: FaceModel, request: pytest.FixtureRequest) -> Case:
    inputs = (CORRESPOND_SCENES[request.param](face_model), COVISIBILITY_TOLERANCE)
    return Case(inputs, correspond_numba(*inputs))


def test_numba_rasterizer_is_the_torch_reference_bit_for_bit(raster_case: Case) -> None:
    reference: Fragments = rasterize_torch(*raster_case.inputs)
    assert reference.mask.float().mean() > 0.3
    assert_identical(raster_case.numba, reference)


def test_host_cuda_rasterizer_is_numba_bit_for_bit(raster_case: Case, host_launcher: HostLauncher) -> None:
    assert_identical(launch_rasterize(host_launcher, *raster_case.inputs, DEFAULT_NEAR), raster_case.numba)


def test_numba_shading_is_the_torch_reference_up_to_its_sum_order(shading_case: Case) -> None:
    """Albedo bit for bit; torch normalises and sums the SH terms in another order: a few ulp."""
    reference: ShadedMaps = shade_maps_torch(*shading_case.inputs)
    numba: ShadedMaps = shading_case.numba
    assert torch.equal(numba.albedo, reference.albedo)
    torch.testing.assert_close(numba.normal, reference.normal, atol=1e-6, rtol=0)
    torch.testing.assert_close(numba.light, reference.light, atol=1e-5, rtol=0)
    torch.testing.assert_close(numba.image, reference.image, atol=1e-5, rtol=0)


def test_host_cuda_shading_is_numba_bit_for_bit(shading_case: Case, host_launcher: HostLauncher) -> None:
    assert_identical(launch_shade_maps(host_launcher, *shading_case.inputs), shading_case.numba)


def test_numba_warp_is_the_torch_reference_bit_for_bit(warp_case: Case) -> None:
    reference: WarpResult = warp_torch(*warp_case.inputs)
    assert reference.covisible.mean() > 0.04
    assert_identical(warp_case.numba, reference)


def test_host_cuda_warp_is_numba_bit_for_bit(warp_case: Case, host_launcher: HostLauncher) -> None:
    assert_identical(launch_warp(host_launcher, *warp_case.inputs, DEFAULT_DEPTH_TOLERANCE), warp_case.numba)


def test_numba_correspondence_is_the_torch_reference_bit_for_bit(correspond_case: Case) -> None:
    reference: Correspondence = correspond_torch(*correspond_case.inputs)
    on_mesh = (correspond_case.inputs[0].tri_id >= 0).float().mean()
    seen = reference.covisible.mean()
    assert 0.02 < seen < on_mesh, "some pixels seen by the source, some not"
    assert_identical(correspond_case.numba, reference)


def test_host_cuda_correspondence_is_numba_bit_for_bit(
    correspond_case: Case, host_launcher: HostLauncher
) -> None:
    assert_identical(launch_correspond(host_launcher, *correspond_case.inputs), correspond_case.numba)
