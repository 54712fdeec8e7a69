"""RecNet training on CPU: a tiny crop cache from real training media, batches, losses, the script."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jr2net.camera import project
from jr2net.face_model import FaceModel
from jr2net.mirror import FaceMirror
from jr2net.nets.checkpoint import load_weights, provenance
from jr2net.nets.recnet import RecNet, albedo_basis
from jr2net.params import ParamLayout
from jr2net.training.crop_cache import split_images
from jr2net.training.crop_dataset import CropDataset, collection, is_validation, mirrored
from jr2net.training.recnet_losses import LossWeights, RecNetLosses
from jr2net.training.train_recnet import (
    TrainConfig,
    configure,
    learning_rate,
    main,
    parameter_groups,
    train,
)
from tests.training.fitter_targets import fitter_targets


def test_the_split_is_by_collection(tiny_cache: Path) -> None:
    train, validation = CropDataset(tiny_cache, "train"), CropDataset(tiny_cache, "validation")
    assert len(train) + len(validation) == 10
    assert {collection(s) for s in train.sources}.isdisjoint({collection(s) for s in validation.sources})
    assert not any(is_validation(s) for s in train.sources) and all(
        is_validation(s) for s in validation.sources
    )


def test_split_images_name_the_frames_and_photos_of_each_split(tiny_media: Path) -> None:
    names = {
        split: [name for name, _ in split_images(tiny_media, 2, split)] for split in ("train", "validation")
    }
    assert names == {
        "train": ["3ddfa1_obama.mp4#0", "3ddfa1_obama.mp4#1", "dlib_John_Salley_000179_02159509.jpg"],
        "validation": ["tpsmm_assets_driving.mp4#0", "tpsmm_assets_driving.mp4#1", "prnet_TestImages_0.jpg"],
    }
    with pytest.raises(ValueError, match="unknown split"):
        split_images(tiny_media, 2, "all")


@pytest.mark.parametrize(("balance", "photo_share"), [(0.0, 0.2), (0.5, 1 / 3), (1.0, 0.5)])
def test_group_balance_shifts_draws_from_clip_frames_to_photos(
    tiny_cache: Path, balance: float, photo_share: float
) -> None:
    """Two clips of four frames and two photos: a photo is drawn as often as a whole clip at 1."""
    data = CropDataset(tiny_cache, "all")
    photos = np.array([not source.endswith(".mp4") for source in data.sources])
    assert photos.sum() == 2
    rng = np.random.default_rng(0)
    drawn = np.concatenate([data.draw(rng, 1, balance) for _ in range(8000)])
    assert abs(photos[drawn].mean() - photo_share) < 0.02


def test_group_balance_outside_zero_to_one_is_refused(tiny_cache: Path) -> None:
    with pytest.raises(ValueError, match="group_balance"):
        CropDataset(tiny_cache, "all").draw(np.random.default_rng(0), 4, 1.5)


def test_cached_targets_project_onto_the_landmarks(tiny_cache: Path) -> None:
    """The fitter's pose, moved into the crop camera, puts the face anchor amid the tracked landmarks."""
    data = CropDataset(tiny_cache, "all")
    batch = data.batch(np.arange(len(data)))
    centre = project(batch.anchor[:, None], batch.intrinsics)[:, 0, :2]
    middle, spread = batch.landmarks.mean(1), batch.landmarks.std(1)
    assert ((centre - middle).abs() < 0.2 * spread).all()


def test_augmentation_moves_landmarks_camera_and_pixels_together(tiny_cache: Path) -> None:
    data = CropDataset(tiny_cache, "all")
    indices = np.arange(4)
    plain, moved = data.batch(indices), data.batch(indices, rng=np.random.default_rng(3))
    plain_centre = project(plain.anchor[:, None], plain.intrinsics)[:, 0, :2]
    moved_centre = project(moved.anchor[:, None], moved.intrinsics)[:, 0, :2]
    ratio = (plain.landmarks[:, 1] - plain_centre) / (moved.landmarks[:, 1] - moved_centre)
    assert torch.allclose(ratio[:, 0], ratio[:, 1], atol=1e-4) and not torch.allclose(ratio, torch.ones(4, 2))
    for k in range(4):
        (xa, ya), (xb, yb) = plain.landmarks[k, 1].round().long(), moved.landmarks[k, 1].round().long()
        patch_a = plain.images[k, :, ya - 8 : ya + 8, xa - 8 : xa + 8].mean(0).flatten()
        patch_b = moved.images[k, :, yb - 8 : yb + 8, xb - 8 : xb + 8].mean(0).flatten()
        assert np.corrcoef(patch_a, patch_b)[0, 1] > 0.95


