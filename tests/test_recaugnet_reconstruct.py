"""``jr2net reconstruct --method recaugnet`` on a real photo: ETNet's expression on RecNet's face;
the method options reach the live stages as a picklable value; missing ETNet weights are clear errors."""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import pytest
import torch
from torch.nn.functional import interpolate

from jr2net.alignment import align_face
from jr2net.cli import main
from jr2net.commands.method import MethodChoice, add_method_arguments, method_choice
from jr2net.estimators import RecNetEstimator
from jr2net.face_model import FaceModel
from jr2net.media import read_image
from jr2net.mirror import FaceMirror
from jr2net.nets.checkpoint import SHIPPED_WEIGHTS, load_weights, save_weights
from jr2net.nets.etnet import input_size, load_etnet
from jr2net.nets.recaugnet import RecAugNet
from jr2net.nets.recnet import CROP_SIZE, crop_images
from jr2net.tracking import Tracker

PHOTO = "liveportrait/driving/d19.jpg"  # a wide-open mouth


def _etnet_expression(model: FaceModel, photo: Path) -> torch.Tensor:
    """(1, E) ETNet's flip-averaged expression of the photo's aligned crop, resized as in its training."""
    etnet, provenance = load_etnet()
    image = read_image(photo)
    with Tracker(mode="image") as tracker:
        tracking = tracker.track(image)
    crop = crop_images(align_face(image, tracking.landmarks, CROP_SIZE).image[None])
    size = input_size(provenance)
    small = interpolate(torch.cat([crop, crop.flip(-1)]), size=(size, size), mode="bilinear", antialias=True)
    with torch.no_grad():
        plain, flipped = etnet(small).split(1)
    return 0.5 * (plain + FaceMirror.of(model).mirror_expression(flipped))


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_photo(
    face_model: FaceModel, shared_media: Path, tmp_path: Path, runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JR2NET_CACHE", str(tmp_path / "cache"))
    photo = shared_media / PHOTO
    arguments = ["reconstruct", str(photo), "-o", str(tmp_path / "out"), "--method", "recaugnet"]
    assert main([*arguments, "--runtime", runtime]) == 0
    data = json.loads((tmp_path / "out/params.json").read_text())
    (frame,) = data["frames"]
    assert data["method"] == "recaugnet" and frame["face"]
    expression = torch.tensor(frame["params"]["expression"])[None]
    expected = _etnet_expression(face_model, photo)
    assert (expression - expected).abs().max() < 1e-3, "the expression is ETNet's"
    assert expression.max() > 0.5, "the open mouth is seen"
    assert (tmp_path / "out/mesh.obj").is_file() and (tmp_path / "out/overlay.png").is_file()


def test_missing_etnet_weights_are_a_clear_error(
    shared_media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = shared_media / PHOTO
    arguments = ["reconstruct", str(photo), "-o", str(tmp_path / "out"), "--method", "recaugnet"]
    assert main([*arguments, "--etnet-weights", str(tmp_path / "none.pt")]) == 1
    assert "ETNet weights" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_shipped_etnet_on_another_recnet_is_a_clear_error(
    shared_media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped ETNet is a head on the shipped RecNet's backbone: other RecNet weights need an
    ETNet of their own, and the command says so before it writes anything."""
    other = load_weights(SHIPPED_WEIGHTS)
    with torch.no_grad():
        next(other.backbone.parameters()).mul_(1.01)
    save_weights(other, tmp_path / "other.pt", {"command": "test"})
    arguments = [
        "reconstruct",
        str(shared_media / PHOTO),
        "-o",
        str(tmp_path / "out"),
        "--method",
        "recaugnet",
    ]
    assert main([*arguments, "--weights", str(tmp_path / "other.pt")]) == 1
    error = capsys.readouterr().err
    assert "another RecNet's backbone" in error and "--etnet-weights" in error
    assert not (tmp_path / "out").exists()


def test_the_method_options_reach_a_stage_as_a_picklable_value(face_model: FaceModel, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_method_arguments(parser)
    args = parser.parse_args(["--method", "recaugnet", "--etnet-weights", str(tmp_path / "none.pt")])
    with pytest.raises(FileNotFoundError, match="ETNet weights"):
        method_choice(args)  # checked before any stage starts
    choice = method_choice(parser.parse_args(["--method", "recaugnet"]))
    assert choice == MethodChoice("recaugnet", "torch", None, None)
    estimator = pickle.loads(pickle.dumps(choice))(face_model)
    assert isinstance(estimator, RecNetEstimator) and isinstance(estimator.predictor.net, RecAugNet)
    with pytest.raises(ValueError, match="unknown method"):
        MethodChoice("recaugnett")
