"""ETNet's training script on a tiny synthesised pair set: it logs the expression errors, resumes,
and writes loadable fp16 weights; a missing pair set is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jr2net.nets.checkpoint import SHIPPED_WEIGHTS as SHIPPED_RECNET
from jr2net.nets.checkpoint import load_weights
from jr2net.nets.etnet import WEIGHTS_FORMAT, load_etnet
from jr2net.nets.recaugnet import load_recaugnet
from jr2net.training.train_etnet import ETNetTrainConfig, train


def _tiny(pairs: Path, out: Path, **changes: object) -> ETNetTrainConfig:
    """A two-step run on ``pairs`` (training and validation both) into ``out``."""
    return ETNetTrainConfig(
        pairs=pairs,
        validation_pairs=pairs,
        out=out,
        steps=2,
        batch_size=4,
        warmup_steps=1,
        validate_every=2,
        device="cpu",
        **changes,
    )


def test_training_logs_resumes_and_writes_weights(expression_pairs: Path, tmp_path: Path) -> None:
    config = _tiny(expression_pairs, tmp_path, input_size=64, log_every=1)
    train(config)
    resumed = train(ETNetTrainConfig(**{**config.__dict__, "steps": 4, "resume": True}))
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2, 3], "the resumed run goes on from step 2"
    assert {"expression_mae", "expression_mae_large", "expression_mae_ordinary"} <= set(records[-1])
    saved = torch.load(resumed, weights_only=False)
    assert saved["format"] == WEIGHTS_FORMAT and saved["architecture"] == "small"
    assert all(v.dtype == torch.float16 for v in saved["state"].values() if v.is_floating_point())
    assert saved["provenance"]["train_pairs"] == 8
    net, provenance = load_etnet(resumed)
    assert net.architecture == "small" and provenance["config"]["input_size"] == "64"
    with pytest.raises(ValueError, match="not a.* ETNet weights file"):
        load_etnet(tmp_path / "checkpoint.pt")


def test_resume_needs_a_checkpoint(expression_pairs: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        config = ETNetTrainConfig(
            pairs=expression_pairs, validation_pairs=expression_pairs, out=tmp_path, resume=True, device="cpu"
        )
        train(config)


def test_missing_pairs_say_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="synth_expressions"):
        train(
            ETNetTrainConfig(pairs=tmp_path / "nope", validation_pairs=tmp_path, out=tmp_path, device="cpu")
        )


def test_a_head_on_recnets_backbone_trains_only_the_head_and_makes_a_recaugnet(
    expression_pairs: Path, tmp_path: Path
) -> None:
    config = _tiny(expression_pairs, tmp_path / "head", architecture="recnet_head", input_size=224)
    with pytest.raises(ValueError, match="input_size=224"):
        train(ETNetTrainConfig(**{**config.__dict__, "input_size": 160}))
    assert not config.out.exists(), "refused before anything was written"
    weights = train(config)
    net, _ = load_etnet(weights)
    recnet = load_weights(SHIPPED_RECNET)
    for name, value in recnet.backbone.state_dict().items():
        assert torch.equal(net.backbone.state_dict()[name], value), f"{name} moved in training"
    augmented = load_recaugnet(SHIPPED_RECNET, weights)
    assert augmented.etnet.shares_recnet_backbone and augmented.etnet_size == 224


def test_a_head_learns_the_landmarks_of_real_crops_beside_the_pairs(
    expression_pairs: Path, tiny_cache: Path, tmp_path: Path
) -> None:
    """``landmark_weight`` adds RecNet's landmark term on real crops to each step's loss."""
    head = _tiny(
        expression_pairs,
        tmp_path / "head",
        architecture="recnet_head",
        input_size=224,
        crops=tiny_cache,
        landmark_weight=50.0,
        landmark_batch=2,
        log_every=1,
    )
    with pytest.raises(ValueError, match="architecture=recnet_head"):
        train(ETNetTrainConfig(**{**head.__dict__, "architecture": "small", "input_size": 64}))
    assert not head.out.exists(), "refused before anything was written"
    train(head)
    records = [json.loads(line) for line in (head.out / "log.jsonl").read_text().splitlines()]
    for record in records:
        assert 0 < record["landmark"] < 0.2, "crop-size units: a fitted face is a few pixels off"
        assert record["loss"] == pytest.approx(record["activation"] + 50.0 * record["landmark"], rel=1e-5)
