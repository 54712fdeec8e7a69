"""Minimal Wavefront OBJ reading and writing: positions, texture coordinates, polygons."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ObjMesh:
    """A polygon mesh as stored in an OBJ file, 0-based.

    Attributes:
        vertices: (N, 3) float64 positions.
        uvs: (T, 2) float64 texture coordinates (``vt``), possibly empty.
        polygons: one int array of vertex indices per face, in file order.
        polygon_uvs: one int array of ``vt`` indices per face (empty arrays where a face has none).
    """

    vertices: np.ndarray
    uvs: np.ndarray
    polygons: tuple[np.ndarray, ...]
    polygon_uvs: tuple[np.ndarray, ...]


def _floats(lines: list[str], path: Path, width: int) -> np.ndarray:
    try:
        rows = [line.split()[1 : 1 + width] for line in lines]
        array = np.array(rows, dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"{path}: malformed OBJ coordinate line ({error})") from error
    if array.size and array.shape[1] != width:
        raise ValueError(f"{path}: OBJ coordinate lines need {width} numbers")
    return array.reshape(-1, width)


def read_obj_vertices(path: Path) -> np.ndarray:
    """Read only the ``v`` lines of an OBJ file: (N, 3) float64."""
    with Path(path).open() as handle:
        lines = [line for line in handle if line.startswith("v ")]
    return _floats(lines, Path(path), 3)


def read_obj(path: Path) -> ObjMesh:
    """Read positions, texture coordinates and polygons of an OBJ file (0-based indices)."""
    path = Path(path)
    v_lines: list[str] = []
    vt_lines: list[str] = []
    polygons: list[np.ndarray] = []
    polygon_uvs: list[np.ndarray] = []
    with path.open() as handle:
        for line in handle:
            if line.startswith("v "):
                v_lines.append(line)
            elif line.startswith("vt "):
                vt_lines.append(line)
            elif line.startswith("f "):
                corners = [c.split("/") for c in line.split()[1:]]
                try:
                    polygons.append(np.array([int(c[0]) - 1 for c in corners], dtype=np.int64))
                    has_uv = all(len(c) > 1 and c[1] for c in corners)
                    uv = [int(c[1]) - 1 for c in corners] if has_uv else []
                except ValueError as error:
                    raise ValueError(f"{path}: malformed OBJ face line {line.strip()!r}") from error
                polygon_uvs.append(np.array(uv, dtype=np.int64))
    return ObjMesh(_floats(v_lines, path, 3), _floats(vt_lines, path, 2), tuple(polygons), tuple(polygon_uvs))


def write_obj(
    path: Path,
    vertices: np.ndarray,
    polygons: np.ndarray,
    uvs: np.ndarray | None = None,
    polygon_uvs: np.ndarray | None = None,
    vertex_colours: np.ndarray | None = None,
) -> None:
    """Write a mesh whose polygons all have the same corner count.

    Args:
        path: output file.
        vertices: (N, 3) positions.
        polygons: (F, K) 0-based vertex indices.
        uvs: optional (T, 2) texture coordinates.
        polygon_uvs: (F, K) 0-based ``uvs`` indices, required with ``uvs``.
        vertex_colours: optional (N, 3) RGB in [0, 1], written after each position (``v x y z r g b``).
    """
    positions = np.asarray(vertices, dtype=np.float64)
    if vertex_colours is None:
        lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in positions]
    else:
        colours = np.asarray(vertex_colours, dtype=np.float64)
        lines = [
            f"v {x:.6f} {y:.6f} {z:.6f} {r:.4f} {g:.4f} {b:.4f}"
            for (x, y, z), (r, g, b) in zip(positions, colours)
        ]
    polygons = np.asarray(polygons) + 1
    if uvs is not None:
        if polygon_uvs is None:
            raise ValueError("write_obj: polygon_uvs is required when uvs are given")
        lines += [f"vt {u:.6f} {v:.6f}" for u, v in np.asarray(uvs, dtype=np.float64)]
        corner_uvs = np.asarray(polygon_uvs) + 1
        lines += ["f " + " ".join(f"{a}/{b}" for a, b in zip(p, t)) for p, t in zip(polygons, corner_uvs)]
    else:
        lines += ["f " + " ".join(str(a) for a in p) for p in polygons]
    Path(path).write_text("\n".join(lines) + "\n")
