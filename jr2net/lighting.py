"""Spherical-harmonics lighting: the 9 real SH basis functions and Lambertian shading.

Light is 3 bands × RGB = (9, 3) coefficients of incoming radiance, expressed in the view frame
(x right, y up, z toward the camera: the model frame after the head rotation). Irradiance on a
surface with unit normal n is ``E(n) = Σ_b Â_l(b) · θ_b · Y_b(n)`` with the clamped-cosine
convolution factors Â = (π, 2π/3, π/4) per band (Ramamoorthi & Hanrahan 2001); shading is
``albedo · E(n)``. The SH polynomials themselves live in :mod:`jr2net.kernels.sh`, shared with the
shading kernels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from jr2net.kernels.sh import SH_TERMS, sh_monomials
from jr2net.shapes import check_tensor

SH_COEFFICIENTS = SH_TERMS
_Y00 = 0.5 * math.sqrt(1.0 / math.pi)
_Y1 = math.sqrt(3.0 / (4.0 * math.pi))
_Y2 = 0.5 * math.sqrt(15.0 / math.pi)
SH_NORMALISATION = (
    _Y00,
    _Y1,
    _Y1,
    _Y1,
    _Y2,
    _Y2,
    0.25 * math.sqrt(5.0 / math.pi),
    _Y2,
    0.25 * math.sqrt(15.0 / math.pi),
)
COSINE_LOBE = (math.pi,) + (2.0 * math.pi / 3.0,) * 3 + (math.pi / 4.0,) * 5


def sh_basis(normals: Tensor) -> Tensor:
    """The 9 orthonormal real SH functions at unit directions: (..., 3) -> (..., 9).

    Order: Y00; Y1-1 (y), Y10 (z), Y11 (x); Y2-2 (xy), Y2-1 (yz), Y20 (3z²-1), Y21 (xz), Y22 (x²-y²).
    """
    return sh_monomials(normals) * torch.tensor(SH_NORMALISATION, dtype=normals.dtype, device=normals.device)


def irradiance_basis(normals: Tensor) -> Tensor:
    """The 9 functions whose combination gives irradiance: ``E(n) = irradiance_basis(n) @ coefficients``.

    (..., 3) unit normals -> (..., 9); the coefficients are :func:`irradiance_coefficients`.
    """
    return sh_monomials(normals)


def _factors(reference: Tensor) -> Tensor:
    values = [n * a for n, a in zip(SH_NORMALISATION, COSINE_LOBE)]
    return torch.tensor(values, dtype=reference.dtype, device=reference.device)[:, None]


def irradiance_coefficients(light: Tensor) -> Tensor:
    """Light in the monomial basis of :func:`sh_monomials`: ``E(n) = sh_monomials(n) @ result``.

    Args:
        light: (B, 9, 3) SH light.

    Returns:
        (B, 9, 3) coefficients (normalisation and clamped-cosine factors folded in).
    """
    check_tensor("light", light, ("B", SH_COEFFICIENTS, 3))
    return light * _factors(light)


def light_from_irradiance_coefficients(coefficients: Tensor) -> Tensor:
    """Inverse of :func:`irradiance_coefficients`: (..., 9, 3) -> SH light (..., 9, 3)."""
    return coefficients / _factors(coefficients)


def irradiance(normals: Tensor, light: Tensor) -> Tensor:
    """RGB irradiance at unit normals: (B, N, 3) normals, (B, 9, 3) light -> (B, N, 3)."""
    dims = check_tensor("normals", normals, ("B", "N", 3))
    check_tensor("light", light, ("B", SH_COEFFICIENTS, 3), dims)
    return irradiance_basis(normals) @ irradiance_coefficients(light)


def shade(albedo: Tensor, normals: Tensor, light: Tensor) -> Tensor:
    """Lambertian shading ``albedo · E(n)``: (B, N, 3) albedo and normals, (B, 9, 3) light -> (B, N, 3)."""
    dims = check_tensor("albedo", albedo, ("B", "N", 3))
    check_tensor("normals", normals, ("B", "N", 3), dims)
    return albedo * irradiance(normals, light)


def ambient_light(level: float = 1.0) -> Tensor:
    """Uniform white light whose irradiance is ``level`` on every normal: (9, 3)."""
    light = torch.zeros(SH_COEFFICIENTS, 3)
    light[0] = level / (COSINE_LOBE[0] * _Y00)
    return light


def directional_light(direction: tuple[float, float, float], intensity: float = 1.0) -> Tensor:
    """SH projection of a distant white light arriving from ``direction`` (view frame): (9, 3).

    Its irradiance approximates ``intensity · max(0, n · d)`` (the 3-band approximation of the
    clamped cosine).
    """
    unit = torch.nn.functional.normalize(torch.tensor(direction, dtype=torch.float32), dim=0)
    return (intensity * sh_basis(unit))[:, None].expand(SH_COEFFICIENTS, 3).clone()


LIGHT_PRESETS = {
    "ambient": lambda: ambient_light(1.0),
    "frontal": lambda: ambient_light(0.45) + directional_light((0.0, 0.0, 1.0), 0.65),
    "studio": lambda: ambient_light(0.35) + directional_light((0.45, 0.45, 0.75), 0.8),
    "side": lambda: ambient_light(0.25) + directional_light((1.0, 0.2, 0.35), 0.9),
}


def light_preset(name: str) -> Tensor:
    """A named (9, 3) light: ``ambient``, ``frontal``, ``studio`` or ``side``."""
    if name not in LIGHT_PRESETS:
        raise ValueError(f"unknown light {name!r}; choose from {sorted(LIGHT_PRESETS)}")
    return LIGHT_PRESETS[name]()
