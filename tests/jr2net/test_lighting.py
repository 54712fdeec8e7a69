"""SH lighting: orthonormal basis, ambient and directional irradiance."""

from __future__ import annotations

import math

import pytest
import torch

from jr2net.lighting import ambient_light, directional_light, irradiance, light_preset, sh_basis, shade


def _sphere_samples(count: int) -> torch.Tensor:
    """Fibonacci points on the unit sphere (equal-area quadrature), float64."""
    index = torch.arange(count, dtype=torch.float64) + 0.5
    z = 1 - 2 * index / count
    phi = math.pi * (1 + 5**0.5) * index
    radius = (1 - z * z).sqrt()
    return torch.stack([radius * phi.cos(), radius * phi.sin(), z], dim=-1)


def test_basis_is_orthonormal() -> None:
    directions = _sphere_samples(20000)
    basis = sh_basis(directions)
    gram = basis.T @ basis * (4 * math.pi / directions.shape[0])
    torch.testing.assert_close(gram, torch.eye(9, dtype=torch.float64), atol=2e-3, rtol=0)


def test_ambient_irradiance_is_constant() -> None:
    normals = _sphere_samples(100).float()[None]
    values = irradiance(normals, ambient_light(0.7)[None])
    torch.testing.assert_close(values, torch.full_like(values, 0.7))


def test_directional_light_approximates_clamped_cosine() -> None:
    """E(θ) = Σ_l Â_l (2l+1)/(4π) P_l(cos θ) for l <= 2, within 0.1 of max(0, cos θ)."""
    direction = torch.tensor([0.3, 0.5, 0.8])
    normals = _sphere_samples(2000).float()
    values = irradiance(normals[None], directional_light(tuple(direction.tolist()))[None])[0, :, 0]
    cosine = normals @ torch.nn.functional.normalize(direction, dim=0)
    band_limited = 0.25 + cosine / 2 + 5 / 32 * (3 * cosine**2 - 1)
    torch.testing.assert_close(values, band_limited, atol=1e-5, rtol=0)
    assert (values - cosine.clamp(min=0)).abs().max() < 0.1


def test_shade_multiplies_albedo() -> None:
    albedo = torch.rand(1, 10, 3)
    normals = torch.nn.functional.normalize(torch.randn(1, 10, 3), dim=-1)
    torch.testing.assert_close(shade(albedo, normals, ambient_light(2.0)[None]), albedo * 2.0)


def test_presets() -> None:
    assert light_preset("frontal").shape == (9, 3)
    with pytest.raises(ValueError, match="unknown light"):
        light_preset("neon")
