"""RecAugNet's runners: onnxruntime agrees with torch on real aligned crops, the export is cached
by both weights files, errors are clear."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.alignment import align_face
from jr2net.engines.onnx_export import cached_path, export_onnx
from jr2net.engines.runners import OnnxRunner, TorchRunner, make_recaugnet_runner
from jr2net.media import read_image
from jr2net.nets.checkpoint import SHIPPED_WEIGHTS
from jr2net.nets.etnet import SHIPPED_WEIGHTS as SHIPPED_ETNET
from jr2net.nets.etnet import ETNet, save_etnet
from jr2net.nets.recaugnet import RecAugNet, load_recaugnet
from jr2net.nets.recnet import CROP_SIZE, crop_images
from jr2net.tracking import Tracker

PARAMETERS = ("identity", "expression", "rotation", "centre", "depth_ratio", "light", "albedo_coefficients")
# A neutral photo, a wide-open mouth and a smile: the expressions ETNet is for.
PHOTOS = ("liveportrait/source/s12.jpg", "liveportrait/driving/d19.jpg", "liveportrait/source/s1.jpg")


@pytest.fixture(scope="module")
def crops(shared_media: Path) -> torch.Tensor:
    """(3, 3, 224, 224) aligned crops of real photos, as the predictor makes them."""
    aligned = []
    with Tracker(mode="image") as tracker:
        for name in PHOTOS:
            image = read_image(shared_media / name)
            tracking = tracker.track(image)
            assert tracking.face, name
            aligned.append(align_face(image, tracking.landmarks, CROP_SIZE).image)
    return crop_images(np.stack(aligned))


def test_onnx_matches_torch_on_real_crops(crops: torch.Tensor, tmp_path: Path) -> None:
    net = load_recaugnet(SHIPPED_WEIGHTS, SHIPPED_ETNET)
    path = export_onnx(net, tmp_path / "recaugnet.onnx")
    with TorchRunner(net) as torch_runner, OnnxRunner(path, threads=2) as onnx_runner:
        expected, actual = torch_runner(crops), onnx_runner(crops)
    assert (expected - actual).abs().max() <= 1e-3
    expected_params, actual_params = net.decode(expected), net.decode(actual)
    for name in PARAMETERS:
        difference = (getattr(expected_params, name) - getattr(actual_params, name)).abs().max()
        assert difference <= 1e-3, f"{name} differs by {difference}"
    assert expected_params.expression.max() > 0.3, "the crops show expressions"


def test_the_export_cache_is_keyed_by_both_weights_files(
    crops: torch.Tensor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JR2NET_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    other_etnet = tmp_path / "etnet.pt"
    save_etnet(ETNet(53), other_etnet, {"config": {"input_size": "160"}})
    pair = (SHIPPED_WEIGHTS, SHIPPED_ETNET)
    assert cached_path("x", pair) != cached_path("x", (SHIPPED_WEIGHTS, other_etnet))
    assert cached_path("x", pair) != cached_path("x", SHIPPED_WEIGHTS)
    net, runner = make_recaugnet_runner("onnx", *pair)
    with runner:
        assert isinstance(net, RecAugNet) and runner(crops).shape == (3, net.output_size)
    (export,) = (tmp_path / "cache" / "engines").glob("recaugnet-small-*.onnx")
    assert export == cached_path("recaugnet-small", pair)
    stamp = export.stat().st_mtime_ns
    _, again = make_recaugnet_runner("onnx", *pair)
    again.close()
    assert export.stat().st_mtime_ns == stamp, "the export is reused"


def test_torch_runner_and_clear_errors(crops: torch.Tensor, tmp_path: Path) -> None:
    net, runner = make_recaugnet_runner("torch", SHIPPED_WEIGHTS, SHIPPED_ETNET)
    with runner:
        assert runner(crops[:1]).shape == (1, net.output_size)
    with pytest.raises(ValueError, match="unknown runtime"):
        make_recaugnet_runner("tensorflow", SHIPPED_WEIGHTS, SHIPPED_ETNET)
    with pytest.raises(FileNotFoundError, match="ETNet weights"):
        make_recaugnet_runner("onnx", SHIPPED_WEIGHTS, tmp_path / "none.pt")
