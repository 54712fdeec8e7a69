"""Every rasterizer backend against analytic values and a brute-force z-buffer."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from jr2net.camera import euler_to_matrix, intrinsics, model_to_camera, project, unproject
from jr2net.face_model import FaceModel
from jr2net.kernels.fragments import Fragments
from jr2net.kernels.rasterize_numba import rasterize_numba
from jr2net.kernels.rasterize_torch import interpolate, rasterize_torch, screen_barycentrics
from jr2net.shapes import ShapeError
from tests.kernels.conftest import rasterize_on
from tests.meshes import icosphere, quad

TRIANGLE = torch.tensor([[[4.2, 3.1, 2.0], [27.5, 9.8, 2.0], [11.3, 28.4, 2.0]]])
ONE = torch.tensor([[0, 1, 2]])


def _analytic_barycentrics(corners: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Solve p = a·l0 + b·l1 + c·l2 in float64: (3, 2) corners, (N,) points -> (N, 3)."""
    matrix = torch.cat([corners.double().T, torch.ones(1, 3, dtype=torch.float64)])
    rhs = torch.stack([x.double(), y.double(), torch.ones_like(x, dtype=torch.float64)])
    return torch.linalg.solve(matrix, rhs).T


def test_single_triangle_coverage_and_barycentrics(backend: str) -> None:
    fragments = rasterize_on(backend, TRIANGLE, ONE, 32, 32)
    ys, xs = torch.meshgrid(torch.arange(32) + 0.5, torch.arange(32) + 0.5, indexing="ij")
    exact = _analytic_barycentrics(TRIANGLE[0, :, :2], xs.flatten(), ys.flatten())
    inside = (exact >= 0).all(dim=1).reshape(32, 32)
    assert torch.equal(fragments.mask[0], inside)
    assert inside.sum() > 200
    torch.testing.assert_close(
        fragments.bary[0][inside].double(), exact.reshape(32, 32, 3)[inside], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(fragments.depth[0][inside], torch.full((int(inside.sum()),), 2.0))
    assert torch.all(fragments.tri_id[0][~inside] == -1) and torch.all(fragments.depth[0][~inside] == 0)


def test_barycentrics_are_perspective_correct(backend: str) -> None:
    matrix = intrinsics(torch.tensor([40.0]), 48, 48)
    points = torch.tensor([[[-1.0, -1.0, 4.0], [1.5, -0.5, 9.0], [0.0, 1.5, 6.0]]])
    fragments = rasterize_on(backend, project(points, matrix), ONE, 48, 48)
    mask = fragments.mask[0]
    ys, xs = torch.meshgrid(torch.arange(48) + 0.5, torch.arange(48) + 0.5, indexing="ij")
    screen = torch.stack([xs[mask], ys[mask], fragments.depth[0][mask]], dim=-1)[None]
    surface = unproject(screen, matrix)[0]
    blended = fragments.bary[0][mask] @ points[0]
    torch.testing.assert_close(surface, blended, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_nearer_triangle_wins(order: tuple[int, int], backend: str) -> None:
    near = [[2.0, 2.0, 3.0], [30.0, 2.0, 3.0], [2.0, 30.0, 3.0]]
    far = [[1.0, 1.0, 5.0], [31.0, 1.0, 5.0], [16.0, 31.0, 5.0]]
    vertices = torch.tensor([[*(near if order[0] == 0 else far), *(far if order[0] == 0 else near)]])
    triangles = torch.tensor([[0, 1, 2], [3, 4, 5]])
    fragments = rasterize_on(backend, vertices, triangles, 32, 32)
    near_id = 0 if order[0] == 0 else 1
    assert fragments.tri_id[0, 5, 5] == near_id
    assert fragments.depth[0, 5, 5] == pytest.approx(3.0, rel=1e-6)
    assert fragments.tri_id[0, 28, 16] == 1 - near_id


def test_equal_depth_goes_to_lower_id(backend: str) -> None:
    vertices = torch.cat([TRIANGLE, TRIANGLE], dim=1)
    fragments = rasterize_on(backend, vertices, torch.tensor([[3, 4, 5], [0, 1, 2]]), 32, 32)
    assert set(fragments.tri_id[fragments.mask].tolist()) == {0}


def test_depth_of_a_tilted_plane_matches_closed_form(backend: str) -> None:
    """Plane n·X = d seen through K: depth(p) = d / (n · K⁻¹ p)."""
    normal, offset = torch.tensor([0.2, -0.3, 1.0]), 10.0
    corners = []
    for x, y in [(-6.0, -6.0), (6.0, -6.0), (6.0, 6.0), (-6.0, 6.0)]:
        z = (offset - normal[0] * x - normal[1] * y) / normal[2]
        corners.append([x, y, float(z)])
    vertices, triangles = quad(torch.tensor(corners))
    matrix = intrinsics(torch.tensor([30.0]), 40, 40)
    fragments = rasterize_on(backend, project(vertices, matrix), triangles, 40, 40)
    ys, xs = torch.meshgrid(torch.arange(40) + 0.5, torch.arange(40) + 0.5, indexing="ij")
    rays = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1) @ torch.linalg.inv(matrix[0]).T
    expected = offset / (rays @ normal)
    mask = fragments.mask[0]
    assert mask.float().mean() > 0.5
    torch.testing.assert_close(fragments.depth[0][mask], expected[mask], atol=0, rtol=1e-5)


def test_normal_map_of_a_sphere(backend: str) -> None:
    points, triangles = icosphere(4)
    centre = torch.tensor([0.0, 0.0, 5.0])
    size, focal = 64, 90.0
    matrix = intrinsics(torch.tensor([focal]), size, size)
    screen = project((points.float() * 1.5 + centre)[None], matrix)
    fragments = rasterize_on(backend, screen, triangles, size, size)
    normals = interpolate(points.float()[None], triangles, fragments.tri_id, fragments.bary)
    normals = torch.nn.functional.normalize(normals, dim=-1)[0]
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    rays = torch.nn.functional.normalize(
        torch.stack([(xs - size / 2) / focal, (ys - size / 2) / focal, torch.ones_like(xs)], -1), dim=-1
    )
    along = rays @ centre
    discriminant = along**2 - (centre @ centre - 1.5**2)
    hit = discriminant > 0
    distance = along - discriminant.clamp(min=0).sqrt()
    expected = (rays * distance[..., None] - centre) / 1.5
    interior = fragments.mask[0] & hit & (discriminant > 0.3)
    assert interior.sum() > 400
    angle = torch.rad2deg(torch.acos((normals[interior] * expected[interior]).sum(-1).clamp(-1, 1)))
    assert angle.mean() < 1.0 and angle.max() < 4.0
    assert torch.equal(fragments.mask[0] & (discriminant > 0.3), hit & (discriminant > 0.3))


def test_culls_behind_camera_degenerate_and_offscreen(backend: str) -> None:
    behind = torch.tensor([[[4.0, 4.0, -1.0], [20.0, 4.0, 2.0], [4.0, 20.0, 2.0]]])
    degenerate = torch.tensor([[[4.0, 4.0, 2.0], [10.0, 10.0, 2.0], [16.0, 16.0, 2.0]]])
    offscreen = TRIANGLE + torch.tensor([100.0, 0.0, 0.0])
    for vertices in (behind, degenerate, offscreen):
        assert not rasterize_on(backend, vertices, ONE, 32, 32).mask.any()
    partial = rasterize_on(backend, TRIANGLE - torch.tensor([10.0, 10.0, 0.0]), ONE, 32, 32)
    assert 0 < int(partial.mask.sum()) < int(rasterize_on(backend, TRIANGLE, ONE, 32, 32).mask.sum())


def test_empty_mesh(backend: str) -> None:
    fragments = rasterize_on(backend, torch.zeros(2, 0, 3), torch.zeros(0, 3, dtype=torch.int64), 8, 12)
    assert fragments.tri_id.shape == (2, 8, 12) and not fragments.mask.any()


@pytest.mark.parametrize("rasterizer", [rasterize_torch, rasterize_numba])
def test_rejects_bad_inputs(rasterizer: Callable[..., Fragments]) -> None:
    with pytest.raises(ShapeError, match="'screen_vertices'"):
        rasterizer(torch.zeros(3, 3), ONE, 8, 8)
    with pytest.raises(ShapeError, match="float32"):
        rasterizer(TRIANGLE.double(), ONE, 8, 8)
    with pytest.raises(ValueError, match="outside"):
        rasterizer(TRIANGLE, torch.tensor([[0, 1, 3]]), 8, 8)
    with pytest.raises(ValueError, match="positive"):
        rasterizer(TRIANGLE, ONE, 0, 8)


def _ict_screen(face_model: FaceModel, yaw: float, jaw: float, size: int) -> torch.Tensor:
    identity = torch.zeros(1, face_model.identity_count)
    vertices = face_model(identity, face_model.expression_vector({"jawOpen": jaw})[None])
    rotation = euler_to_matrix(torch.tensor([[0.1, math.radians(yaw), 0.0]]))
    camera = model_to_camera(vertices, rotation, torch.tensor([[0.0, 2.0, 60.0]]))
    return project(camera, intrinsics(torch.tensor([size * 60 / 34]), size, size))


@pytest.mark.parametrize("yaw,jaw", [(0.0, 0.0), (35.0, 0.7), (-70.0, 0.3)])
def test_ict_head_matches_brute_force(face_model: FaceModel, yaw: float, jaw: float, backend: str) -> None:
    screen = _ict_screen(face_model, yaw, jaw, 256)
    fragments = rasterize_on(backend, screen, face_model.triangles, 256, 256)
    assert 0.3 < fragments.mask.float().mean() < 0.8
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (300, 2), generator=generator)
    corners = screen[0, face_model.triangles].double()
    for row, col in pixels.tolist():
        exact = _analytic_barycentrics_all(corners, col + 0.5, row + 0.5)
        covered = (exact >= 0).all(dim=1)
        depth = 1.0 / (exact / corners[:, :, 2]).sum(dim=1)
        depth = torch.where(covered, depth, torch.full_like(depth, math.inf))
        if not covered.any():
            assert fragments.tri_id[0, row, col] == -1
            continue
        winner = int(fragments.tri_id[0, row, col])
        assert winner >= 0
        assert float(depth[winner]) <= float(depth.min()) * (1 + 1e-5), (row, col)
        assert abs(float(fragments.depth[0, row, col]) - float(depth.min())) < 1e-3


