"""Build ``ict_face_model.npz`` from an upstream ICT-FaceKit checkout (``FaceXModel/`` OBJs).

Only the face + head/neck region is kept (the first ``head_vertex_count`` vertices, and every
polygon whose corners all lie in it); eyes, mouth socket, teeth and lashes are dropped. Bases are
float64 differences to the neutral mesh cast to float32, as documented in the assets' LICENSES.md.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jr2net.obj_io import read_obj, read_obj_vertices

UPSTREAM_URL = "https://github.com/ICT-VGL/ICT-FaceKit"


@dataclass(frozen=True)
class IctTopology:
    """Vertex ranges of the ICT mesh regions (from the ICT-FaceKit README)."""

    head_vertex_count: int = 11248
    face_area_vertex_count: int = 9409
    narrow_face_vertex_count: int = 6706
    identity_count: int = 100


def _model_dir(root: Path) -> Path:
    for candidate in (root / "FaceXModel", root):
        if (candidate / "vertex_indices.json").is_file() and (
            candidate / "generic_neutral_mesh.obj"
        ).is_file():
            return candidate
    raise FileNotFoundError(
        f"{root} is not an ICT-FaceKit checkout: no FaceXModel/vertex_indices.json and "
        "generic_neutral_mesh.obj "
        f"(clone {UPSTREAM_URL})"
    )


def _upstream_commit(folder: Path) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


def _delta(path: Path, neutral: np.ndarray, count: int) -> np.ndarray:
    vertices = read_obj_vertices(path)
    if vertices.shape != neutral.shape:
        raise ValueError(f"{path} has {vertices.shape[0]} vertices, the neutral mesh {neutral.shape[0]}")
    return (vertices[:count] - neutral[:count]).astype(np.float32)


def build_ict_arrays(
    root: Path, topology: IctTopology = IctTopology(), commit: str | None = None, progress: bool = True
) -> dict[str, np.ndarray]:
    """Read the ICT-FaceKit OBJs below ``root`` and return the npz arrays (see LICENSES.md for keys)."""
    folder = _model_dir(Path(root))
    indices = json.loads((folder / "vertex_indices.json").read_text())
    expression_names = list(indices["expressions"])
    landmarks = np.asarray(indices["idx_to_landmark_verts"], dtype=np.int32)
    mesh = read_obj(folder / "generic_neutral_mesh.obj")
    count = topology.head_vertex_count
    if mesh.vertices.shape[0] < count:
        raise ValueError(f"neutral mesh has {mesh.vertices.shape[0]} vertices, fewer than the {count} kept")
    kept = [k for k, polygon in enumerate(mesh.polygons) if polygon.max() < count]
    if any(len(mesh.polygons[k]) != 4 for k in kept):
        raise ValueError("the kept head region must consist of quads only")
    quads = np.stack([mesh.polygons[k] for k in kept])
    corner_uvs = np.stack([mesh.polygon_uvs[k] for k in kept])
    used_uvs, quad_uvs = np.unique(corner_uvs, return_inverse=True)
    quad_uvs = quad_uvs.reshape(corner_uvs.shape)
    identity_files = [folder / f"identity{i:03d}.obj" for i in range(topology.identity_count)]
    expression_files = [folder / f"{name}.obj" for name in expression_names]
    missing = [p.name for p in identity_files + expression_files if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {len(missing)} OBJ files, e.g. {missing[:3]}")
    files = tqdm(
        identity_files + expression_files, desc="reading ICT OBJs", unit="file", disable=not progress
    )
    deltas = [_delta(path, mesh.vertices, count) for path in files]
    identity_count = len(identity_files)
    return {
        "neutral": mesh.vertices[:count].astype(np.float32),
        "id_basis": np.stack(deltas[:identity_count]),
        "exp_basis": np.stack(deltas[identity_count:]),
        "expression_names": np.array(expression_names),
        "identity_names": np.array([p.stem for p in identity_files]),
        "quads": quads.astype(np.int32),
        "quad_uvs": quad_uvs.astype(np.int32),
        "triangles": quads[:, [0, 1, 2, 0, 2, 3]].reshape(-1, 3).astype(np.int32),
        "triangle_uvs": quad_uvs[:, [0, 1, 2, 0, 2, 3]].reshape(-1, 3).astype(np.int32),
        "uv": mesh.uvs[used_uvs].astype(np.float32),
        "landmarks68": landmarks,
        "face_area_vertex_count": np.array(topology.face_area_vertex_count, dtype=np.int32),
        "narrow_face_vertex_count": np.array(topology.narrow_face_vertex_count, dtype=np.int32),
        "units": np.array("cm"),
        "source": np.array(f"{UPSTREAM_URL} @ {commit or _upstream_commit(folder)} (FaceXModel/)"),
        "license": np.array("MIT"),
    }


def build_ict_npz(root: Path, output: Path, commit: str | None = None, progress: bool = True) -> Path:
    """Build the face model npz from an ICT-FaceKit checkout and write it (compressed) to ``output``."""
    arrays = build_ict_arrays(root, commit=commit, progress=progress)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return output