def test_fitter_targets_give_a_small_landmark_loss(tiny_cache: Path, face_model: FaceModel) -> None:
    data = CropDataset(tiny_cache, "all", skin_size=64)
    batch = data.batch(np.arange(len(data)))
    net = RecNet(ParamLayout.of(face_model))
    losses = RecNetLosses(face_model, albedo_basis(face_model.neutral), LossWeights(), 64)
    with torch.no_grad():
        untrained = losses(net.decode(net(batch.images)), batch, net.base_light)
    fitted = losses(fitter_targets(batch, net.base_light), batch, net.base_light)
    assert fitted["landmark"] / LossWeights().landmark < 0.01  # < 1 % of the crop (2.2 px)
    assert fitted["landmark"] < untrained["landmark"] / 5 and float(fitted["distillation"]) < 1e-6
    assert float(fitted["pose_distillation"]) < 1e-6


def test_mirrored_crops_keep_the_fitted_face_on_their_landmarks(
    tiny_cache: Path, face_model: FaceModel
) -> None:
    """Flipped crops with renumbered landmarks, a mirrored camera and the mirrored face's targets:
    the fitter's face still lands on the landmarks, as closely as unflipped."""
    data = CropDataset(tiny_cache, "all", skin_size=64)
    plain = data.batch(np.arange(len(data)))
    flipped = mirrored(plain, FaceMirror.of(face_model), torch.ones(len(data), dtype=torch.bool))
    assert torch.equal(flipped.images, plain.images.flip(-1))
    losses = RecNetLosses(face_model, albedo_basis(face_model.neutral), LossWeights(), 64)
    base_light = RecNet(ParamLayout.of(face_model)).base_light
    plain_loss = losses(fitter_targets(plain, base_light), plain, base_light)["landmark"]
    flipped_loss = losses(fitter_targets(flipped, base_light), flipped, base_light)["landmark"]
    assert flipped_loss < 1.25 * plain_loss
    unmirrored_targets = dataclasses.replace(flipped, identity=plain.identity, expression=plain.expression)
    assert (
        losses(fitter_targets(unmirrored_targets, base_light), flipped, base_light)["landmark"] > flipped_loss
    )


def test_sampled_pairs_are_flipped_together(tiny_cache: Path, face_model: FaceModel) -> None:
    data = CropDataset(tiny_cache, "all", skin_size=64, mirror=FaceMirror.of(face_model))
    rng = np.random.default_rng(5)
    batches = [data.sample(rng, 8) for _ in range(6)]
    assert all(torch.allclose(b.identity, b.identity[b.pair]) for b in batches)
    plain_identities = {tuple(v.tolist()) for v in data.identity}
    flipped = [tuple(v.tolist()) not in plain_identities for b in batches for v in b.identity]
    assert 0.2 < np.mean(flipped) < 0.8


def test_one_batch_overfits(tiny_cache: Path, face_model: FaceModel) -> None:
    torch.manual_seed(0)
    data = CropDataset(tiny_cache, "all", skin_size=64)
    batch = data.batch(np.arange(4), np.array([1, 0, 3, 2]))
    net = RecNet(ParamLayout.of(face_model))
    losses = RecNetLosses(face_model, albedo_basis(face_model.neutral), LossWeights(), 64)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    history = []
    for _ in range(60):
        total = losses(net.decode(net(batch.images)), batch, net.base_light)["total"]
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(total.item())
    assert np.isfinite(history).all() and min(history[-5:]) < history[0] / 10