def _analytic_barycentrics_all(corners: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Screen barycentrics of one point in every triangle: (F, 3, 3) -> (F, 3), float64."""
    a, b, c = corners[:, 0, :2], corners[:, 1, :2], corners[:, 2, :2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    w0 = (c[:, 0] - b[:, 0]) * (y - b[:, 1]) - (c[:, 1] - b[:, 1]) * (x - b[:, 0])
    w1 = (a[:, 0] - c[:, 0]) * (y - c[:, 1]) - (a[:, 1] - c[:, 1]) * (x - c[:, 0])
    w2 = (b[:, 0] - a[:, 0]) * (y - a[:, 1]) - (b[:, 1] - a[:, 1]) * (x - a[:, 0])
    bary = torch.stack([w0, w1, w2], dim=1) / area[:, None]
    return torch.where((area != 0)[:, None], bary, torch.full_like(bary, -1.0))


def test_chunking_does_not_change_the_result(face_model: FaceModel) -> None:
    screen = _ict_screen(face_model, 20.0, 0.5, 128)
    whole = rasterize_torch(screen, face_model.triangles, 128, 128)
    chunked = rasterize_torch(screen, face_model.triangles, 128, 128, max_candidates=5000)
    assert torch.equal(whole.tri_id, chunked.tri_id)
    assert torch.equal(whole.depth, chunked.depth)


def test_batch_matches_single(face_model: FaceModel, backend: str) -> None:
    screens = torch.cat([_ict_screen(face_model, 0.0, 0.0, 96), _ict_screen(face_model, 30.0, 0.8, 96)])
    batch = rasterize_on(backend, screens, face_model.triangles, 96, 96)
    second = rasterize_on(backend, screens[1:], face_model.triangles, 96, 96)
    assert torch.equal(batch.tri_id[1:], second.tri_id)


def test_screen_barycentrics_match_fragments(face_model: FaceModel) -> None:
    screen = _ict_screen(face_model, 10.0, 0.2, 96)
    fragments = rasterize_torch(screen, face_model.triangles, 96, 96)
    bary, depth = screen_barycentrics(screen, face_model.triangles, fragments.tri_id)
    assert torch.equal(bary, fragments.bary) and torch.equal(depth, fragments.depth)


def test_screen_barycentric_gradients_stay_finite_with_a_degenerate_first_triangle() -> None:
    """Background pixels must not send NaN back through a zero-area triangle (0 · inf)."""
    screen = torch.tensor(
        [
            [
                [5.0, 5.0, 2.0],
                [5.0, 5.0, 2.0],
                [5.0, 5.0, 2.0],
                [2.0, 2.0, 3.0],
                [14.0, 3.0, 3.0],
                [4.0, 13.0, 3.0],
            ]
        ],
        requires_grad=True,
    )
    triangles = torch.tensor([[0, 1, 2], [3, 4, 5]])
    fragments = rasterize_numba(screen.detach(), triangles, 16, 16)
    assert (fragments.tri_id == 1).any() and (fragments.tri_id == -1).any()
    bary, depth = screen_barycentrics(screen, triangles, fragments.tri_id)
    (bary.sum() + depth.sum()).backward()
    assert torch.isfinite(screen.grad).all()
    assert screen.grad[0, 3:].abs().sum() > 0
