"""The quadratic polynomials behind 3-band spherical harmonics, evaluated at unit normals.

Shading kernels take SH light already multiplied by the SH normalisation and clamped-cosine
factors (see :func:`jr2net.lighting.irradiance_coefficients`), so a pixel's irradiance is just
``sh_monomials(n) @ coefficients``.
"""

from __future__ import annotations

import torch
from torch import Tensor

SH_TERMS = 9


def sh_monomials(normals: Tensor) -> Tensor:
    """(..., 3) unit normals -> (..., 9): 1, y, z, x, xy, yz, 3z²-1, xz, x²-y²."""
    if normals.shape[-1] != 3:
        raise ValueError(f"argument 'normals' must have shape (..., 3), got {tuple(normals.shape)}")
    x, y, z = normals.unbind(-1)
    return torch.stack(
        [torch.ones_like(x), y, z, x, x * y, y * z, 3.0 * z * z - 1.0, x * z, x * x - y * y], dim=-1
    )
