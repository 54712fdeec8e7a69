"""ONNX export and the runners: onnxruntime agrees with torch, the cache is reused, errors are clear."""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
import pytest
import torch

from jr2net.engines.onnx_export import OPSET, cached_onnx, export_onnx
from jr2net.engines.runners import OnnxRunner, TorchRunner, make_runner
from jr2net.face_model import FaceModel
from jr2net.nets.checkpoint import SHIPPED_WEIGHTS, load_weights, save_weights
from jr2net.nets.recnet import CROP_SIZE, RecNet
from jr2net.params import ParamLayout

PARAMETERS = ("identity", "expression", "rotation", "centre", "depth_ratio", "light", "albedo_coefficients")


def _weights(face_model: FaceModel, tmp_path: Path) -> Path:
    """The shipped weights when present, else a randomly initialised network's."""
    if SHIPPED_WEIGHTS.is_file():
        return SHIPPED_WEIGHTS
    torch.manual_seed(0)
    path = tmp_path / "recnet.pt"
    save_weights(RecNet(ParamLayout.of(face_model)), path, {"command": "test"})
    return path


def test_onnx_matches_torch_within_1e_3(face_model: FaceModel, tmp_path: Path) -> None:
    net = load_weights(_weights(face_model, tmp_path))
    path = export_onnx(net, tmp_path / "recnet.onnx")
    model = onnx.load(str(path))
    assert model.opset_import[0].version >= 17
    images = torch.rand(3, 3, CROP_SIZE, CROP_SIZE)
    with TorchRunner(net) as torch_runner, OnnxRunner(path) as onnx_runner:
        expected, actual = net.decode(torch_runner(images)), net.decode(onnx_runner(images))
    for name in PARAMETERS:
        difference = (getattr(expected, name) - getattr(actual, name)).abs().max()
        assert difference <= 1e-3, f"{name} differs by {difference}"


def test_cached_export_is_made_once(
    face_model: FaceModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JR2NET_CACHE", str(tmp_path / "cache"))
    weights = _weights(face_model, tmp_path)
    net = load_weights(weights)
    first = cached_onnx(net, weights)
    stamp = first.stat().st_mtime_ns
    assert cached_onnx(net, weights) == first and first.stat().st_mtime_ns == stamp
    assert first.parent == tmp_path / "cache" / "engines"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    assert first.name == f"recnet-small-{digest}-opset{OPSET}.onnx", "the key of exports already cached"


def test_runner_factory(face_model: FaceModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JR2NET_CACHE", str(tmp_path / "cache"))
    weights = _weights(face_model, tmp_path)
    net, runner = make_runner("onnx", weights)
    with runner:
        assert runner(torch.rand(2, 3, CROP_SIZE, CROP_SIZE)).shape == (2, net.output_size)
    with pytest.raises(ValueError, match="unknown runtime"):
        make_runner("tensorflow", weights)
    with pytest.raises(ValueError, match="opset 17"):
        export_onnx(net, tmp_path / "old.onnx", opset=13)


def _tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(_tensorrt_available(), reason="TensorRT and a GPU are present")
def test_tensorrt_without_it_is_a_clear_error(face_model: FaceModel, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="TensorRT runtime needs"):
        make_runner("tensorrt", _weights(face_model, tmp_path))


@pytest.mark.gpu
@pytest.mark.skipif(not _tensorrt_available(), reason="needs TensorRT and a CUDA device")
def test_tensorrt_matches_onnxruntime(
    face_model: FaceModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JR2NET_CACHE", str(tmp_path / "cache"))
    weights = _weights(face_model, tmp_path)
    images = torch.rand(4, 3, CROP_SIZE, CROP_SIZE)
    net, onnx_runner = make_runner("onnx", weights)
    _, tensorrt_runner = make_runner("tensorrt", weights)
    with onnx_runner, tensorrt_runner:
        expected, actual = net.decode(onnx_runner(images)), net.decode(tensorrt_runner(images))
    for name in PARAMETERS:  # FP16 engine: a looser bound than the float32 ONNX parity
        assert (getattr(expected, name) - getattr(actual, name)).abs().max() <= 5e-2, name