def test_settings_are_parsed_and_checked() -> None:
    config = configure(
        [
            "steps=7",
            "weights.photometric=0",
            "resume=true",
            "out=/tmp/x",
            "swaps=a.npz,b.npz",
            "gradient_clip=1.5",
            "weights.expression_distillation_scale=2",
        ]
    )
    assert (
        config.steps == 7
        and config.weights.photometric == 0.0
        and config.resume
        and config.out == Path("/tmp/x")
        and config.swaps == (Path("a.npz"), Path("b.npz"))
        and config.gradient_clip == 1.5
        and config.weights.expression_distillation_scale == 2.0
    )
    with pytest.raises(ValueError, match="unknown setting"):
        configure(["stepz=3"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        configure(["steps"])
    with pytest.raises(ValueError, match="true or false"):
        configure(["resume=maybe"])


def test_the_learning_rate_warms_up_then_decays_to_its_floor() -> None:
    config = TrainConfig(steps=1000, warmup_steps=100, learning_rate=1e-3, learning_rate_floor=0.1)
    rates = [learning_rate(config, step) for step in (0, 99, 100, 550, 1000, 5000)]
    assert rates == pytest.approx([1e-5, 1e-3, 1e-3, 5.5e-4, 1e-4, 1e-4])


def test_weight_decay_reaches_only_the_conv_and_linear_weights(face_model: FaceModel) -> None:
    net = RecNet(ParamLayout.of(face_model))
    decayed, kept = parameter_groups(net, 1e-4)
    weights = {id(m.weight) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert {id(p) for p in decayed["params"]} == weights and decayed["weight_decay"] == 1e-4
    norms = [p for m in net.modules() if isinstance(m, nn.BatchNorm2d) for p in (m.weight, m.bias)]
    assert {id(p) for p in kept["params"]} == {id(p) for p in [*norms, net.head.bias]}
    assert kept["weight_decay"] == 0.0 and len(norms) > 0


def test_training_runs_two_steps_saves_and_resumes(tiny_cache: Path, tmp_path: Path) -> None:
    small = dict(cache=tiny_cache, out=tmp_path / "run", batch_size=4, render_size=64, log_every=1)
    config = TrainConfig(**small, steps=2, validate_every=2, checkpoint_every=2, validation_crops=4)
    weights = train(config, "test")
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records] == ["start", "train", "train", "validation"]
    assert all(np.isfinite(r["total"]) for r in records[1:])
    net = load_weights(weights)
    assert net.architecture == "small" and not net.training
    resumed = TrainConfig(**small, steps=3, validate_every=10, checkpoint_every=10, resume=True)
    train(resumed, "test")
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [(r["event"], r["step"]) for r in records[4:]] == [("start", 2), ("train", 3), ("validation", 3)]


def test_a_run_starts_from_trained_weights_and_records_them(tiny_cache: Path, tmp_path: Path) -> None:
    small = dict(cache=tiny_cache, batch_size=4, render_size=64, log_every=1, validation_crops=4)
    first = train(TrainConfig(**small, out=tmp_path / "first", steps=1), "first run")
    second = train(TrainConfig(**small, out=tmp_path / "second", steps=0, init=first), "second run")
    assert provenance(second)["init"] == {"path": str(first), **provenance(first)}
    started = load_weights(second).state_dict()
    for name, value in load_weights(first).state_dict().items():
        assert torch.equal(started[name], value), name
    with pytest.raises(ValueError, match="holds a small RecNet"):
        train(TrainConfig(**small, out=tmp_path / "third", steps=1, init=first, architecture="resnet18"))


def test_the_script_rejects_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--set", "nonsense=1"])
    assert "unknown setting" in capsys.readouterr().err


def test_a_run_with_weight_averaging_saves_the_average_and_resumes(tiny_cache: Path, tmp_path: Path) -> None:
    small = dict(cache=tiny_cache, out=tmp_path / "run", batch_size=4, render_size=64, validation_crops=4)
    weights = train(TrainConfig(**small, steps=2, ema_decay=0.5), "test")
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    saved = torch.load(checkpoint, weights_only=False)
    averaged = load_weights(weights).state_dict()
    name = "head.weight"
    assert torch.allclose(averaged[name], saved["average"][f"module.{name}"].half().float())
    assert not torch.allclose(averaged[name], saved["net"][name].half().float())
    train(TrainConfig(**small, steps=3, ema_decay=0.5, resume=True), "test")
    assert torch.load(checkpoint, weights_only=False)["step"] == 3
    with pytest.raises(ValueError, match="ema_decay"):
        train(TrainConfig(**small, steps=1, ema_decay=1.0), "test")
    del saved["average"]
    torch.save(saved, checkpoint)
    with pytest.raises(ValueError, match="no weight average"):
        train(TrainConfig(**small, steps=3, ema_decay=0.5, resume=True), "test")


def test_expression_pairs_add_their_supervised_term_to_every_step(
    tiny_cache: Path, expression_pairs: Path, tmp_path: Path
) -> None:
    """Table 4's semi-supervised baseline: RecNet's decoded expression on synthesised pairs is
    supervised by their β_gt, a term of its own in the log and part of the total."""
    small = dict(cache=tiny_cache, batch_size=4, render_size=64, log_every=1, validate_every=10)
    base = TrainConfig(**small, out=tmp_path / "base", steps=2)
    supervised = TrainConfig(
        **small, out=tmp_path / "pairs", steps=2, expression_pairs=expression_pairs, expression_pairs_batch=4
    )
    records = {}
    for config in (base, supervised):
        train(config, "test")
        lines = (config.out / "log.jsonl").read_text().splitlines()
        records[config.out.name] = [json.loads(line) for line in lines if '"train"' in line]
    assert all("expression_pairs" not in record for record in records["base"])
    assert all(record["expression_pairs"] > 0 for record in records["pairs"])
    # The first step sees the same crops with the same weights: the totals differ by the pairs' term.
    first, plain = records["pairs"][0], records["base"][0]
    assert first["landmark"] == pytest.approx(plain["landmark"], rel=1e-5)
    assert first["total"] == pytest.approx(plain["total"] + first["expression_pairs"], rel=1e-4)
