"""ETNet's synthesised pairs: the expression bank, one source's renderings, the written pair set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jr2net.face_model import FaceModel
from jr2net.media import read_image
from jr2net.nets.dcnet_checkpoint import default_dcnet_weights
from jr2net.reconstruct import Reconstructor
from jr2net.tracking import Tracker
from jr2net.training.expression_bank import (
    LARGE_PRESETS,
    captured_expressions,
    captured_frames,
    expression,
    large_expressions,
)
from jr2net.training.synth_expressions import (
    RENDERERS,
    SPLITS,
    SynthConfig,
    build_expression_pairs,
    expressions_for,
    pair_renderer,
    real_pairs,
    source_pairs,
    split_seed,
)


def test_large_expressions_come_from_the_presets_and_are_large(face_model: FaceModel) -> None:
    sampled = large_expressions(face_model, 40, np.random.default_rng(3))
    assert len(sampled) == 40 and all(e.large for e in sampled)
    assert {e.origin for e in sampled} <= {
        "large:" + "+".join(pair)
        for pair in [(a,) for a in LARGE_PRESETS] + [(a, b) for a in LARGE_PRESETS for b in LARGE_PRESETS]
    }
    assert all(e.weights.min() >= 0 and e.weights.max() <= 1 for e in sampled)
    assert large_expressions(face_model, 5, np.random.default_rng(3))[0].origin == sampled[0].origin, "seeded"
    gaze = face_model.expression_vector({"eyeLookIn_L": 1.0, "eyeLookOut_R": 1.0}).numpy()
    assert not expression(face_model, gaze, "gaze").large, "gaze alone does not make an expression large"


def test_captured_expressions_follow_the_clip(face_model: FaceModel, shared_media: Path) -> None:
    captured = captured_expressions(face_model, [shared_media / "liveportrait/driving/d3.mp4"], every=15)
    assert len(captured) >= 5 and all(e.origin.startswith("d3.mp4#") for e in captured)
    jaw = face_model.expression_names.index("jawOpen")
    assert np.ptp([e.weights[jaw] for e in captured]) > 0.2, "the mouth opens and closes in d3"


def test_half_captured_half_large(face_model: FaceModel) -> None:
    bank = [expression(face_model, np.zeros(53, np.float32), f"clip.mp4#{k}") for k in range(3)]
    chosen = expressions_for(face_model, bank, 7, np.random.default_rng(0))
    assert sum(e.origin.startswith("clip") for e in chosen) == 3 and len(chosen) == 7
    assert all(
        e.origin.startswith("large") for e in expressions_for(face_model, [], 4, np.random.default_rng(0))
    )


def test_the_splits_never_share_a_sampled_expression(face_model: FaceModel) -> None:
    """Train and validation sample their large expressions from different seeds: no validation
    label is one the network was trained on."""
    weights = {}
    for split in SPLITS:
        generator = np.random.default_rng(split_seed(SynthConfig(split=split)))
        weights[split] = {e.weights.tobytes() for e in large_expressions(face_model, 200, generator)}
    assert not weights["train"] & weights["validation"]


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_rendered_expression_is_what_mediapipe_sees(
    face_model: FaceModel, shared_media: Path, renderer: str
) -> None:
    """The source rendered with a wide-open jaw and with closed eyes, by either refiner: MediaPipe
    reads those on the aligned crops, against the source's own."""
    image = read_image(shared_media / "liveportrait/source/s5.jpg")
    wanted = [
        expression(face_model, face_model.expression_vector({"jawOpen": 0.9}).numpy(), "large:wide_jaw"),
        expression(face_model, face_model.expression_vector({"eyeBlink": 1.0}).numpy(), "large:eyes_closed"),
    ]
    with Reconstructor(face_model, mode="image") as reconstructor, Tracker(mode="image") as tracker:
        own, pairs, faceless = source_pairs(
            face_model, "s5.jpg", image, wanted, reconstructor, tracker, 224, pair_renderer(renderer)
        )
        assert own is not None and own.shape == (224, 224, 3) and faceless == 0 and len(pairs) == 2

        def score(crop: np.ndarray, name: str) -> float:
            seen = tracker.track(np.ascontiguousarray(crop))
            return float(seen.blendshapes[seen.blendshape_names.index(name)])

        assert score(pairs[0].crop, "jawOpen") > score(own, "jawOpen") + 0.2
        # MediaPipe reads closed eyes weakly on this painting: 0.23 (geometric), 0.17 (DCNet) of 1,
        # against 0.02 open (on the photo s1: 0.52 and 0.40 against 0.15).
        assert score(pairs[1].crop, "eyeBlinkLeft") > score(own, "eyeBlinkLeft") + 0.12


