"""Small analytic meshes for renderer tests."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def icosphere(subdivisions: int) -> tuple[Tensor, Tensor]:
    """Unit sphere: (V, 3) float64 vertices, (F, 3) int64 outward counter-clockwise triangles."""
    t = (1.0 + math.sqrt(5.0)) / 2.0
    vertices = [
        (-1, t, 0),
        (1, t, 0),
        (-1, -t, 0),
        (1, -t, 0),
        (0, -1, t),
        (0, 1, t),
        (0, -1, -t),
        (0, 1, -t),
        (t, 0, -1),
        (t, 0, 1),
        (-t, 0, -1),
        (-t, 0, 1),
    ]
    faces = [
        (0, 11, 5),
        (0, 5, 1),
        (0, 1, 7),
        (0, 7, 10),
        (0, 10, 11),
        (1, 5, 9),
        (5, 11, 4),
        (11, 10, 2),
        (10, 7, 6),
        (7, 1, 8),
        (3, 9, 4),
        (3, 4, 2),
        (3, 2, 6),
        (3, 6, 8),
        (3, 8, 9),
        (4, 9, 5),
        (2, 4, 11),
        (6, 2, 10),
        (8, 6, 7),
        (9, 8, 1),
    ]
    points = [tuple(c / math.sqrt(1 + t * t) for c in v) for v in vertices]
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}
        refined = []
        for a, b, c in faces:
            ab, bc, ca = (_midpoint(points, cache, p, q) for p, q in ((a, b), (b, c), (c, a)))
            refined += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = refined
    return torch.tensor(points, dtype=torch.float64), torch.tensor(faces, dtype=torch.int64)


def _midpoint(points: list[tuple[float, ...]], cache: dict[tuple[int, int], int], a: int, b: int) -> int:
    """Index of the unit-sphere midpoint of edge (a, b), appended to ``points`` once."""
    key = (min(a, b), max(a, b))
    if key not in cache:
        middle = [(p + q) / 2 for p, q in zip(points[a], points[b])]
        norm = math.sqrt(sum(c * c for c in middle))
        points.append(tuple(c / norm for c in middle))
        cache[key] = len(points) - 1
    return cache[key]


def quad(corners: Tensor) -> tuple[Tensor, Tensor]:
    """Two triangles over four corners given in order: (4, 3) -> vertices (1, 4, 3), triangles (2, 3)."""
    return corners[None], torch.tensor([[0, 1, 2], [0, 2, 3]])
