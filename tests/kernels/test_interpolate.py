"""Interpolation: values at pixel centres and gradients to attributes and vertex positions."""

from __future__ import annotations

import torch

from jr2net.kernels.rasterize_torch import interpolate, rasterize_torch, screen_barycentrics

SCREEN = torch.tensor([[[3.2, 2.7, 4.0], [13.6, 4.1, 6.0], [5.3, 12.8, 5.0], [14.1, 13.3, 7.0]]])
TRIANGLES = torch.tensor([[0, 1, 2], [1, 3, 2]])


def _interior_tri_id() -> torch.Tensor:
    """Triangle ids of the pixels well inside a triangle (gradients are smooth there)."""
    fragments = rasterize_torch(SCREEN, TRIANGLES, 16, 16)
    inner = (fragments.bary > 0.05).all(dim=-1)
    return torch.where(inner, fragments.tri_id, torch.full_like(fragments.tri_id, -1))


def test_interpolating_barycentric_identity_gives_the_barycentrics() -> None:
    fragments = rasterize_torch(SCREEN, TRIANGLES, 16, 16)
    corner_ids = torch.eye(4)[None]
    values = interpolate(corner_ids, TRIANGLES, fragments.tri_id, fragments.bary)
    for face in range(2):
        pixels = fragments.tri_id[0] == face
        torch.testing.assert_close(values[0][pixels][:, TRIANGLES[face]], fragments.bary[0][pixels])
    assert torch.all(values[0][~fragments.mask[0]] == 0)


def test_gradcheck_attributes_and_positions() -> None:
    tri_id = _interior_tri_id()
    assert (tri_id >= 0).sum() > 20

    def render(screen: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        bary, depth = screen_barycentrics(screen, TRIANGLES, tri_id)
        return torch.cat([interpolate(attributes, TRIANGLES, tri_id, bary), depth[..., None]], dim=-1)

    screen = SCREEN.double().requires_grad_()
    attributes = torch.rand(1, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(render, (screen, attributes), eps=1e-6, atol=1e-5)


def test_position_gradient_points_the_right_way() -> None:
    """Moving the vertex with the largest attribute toward a pixel raises that pixel's value."""
    tri_id = _interior_tri_id()
    screen = SCREEN.clone().requires_grad_()
    attributes = torch.tensor([[[0.0], [1.0], [0.0], [0.0]]])
    bary, _ = screen_barycentrics(screen, TRIANGLES, tri_id)
    value = interpolate(attributes, TRIANGLES, tri_id, bary)[0, 4, 6, 0]
    value.backward()
    toward_pixel = torch.tensor([6.5, 4.5]) - SCREEN[0, 1, :2]
    assert float(screen.grad[0, 1, :2] @ toward_pixel) > 0
