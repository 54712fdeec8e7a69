"""``bench.nme_sources``: the fitter's parameter groups swapped into a network's, and their NME."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.nme_sources import SWAPS, hybrid, nme_sources, swap_name
from jr2net.face_model import FaceModel
from jr2net.params import FaceParams, ParamLayout
from jr2net.reconstruct import landmarks68_2d

HEIGHT, WIDTH = 480, 640


def _fitter(face_model: FaceModel) -> FaceParams:
    face = FaceParams.neutral(ParamLayout.of(face_model), focal=800.0)
    expression = torch.zeros_like(face.expression)
    expression[0, :6] = 0.5
    return face.replace(expression=expression, rotation=torch.tensor([[0.05, 0.2, 0.0]]))


def _dlib_like(face_model: FaceModel, face: FaceParams) -> np.ndarray:
    with torch.no_grad():
        return landmarks68_2d(face_model, face, HEIGHT, WIDTH).double().numpy()


def test_a_hybrid_takes_exactly_the_swapped_groups_from_the_fitter(face_model: FaceModel) -> None:
    fitter = _fitter(face_model)
    network = fitter.replace(
        identity=torch.full_like(fitter.identity, 0.3),
        expression=torch.zeros_like(fitter.expression),
        translation=fitter.translation + 2.0,
        light=fitter.light * 0.5,
    )
    mixed = hybrid(network, fitter, ("pose", "expression"))
    assert torch.equal(mixed.translation, fitter.translation)
    assert torch.equal(mixed.expression, fitter.expression)
    assert torch.equal(mixed.identity, network.identity)
    assert torch.equal(mixed.light, network.light), "light and albedo are never swapped"
    with pytest.raises(ValueError, match="unknown parameter groups"):
        hybrid(network, fitter, ("shape",))


def test_swaps_run_from_none_to_every_group() -> None:
    assert len(SWAPS) == 8
    assert swap_name(SWAPS[0]) == "none"
    assert swap_name(SWAPS[-1]) == "pose+identity+expression"


def test_the_swap_of_the_group_a_network_got_wrong_closes_its_gap(face_model: FaceModel) -> None:
    fitter = _fitter(face_model)
    wrong_expression = fitter.replace(expression=torch.zeros_like(fitter.expression))
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    images = [("face", image), ("no dlib face", image)]
    report = nme_sources(
        face_model,
        images,
        fitted={"face": fitter, "no dlib face": fitter},
        networks={"net": {"face": wrong_expression, "no dlib face": wrong_expression}},
        references={"face": _dlib_like(face_model, fitter), "no dlib face": None},
    )
    assert report["skipped"] == ["no dlib face"]
    assert report["fitter"]["nme"] == pytest.approx(0.0, abs=1e-6)
    mean = report["networks"]["net"]["mean"]
    assert mean["none"]["nme"] > 0.005, "the network's expression moves its landmarks"
    assert mean["pose"]["nme"] == pytest.approx(mean["none"]["nme"])
    assert mean["expression"]["nme"] == pytest.approx(0.0, abs=1e-6)
    assert mean["pose+identity+expression"]["nme"] == pytest.approx(0.0, abs=1e-6)
