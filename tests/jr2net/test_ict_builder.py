"""The npz builder on a tiny ICT-like OBJ set written here (and on the real upstream when given)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from jr2net.assets import ICT_FACE_MODEL, locate, sha256_of
from jr2net.cli import main
from jr2net.ict_builder import IctTopology, build_ict_arrays, build_ict_npz
from jr2net.obj_io import write_obj

TOPOLOGY = IctTopology(
    head_vertex_count=6, face_area_vertex_count=4, narrow_face_vertex_count=2, identity_count=2
)
EXPRESSIONS = ["jawOpen", "mouthSmile_L", "mouthSmile_R"]


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 4x2 vertex grid (3 quads) plus 2 extra vertices of a dropped quad."""
    vertices = np.array(
        [[x, y, 0.0] for y in (0.0, 1.0) for x in (0.0, 1.0, 2.0)]
        + [[3, 0, 0], [3, 1, 0], [4, 0, 0], [4, 1, 0]],
        dtype=np.float64,
    )
    quads = np.array([[0, 1, 4, 3], [1, 2, 5, 4], [2, 6, 7, 5], [6, 8, 9, 7]])
    uvs = np.array([[i / 20, (i % 3) / 7] for i in range(20)])
    quad_uvs = np.array([[10, 11, 12, 13], [2, 3, 4, 5], [14, 15, 16, 17], [0, 1, 18, 19]])
    return vertices, quads, uvs, quad_uvs


def _write_kit(root: Path) -> dict[str, np.ndarray]:
    folder = root / "FaceXModel"
    folder.mkdir(parents=True)
    vertices, quads, uvs, quad_uvs = _grid()
    write_obj(folder / "generic_neutral_mesh.obj", vertices, quads, uvs, quad_uvs)
    rng = np.random.default_rng(0)
    shapes = {}
    for name in [f"identity{i:03d}" for i in range(2)] + EXPRESSIONS:
        moved = vertices + rng.normal(scale=0.1, size=vertices.shape).round(4)
        write_obj(folder / f"{name}.obj", moved, quads, uvs, quad_uvs)
        shapes[name] = moved
    indices = {"expressions": EXPRESSIONS, "idx_to_landmark_verts": list(range(68))}
    (folder / "vertex_indices.json").write_text(json.dumps(indices))
    return shapes


def test_builds_tiny_kit(tmp_path: Path) -> None:
    shapes = _write_kit(tmp_path)
    arrays = build_ict_arrays(tmp_path, TOPOLOGY, commit="abc123", progress=False)
    vertices, quads, uvs, quad_uvs = _grid()
    np.testing.assert_array_equal(arrays["neutral"], vertices[:6].astype(np.float32))
    np.testing.assert_array_equal(arrays["quads"], quads[:2])
    np.testing.assert_array_equal(arrays["triangles"], [[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4]])
    np.testing.assert_allclose(arrays["uv"][arrays["quad_uvs"]], uvs[quad_uvs[:2]], atol=1e-6)
    assert arrays["uv"].shape == (8, 2)
    np.testing.assert_array_equal(
        arrays["uv"][arrays["triangle_uvs"][1]], arrays["uv"][arrays["quad_uvs"][0, [0, 2, 3]]]
    )
    np.testing.assert_allclose(arrays["id_basis"][1], shapes["identity001"][:6] - vertices[:6], atol=1e-6)
    np.testing.assert_allclose(arrays["exp_basis"][2], shapes["mouthSmile_R"][:6] - vertices[:6], atol=1e-6)
    assert list(arrays["expression_names"]) == EXPRESSIONS
    assert list(arrays["identity_names"]) == ["identity000", "identity001"]
    assert int(arrays["face_area_vertex_count"]) == 4
    assert str(arrays["source"]).endswith("@ abc123 (FaceXModel/)")


def test_missing_obj_is_a_clear_error(tmp_path: Path) -> None:
    _write_kit(tmp_path)
    (tmp_path / "FaceXModel" / "mouthSmile_R.obj").unlink()
    with pytest.raises(FileNotFoundError, match="mouthSmile_R.obj"):
        build_ict_arrays(tmp_path, TOPOLOGY, progress=False)


def test_not_a_checkout_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assets", "build-ict", str(tmp_path), "-o", str(tmp_path / "out.npz")]) == 1
    assert "not an ICT-FaceKit checkout" in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.slow
@pytest.mark.skipif(
    "ICT_FACEKIT_DIR" not in os.environ, reason="set ICT_FACEKIT_DIR to an ICT-FaceKit checkout"
)
def test_rebuilds_the_shared_model_byte_for_byte(tmp_path: Path) -> None:
    output = build_ict_npz(
        Path(os.environ["ICT_FACEKIT_DIR"]),
        tmp_path / "ict.npz",
        commit="da5f95a607f5e6b37755b38d3385d7f2853732e5",
        progress=False,
    )
    assert sha256_of(output) == sha256_of(locate(ICT_FACE_MODEL))
