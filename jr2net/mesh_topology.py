"""Holes of the ICT head mesh (eyes, mouth, neck) and the caps that close the face's holes.

The ICT face model drops eyeballs and the mouth socket, so the mesh has open loops there. The
reenactor needs surface over the eyes (so the source's eyes move with the eyelids) and over the
mouth (the mouth interior), so those holes get fan-triangulated caps.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jr2net.face_model import FaceModel

CAPPED_HOLES = ("right_eye", "left_eye", "mouth")


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """Closed loops of boundary edges (edges used by one triangle), each an ordered vertex array."""
    uses: dict[tuple[int, int], int] = defaultdict(int)
    for a, b, c in triangles.tolist():
        for u, v in ((a, b), (b, c), (c, a)):
            uses[(min(u, v), max(u, v))] += 1
    neighbours: dict[int, list[int]] = defaultdict(list)
    for (u, v), count in uses.items():
        if count == 1:
            neighbours[u].append(v)
            neighbours[v].append(u)
    seen: set[int] = set()
    loops = []
    for start in neighbours:
        if start in seen:
            continue
        loop, previous, current = [start], -1, start
        seen.add(start)
        while True:
            following = [n for n in neighbours[current] if n != previous and n not in seen]
            if not following:
                break
            previous, current = current, following[0]
            loop.append(current)
            seen.add(current)
        loops.append(np.array(loop))
    return loops


@dataclass(frozen=True)
class HoleCaps:
    """Cap triangles over the eye and mouth holes.

    Attributes:
        triangles: (C, 3) int64 fan triangles, facing out of the face.
        hole: (C,) int64 index into :data:`CAPPED_HOLES` of each cap triangle.
    """

    triangles: Tensor
    hole: Tensor


def _name(centre: np.ndarray) -> str | None:
    if centre[1] < -12:
        return None  # the neck opening stays open
    if abs(centre[0]) < 1.0:
        return "mouth"
    return "left_eye" if centre[0] > 0 else "right_eye"


@functools.cache
def _caps_for(triangles: bytes, neutral: bytes, vertex_count: int) -> HoleCaps:
    faces = np.frombuffer(triangles, dtype=np.int64).reshape(-1, 3)
    positions = np.frombuffer(neutral, dtype=np.float32).reshape(vertex_count, 3)
    cap_triangles, labels = [], []
    for loop in boundary_loops(faces):
        name = _name(positions[loop].mean(axis=0))
        if name is None:
            continue
        fan = np.stack([np.full(len(loop) - 2, loop[0]), loop[1:-1], loop[2:]], axis=1)
        a, b, c = positions[fan[:, 0]], positions[fan[:, 1]], positions[fan[:, 2]]
        if np.cross(b - a, c - a)[:, 2].sum() < 0:
            fan = fan[:, [0, 2, 1]]
        cap_triangles.append(fan)
        labels.append(np.full(len(fan), CAPPED_HOLES.index(name)))
    if sorted(set(np.concatenate(labels).tolist())) != [0, 1, 2]:
        raise ValueError("expected open eye and mouth loops in the face mesh")
    return HoleCaps(torch.from_numpy(np.concatenate(cap_triangles)), torch.from_numpy(np.concatenate(labels)))


def hole_caps(model: FaceModel) -> HoleCaps:
    """Caps over the eye and mouth holes of ``model``'s mesh (computed once per model)."""
    triangles = model.triangles.cpu().numpy().astype(np.int64)
    neutral = model.neutral.cpu().numpy().astype(np.float32)
    return _caps_for(triangles.tobytes(), neutral.tobytes(), neutral.shape[0])
