"""Fast kernels against the torch reference on random meshes and on the ICT head."""

from __future__ import annotations

import copy
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from jr2net.camera import project
from jr2net.face_model import FaceModel
from jr2net.geometry import COVISIBILITY_TOLERANCE, depth_visible
from jr2net.kernels import cuda_runtime
from jr2net.kernels.correspond_torch import correspond_torch
from jr2net.kernels.dispatch import implementation, resolve_backend
from jr2net.kernels.fragments import Fragments
from jr2net.kernels.maps_torch import shade_maps_torch
from jr2net.kernels.rasterize_torch import rasterize_torch
from jr2net.kernels.warp_torch import warp_torch
from jr2net.params import FaceParams, ParamLayout
from jr2net.render import interpolate, render_face
from jr2net.warp import mesh_correspondence
from tests.kernels.conftest import device_of, rasterize_on
from tests.kernels.scenes import (
    POSES,
    RANDOM_HEIGHT,
    RANDOM_WIDTH,
    YAW_PAIRS,
    ict_correspondence,
    ict_screen,
    ict_shading_inputs,
    random_mesh,
    two_views,
)

FAST = [pytest.param("numba"), pytest.param("cuda", marks=pytest.mark.gpu)]


def assert_same_fragments(fast: Fragments, reference: Fragments) -> None:
    """tri_id equal except depth ties; barycentrics and depth within 1e-5."""
    differ = fast.tri_id != reference.tri_id
    if differ.any():
        tie = (fast.depth - reference.depth).abs() <= 1e-6 * reference.depth.abs()
        assert torch.all(tie[differ]), f"{int(differ.sum())} pixels pick another triangle"
    same = ~differ
    torch.testing.assert_close(fast.bary[same], reference.bary[same], atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.depth, reference.depth, atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("fast", FAST)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rasterize_random_meshes(fast: str, seed: int) -> None:
    screen, triangles = random_mesh(seed)
    reference = rasterize_torch(screen, triangles, RANDOM_HEIGHT, RANDOM_WIDTH)
    assert reference.mask.float().mean() > 0.3
    assert_same_fragments(rasterize_on(fast, screen, triangles, RANDOM_HEIGHT, RANDOM_WIDTH), reference)


@pytest.mark.parametrize("fast", FAST)
@pytest.mark.parametrize("pitch,yaw,expression", POSES)
def test_rasterize_ict_head(
    face_model: FaceModel, fast: str, pitch: float, yaw: float, expression: dict
) -> None:
    screen = ict_screen(face_model, pitch, yaw, expression, 256)
    reference = rasterize_torch(screen, face_model.triangles, 256, 256)
    assert_same_fragments(rasterize_on(fast, screen, face_model.triangles, 256, 256), reference)


@pytest.mark.parametrize("fast", FAST)
@pytest.mark.parametrize("pitch,yaw,expression", POSES)
def test_shade_maps_ict_head(
    face_model: FaceModel, fast: str, pitch: float, yaw: float, expression: dict
) -> None:
    args = ict_shading_inputs(face_model, pitch, yaw, expression, 128)
    reference = shade_maps_torch(*args)
    device = device_of(fast)
    result = implementation("shade_maps", fast)(*(a.to(device) for a in args))
    for name in ("normal", "light", "albedo", "image"):
        torch.testing.assert_close(getattr(result, name).cpu(), getattr(reference, name), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fast", FAST)
@pytest.mark.parametrize("yaws", YAW_PAIRS)
def test_warp_ict_head(face_model: FaceModel, fast: str, yaws: tuple[float, float]) -> None:
    inputs = two_views(face_model, *yaws)
    reference = warp_torch(inputs)
    assert reference.covisible.mean() > 0.1
    result = implementation("warp", fast)(inputs.to(device_of(fast)))
    assert torch.equal(result.valid.cpu(), reference.valid)
    assert torch.equal(result.covisible.cpu(), reference.covisible)
    torch.testing.assert_close(result.grid.cpu(), reference.grid, atol=1e-5, rtol=0)
    torch.testing.assert_close(result.image.cpu(), reference.image, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fast", FAST)
@pytest.mark.parametrize("yaws", YAW_PAIRS)
def test_mesh_correspondence_ict_head(face_model: FaceModel, fast: str, yaws: tuple[float, float]) -> None:
    """Through the facade, on the backend's device: the reference's points and co-visibility, and
    the reenactor's former torch path (interpolate, project, depth test) to float32 rounding."""
    inputs, tolerance = ict_correspondence(face_model, *yaws), COVISIBILITY_TOLERANCE
    device = device_of(fast)
    tri_id, bary = inputs.tri_id, inputs.bary
    fragments = Fragments(tri_id.to(device), bary.to(device), torch.zeros_like(bary[..., 0]).to(device))
    moved = (
        t.to(device) for t in (inputs.triangles, inputs.source_points, inputs.camera, inputs.source_depth)
    )
    found = mesh_correspondence(fragments, *moved, tolerance, fast)
    reference = correspond_torch(inputs, tolerance)
    assert torch.equal(found.points.cpu(), reference.points)
    assert torch.equal(found.covisible.cpu(), reference.covisible)
    on_mesh = tri_id >= 0
    interpolated = interpolate(inputs.source_points, inputs.triangles, tri_id, bary)
    former = project(interpolated.reshape(1, -1, 3), inputs.camera).reshape(found.points.shape)
    torch.testing.assert_close(reference.points[on_mesh], former[on_mesh], atol=1e-3, rtol=1e-5)
    visible = depth_visible(former, inputs.source_depth, tolerance) & on_mesh
    assert (reference.covisible[:, 0].bool() != visible).float().mean() < 1e-3


@pytest.mark.parametrize("backend", ["torch", *FAST])
def test_gradients_flow_on_every_backend(face_model: FaceModel, backend: str) -> None:
    device = device_of(backend)
    model = copy.deepcopy(face_model).to(device)
    params = FaceParams.neutral(ParamLayout.of(model), distance=60.0, focal=64 * 60 / 34)
    params = FaceParams(**{k: (v.to(device) if v is not None else None) for k, v in vars(params).items()})
    expression = params.expression.clone().requires_grad_()
    light = params.light.clone().requires_grad_()
    maps = render_face(model, params.replace(expression=expression, light=light), 64, 64, backend=backend)
    (maps.image.mean() + maps.depth.mean()).backward()
    assert expression.grad.abs().sum() > 0 and light.grad.abs().sum() > 0


def test_auto_takes_numba_on_cpu_and_cuda_needs_cuda_tensors() -> None:
    assert resolve_backend("auto", torch.device("cpu")) == "numba"
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        resolve_backend("cuda", torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown kernel backend"):
        resolve_backend("metal", torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine")
def test_missing_cuda_is_detected_once_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    cuda_runtime.cuda_unavailable_reason.cache_clear()
    with caplog.at_level(logging.INFO, logger="jr2net.kernels"):
        reason = cuda_runtime.cuda_unavailable_reason()
        cuda_runtime.cuda_unavailable_reason()
    assert reason is not None
    assert len([r for r in caplog.records if "CUDA kernels unavailable" in r.message]) == 1
    with pytest.raises(RuntimeError, match="CUDA kernels cannot run"):
        cuda_runtime.require_cuda()


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("source", sorted(p.name for p in cuda_runtime.SOURCES.glob("*.cu")))
def test_cuda_source_compiles_for_hopper(source: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            "nvcc",
            "-cubin",
            "-arch=sm_90",
            "--fmad=false",
            "-o",
            str(tmp_path / "k.cubin"),
            str(cuda_runtime.SOURCES / source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
