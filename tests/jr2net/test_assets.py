"""Asset locator: finds the real assets, and fails clearly on missing or corrupt files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from jr2net import assets
from jr2net.assets import FACE_LANDMARKER, ICT_FACE_MODEL, AssetError, locate, validate
from jr2net.cli import main


def test_finds_both_real_assets() -> None:
    for spec in assets.ALL_ASSETS:
        path = locate(spec)
        assert path.name == spec.filename
        assert assets.sha256_of(path) == spec.sha256


def test_missing_asset_names_file_and_upstream(tmp_path: Path) -> None:
    with pytest.raises(AssetError) as raised:
        locate(ICT_FACE_MODEL, folders=[tmp_path])
    message = str(raised.value)
    assert "ict_face_model.npz" in message
    assert "ICT-FaceKit" in message
    assert str(tmp_path) in message


def test_env_folder_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(assets.ASSETS_ENV, str(tmp_path))
    assert assets.search_dirs()[0] == tmp_path.resolve()


def test_corrupt_npz_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / ICT_FACE_MODEL.filename
    path.write_bytes(b"this is not an npz file")
    with pytest.raises(AssetError, match="not a readable npz"):
        locate(ICT_FACE_MODEL, folders=[tmp_path])


def _tiny_model_arrays() -> dict[str, np.ndarray]:
    real = np.load(locate(ICT_FACE_MODEL))
    arrays = {key: real[key] for key in real.files}
    arrays["id_basis"] = arrays["id_basis"][:2]
    arrays["identity_names"] = arrays["identity_names"][:2]
    return arrays


def test_npz_missing_keys_is_rejected(tmp_path: Path) -> None:
    arrays = _tiny_model_arrays()
    del arrays["landmarks68"]
    np.savez(tmp_path / ICT_FACE_MODEL.filename, **arrays)
    with pytest.raises(AssetError, match="landmarks68"):
        validate(ICT_FACE_MODEL, tmp_path / ICT_FACE_MODEL.filename)


def test_npz_inconsistent_shapes_are_rejected(tmp_path: Path) -> None:
    arrays = _tiny_model_arrays()
    arrays["exp_basis"] = arrays["exp_basis"][:, :100]
    np.savez(tmp_path / ICT_FACE_MODEL.filename, **arrays)
    with pytest.raises(AssetError, match="exp_basis"):
        validate(ICT_FACE_MODEL, tmp_path / ICT_FACE_MODEL.filename)


def test_checksum_mismatch_is_rejected_unless_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ICT_FACE_MODEL.filename
    np.savez(path, **_tiny_model_arrays())
    with pytest.raises(AssetError, match="sha256"):
        validate(ICT_FACE_MODEL, path)
    monkeypatch.setenv(assets.SKIP_CHECKSUM_ENV, "1")
    validate(ICT_FACE_MODEL, path)


def test_landmarker_that_is_not_a_bundle_is_rejected(tmp_path: Path) -> None:
    (tmp_path / FACE_LANDMARKER.filename).write_bytes(b"\x00" * 64)
    with pytest.raises(AssetError, match="task bundle"):
        locate(FACE_LANDMARKER, folders=[tmp_path])


def test_landmarker_without_models_is_rejected(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / FACE_LANDMARKER.filename, "w") as bundle:
        bundle.writestr("face_detector.tflite", b"x")
    with pytest.raises(AssetError, match="face_blendshapes.tflite"):
        locate(FACE_LANDMARKER, folders=[tmp_path])


def test_cli_reports_missing_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(assets, "search_dirs", lambda: [tmp_path])
    assert main(["assets"]) == 1
    err = capsys.readouterr().err
    assert "MISSING ict_face_model.npz" in err
    assert "MISSING face_landmarker.task" in err
    assert "ICT-FaceKit" in err


def test_cli_lists_found_assets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assets"]) == 0
    out = capsys.readouterr().out
    assert "ict_face_model.npz:" in out
    assert "face_landmarker.task:" in out