def test_the_pair_set_is_written_with_its_provenance(
    face_model: FaceModel, shared_media: Path, tmp_path: Path
) -> None:
    images = [
        (name, read_image(shared_media / "liveportrait/source" / name)) for name in ("s12.jpg", "s42.jpg")
    ]
    bank = captured_expressions(face_model, [shared_media / "liveportrait/driving/d0.mp4"], every=30)
    config = SynthConfig(per_source=4, crop_size=96)
    counts = build_expression_pairs(face_model, images, bank, tmp_path, config)
    crops, betas = np.load(tmp_path / "crops.npy"), np.load(tmp_path / "betas.npy")
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert counts["pairs"] == len(crops) == len(betas) == len(meta["per_pair"]) == 8
    assert crops.shape[1:] == (96, 96, 3) and crops.dtype == np.uint8 and betas.shape[1] == 53
    assert {p["source"] for p in meta["per_pair"]} == {"s12.jpg", "s42.jpg"}
    assert sum(p["expression"].startswith("d0.mp4#") for p in meta["per_pair"]) == 4, "half captured"
    assert meta["large_pairs"] == sum(p["large"] for p in meta["per_pair"]) >= 4
    assert (tmp_path / "contact_sheet.png").stat().st_size > 10_000
    assert counts["real_pairs"] == 0 and not any(p["real"] for p in meta["per_pair"])
    assert meta["renderer"] == "geometric" and meta["dcnet"] is None
    with pytest.raises(ValueError, match="no pair was made"):
        build_expression_pairs(
            face_model, [("blank", np.full((64, 64, 3), 90, np.uint8))], bank, tmp_path, config
        )


def test_real_pairs_are_the_captured_frames_with_their_expressions(
    face_model: FaceModel, shared_media: Path
) -> None:
    frames = list(captured_frames(face_model, [shared_media / "liveportrait/driving/d3.mp4"], every=40))
    pairs = real_pairs(frames, 64)
    assert len(pairs) == len(frames) >= 3 and all(p.real for p in pairs)
    assert all(p.crop.shape == (64, 64, 3) and p.source == p.expression.origin for p in pairs)
    assert np.array_equal(pairs[0].expression.weights, frames[0].expression.weights)


def test_pairs_rendered_by_dcnet_say_which_weights_made_them(
    face_model: FaceModel, shared_media: Path, tmp_path: Path
) -> None:
    images = [("s12.jpg", read_image(shared_media / "liveportrait/source/s12.jpg"))]
    config = SynthConfig(per_source=2, crop_size=64, renderer="dcnet")
    counts = build_expression_pairs(face_model, images, [], tmp_path, config)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert counts["pairs"] == 2 and meta["renderer"] == "dcnet"
    assert meta["dcnet"]["weights"] == str(default_dcnet_weights())
    assert meta["dcnet"]["provenance"]["command"].startswith("python -m jr2net.training.train_dcnet")
    with pytest.raises(FileNotFoundError):
        build_expression_pairs(face_model, images, [], tmp_path, config, dcnet_weights=tmp_path / "none.pt")
    with pytest.raises(ValueError, match="unknown pair renderer"):
        pair_renderer("paint")
