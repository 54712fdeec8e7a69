"""Locate and validate the project's data assets (face model, MediaPipe bundle).

Assets are data, not code: they are never committed. Each is looked up, in order, in
``$JR2NET_ASSETS``, ``./assets`` and ``../shared/assets`` (relative to the working directory, then
to the repository this package was installed from), and validated before use: a missing or corrupt
file is an :class:`AssetError` that names the file and where to get it.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ASSETS_ENV = "JR2NET_ASSETS"
SKIP_CHECKSUM_ENV = "JR2NET_SKIP_CHECKSUM"


class AssetError(RuntimeError):
    """An asset is missing, unreadable or not what the project expects."""


@dataclass(frozen=True)
class AssetSpec:
    """What one asset is, where it comes from, and how to recognise it."""

    name: str
    filename: str
    description: str
    upstream: str
    license: str
    sha256: str


ICT_FACE_MODEL = AssetSpec(
    name="ict_face_model",
    filename="ict_face_model.npz",
    description="ICT Face Model Light, converted to npz (face + head/neck region)",
    upstream=(
        "https://github.com/ICT-VGL/ICT-FaceKit (FaceXModel/); rebuild it with "
        "`jr2net assets build-ict ICT_FACEKIT_DIR -o ict_face_model.npz`"
    ),
    license="MIT, Copyright (c) 2020 USC Institute for Creative Technologies",
    sha256="3a6fbb81d737e02eeb7b542d3a1f63c4f8810a24737d395f07e31614de33bb40",
)

FACE_LANDMARKER = AssetSpec(
    name="face_landmarker",
    filename="face_landmarker.task",
    description="MediaPipe Face Landmarker bundle (478 landmarks, 52 blendshapes, head matrix)",
    upstream="Google MediaPipe `face_landmarker/float16/1` (face_landmarker.task model bundle)",
    license="Apache-2.0 (Google MediaPipe)",
    sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
)

ALL_ASSETS: tuple[AssetSpec, ...] = (ICT_FACE_MODEL, FACE_LANDMARKER)

ICT_NPZ_SHAPES: dict[str, tuple[str, tuple[int | str, ...]]] = {
    "neutral": ("float32", ("V", 3)),
    "id_basis": ("float32", ("I", "V", 3)),
    "exp_basis": ("float32", ("E", "V", 3)),
    "expression_names": ("str", ("E",)),
    "identity_names": ("str", ("I",)),
    "quads": ("int32", ("Q", 4)),
    "quad_uvs": ("int32", ("Q", 4)),
    "triangles": ("int32", ("F", 3)),
    "triangle_uvs": ("int32", ("F", 3)),
    "uv": ("float32", ("U", 2)),
    "landmarks68": ("int32", (68,)),
    "face_area_vertex_count": ("int32", ()),
    "narrow_face_vertex_count": ("int32", ()),
    "units": ("str", ()),
    "source": ("str", ()),
    "license": ("str", ()),
}

LANDMARKER_MEMBERS = (
    "face_detector.tflite",
    "face_landmarks_detector.tflite",
    "face_blendshapes.tflite",
)


def repository_root() -> Path:
    """The folder holding this package's source tree (the checkout, for an editable install)."""
    return Path(__file__).resolve().parent.parent


def search_dirs() -> list[Path]:
    """Folders searched for assets, in order, without duplicates."""
    candidates: list[Path] = []
    env = os.environ.get(ASSETS_ENV)
    if env:
        candidates.append(Path(env).expanduser())
    cwd = Path.cwd()
    root = repository_root()
    candidates += [
        cwd / "assets",
        cwd.parent / "shared" / "assets",
        root / "assets",
        root.parent / "shared" / "assets",
    ]
    unique: list[Path] = []
    for folder in candidates:
        resolved = folder.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_ict_npz(path: Path) -> None:
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:
        raise AssetError(f"{path} is not a readable npz file ({error})") from error
    with archive:
        missing = sorted(set(ICT_NPZ_SHAPES) - set(archive.files))
        if missing:
            raise AssetError(f"{path} lacks the keys {missing}; rebuild it from {ICT_FACE_MODEL.upstream}")
        dims: dict[str, int] = {}
        for key, (kind, spec) in ICT_NPZ_SHAPES.items():
            array = archive[key]
            kind_ok = array.dtype.kind == "U" if kind == "str" else array.dtype == np.dtype(kind)
            if not kind_ok or array.ndim != len(spec):
                raise AssetError(
                    f"{path}: key '{key}' has dtype {array.dtype} shape {array.shape}, wanted {kind} {spec}"
                )
            for want, got in zip(spec, array.shape):
                bound = dims.setdefault(want, got) if isinstance(want, str) else want
                if bound != got:
                    raise AssetError(
                        f"{path}: key '{key}' has shape {array.shape}, inconsistent with {spec} ({dims})"
                    )


def _check_landmarker(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as bundle:
            names = set(bundle.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise AssetError(f"{path} is not a MediaPipe task bundle (zip): {error}") from error
    missing = [m for m in LANDMARKER_MEMBERS if m not in names]
    if missing:
        raise AssetError(f"{path} lacks the bundle members {missing}; get it from {FACE_LANDMARKER.upstream}")


_CONTENT_CHECKS = {ICT_FACE_MODEL.name: _check_ict_npz, FACE_LANDMARKER.name: _check_landmarker}
_validated: dict[tuple[str, float, int], None] = {}


def validate(spec: AssetSpec, path: Path) -> None:
    """Check an asset file's content (keys, shapes, bundle members) and its checksum.

    A checksum mismatch is an error unless ``$JR2NET_SKIP_CHECKSUM=1`` (for a rebuilt model from
    another upstream commit); content checks always run. Results are cached per file version.
    """
    stat = path.stat()
    key = (str(path), stat.st_mtime, stat.st_size)
    if key in _validated:
        return
    _CONTENT_CHECKS[spec.name](path)
    if os.environ.get(SKIP_CHECKSUM_ENV) != "1":
        digest = sha256_of(path)
        if digest != spec.sha256:
            raise AssetError(
                f"{path} has sha256 {digest}, expected {spec.sha256} ({spec.description}); "
                f"replace it from {spec.upstream}, or set {SKIP_CHECKSUM_ENV}=1 to accept a rebuilt file"
            )
    _validated[key] = None


def locate(spec: AssetSpec, folders: list[Path] | None = None) -> Path:
    """Return the validated path of an asset, or raise :class:`AssetError` naming what is missing.

    Args:
        spec: the asset.
        folders: where to look, in order (default :func:`search_dirs`).
    """
    folders = search_dirs() if folders is None else [Path(f) for f in folders]
    for folder in folders:
        path = folder / spec.filename
        if path.is_file():
            validate(spec, path)
            return path
    searched = ", ".join(str(f) for f in folders)
    raise AssetError(
        f"asset '{spec.filename}' ({spec.description}) not found; searched {searched}. "
        f"Get it from {spec.upstream} and put it in one of those folders or in ${ASSETS_ENV}."
    )
