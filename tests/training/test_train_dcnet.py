"""DCNet's pair cache and training script on real training media, end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.nets.dcnet import CONDITION_CHANNELS, DCNet, DCNetConfig, border_ramp
from jr2net.nets.dcnet_checkpoint import dcnet_provenance, load_dcnet, starting_state
from jr2net.training.dcnet_data import COVISIBLE, MOUTH, PairBatch, PairDataset
from jr2net.training.dcnet_losses import MOUTH_GROWTH, DCNetLossWeights, generator_terms
from jr2net.training.dcnet_pairs import PairConfig, build_pairs
from jr2net.training.settings import configure
from jr2net.training.train_dcnet import DCNetTrainConfig, generate, main, psnr, train

SIZE = 64


@pytest.fixture(scope="module")
def pairs(tiny_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dcnet_pairs")
    config = PairConfig(sources_per_clip=1, pairs_per_source=3, max_frames=24, crop_size=SIZE)
    build_pairs(config, out, tiny_media / "videos")
    return out


def test_pairs_split_by_person(pairs: Path) -> None:
    meta = json.loads((pairs / "meta.json").read_text())
    assert meta["pair_count"] == 6 and meta["source_count"] == 2
    assert {source["validation"] for source in meta["sources"]} == {True, False}
    train_data, validation = PairDataset(pairs, "train"), PairDataset(pairs, "validation")
    assert len(train_data) == len(validation) == 3
    # An excluded collection (a decision set) is in no split; the others keep theirs.
    assert len(PairDataset(pairs, "train", exclude=("3ddfa1",))) == 0
    assert len(PairDataset(pairs, "validation", exclude=("3ddfa1",))) == 3
    assert len(PairDataset(pairs, "validation", exclude=("tpsmm", "3ddfa1"))) == 0
    with pytest.raises(ValueError, match="3ddfa"):
        PairDataset(pairs, "train", exclude=("3ddfa",))  # a misspelt collection is no silent no-op
    batch = train_data.batch(np.arange(3))
    assert batch.conditions.shape == (3, len(CONDITION_CHANNELS), SIZE, SIZE)
    assert 0 < float(batch.mask.mean()) < 1
    # The warped source is closer to the truth than the static source inside the face.
    assert float(psnr(batch.conditions[:, :3], batch.truth, batch.mask).mean()) > 0
    twice = batch.mirrored().mirrored()
    for name in ("texture", "conditions", "grid", "truth"):
        torch.testing.assert_close(getattr(twice, name), getattr(batch, name))
    no_light = batch.ablated("no_light")
    assert (
        float(no_light.texture[:, 3:6].abs().max()) == 0
        and float(no_light.conditions[:, 6:9].abs().max()) == 0
    )
    torch.testing.assert_close(no_light.conditions[:, :6], batch.conditions[:, :6])
    assert float(batch.ablated("dense").conditions[:, :3].abs().max()) == 0
    with pytest.raises(ValueError, match="unknown ablation"):
        batch.ablated("rendering")
    with pytest.raises(FileNotFoundError, match="dcnet_pairs"):
        PairDataset(pairs / "missing", "train")


def test_the_rendered_ablation_sees_the_rendered_faces_in_place_of_the_maps(
    pairs: Path, tmp_path: Path
) -> None:
    batch = PairDataset(pairs, "train").batch(np.arange(3))
    assert batch.render is not None and batch.source_render is not None
    # The target render is the shaded face: bright inside the target's mask, black outside it
    # (but for the mask's edge, which the crop resamples bilinearly).
    inside = batch.render.mean(dim=1, keepdim=True)[batch.mask > 0]
    outside = batch.render.mean(dim=1, keepdim=True)[batch.mask == 0]
    assert float(inside.mean()) > 0.2 and float(outside.mean()) < 0.01
    rendered = batch.ablated("rendered")
    torch.testing.assert_close(rendered.conditions[:, 6:9], batch.render)
    torch.testing.assert_close(rendered.texture[:, 3:6], batch.source_render)
    assert (
        float(rendered.conditions[:, 9:].abs().max()) == 0 and float(rendered.texture[:, 6:].abs().max()) == 0
    )
    assert float(rendered.conditions[:, :3].abs().max()) == 0, "no warped image"
    torch.testing.assert_close(rendered.conditions[:, 3:6], batch.conditions[:, 3:6])
    mirrored = rendered.mirrored()
    assert mirrored.render is not None
    torch.testing.assert_close(mirrored.render, batch.render.flip(-1))
    # A cache made before the renders were stored is refused before a run writes anything.
    old = tmp_path / "old_pairs"
    old.mkdir()
    for path in pairs.iterdir():
        if not path.name.endswith("renders.npy"):
            (old / path.name).symlink_to(path)
    assert PairDataset(old, "train").batch(np.arange(1)).render is None
    config = DCNetTrainConfig(
        pairs=old, out=tmp_path / "run", ablation="rendered", network=DCNetConfig(keep_seen_source=False)
    )
    with pytest.raises(ValueError, match="rebuild it"):
        train(config)
    assert not config.out.exists()


def test_training_runs_resumes_and_saves(pairs: Path, tmp_path: Path) -> None:
    base = DCNetTrainConfig(
        pairs=pairs,
        out=tmp_path / "run",
        steps=3,
        batch_size=2,
        adversarial_start=1,
        log_every=1,
        validate_every=3,
        sample_every=3,
        checkpoint_every=1,
        warmup_steps=1,
    )
    train(base, "test")
    weights = train(configure(base, ["steps=5", "resume=true"]), "test resumed")
    records = [json.loads(line) for line in (base.out / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["event"] == "train"]
    assert steps == [1, 2, 3, 4, 5]
    assert "discriminator" in records[-2] and "feature_matching" in records[-2]
    validation = [r for r in records if r["event"] == "validation"][-1]
    assert {"dcnet_psnr", "warped_face_psnr", "static_psnr"} <= set(validation)
    assert (base.out / "samples" / "step_000005.png").is_file()
    assert dcnet_provenance(weights)["steps"] == 5
    assert load_dcnet(weights).config == base.network


def test_settings_name_fields_and_nested_fields() -> None:
    overrides = ["steps=7", "weights.l1=2.5", "network.generator_widths=32,16", "exclude=retalk,synctalk"]
    config = configure(DCNetTrainConfig(), overrides)
    assert config.steps == 7 and config.weights.l1 == 2.5 and config.network.generator_widths == (32, 16)
    assert config.exclude == ("retalk", "synctalk")
    for bad in (["stepz=1"], ["steps"], ["weights=1"], ["weights.nope=1"], ["mirror=maybe"]):
        with pytest.raises(ValueError):
            configure(DCNetTrainConfig(), bad)
    with pytest.raises(SystemExit):
        main(["--set", "learning_rate=-1"])


@pytest.mark.parametrize("ablation", ["dense", "rendered"])
def test_the_ablations_without_the_warped_image_ask_for_the_seen_source_to_be_given_up(
    tmp_path: Path, ablation: str
) -> None:
    config = DCNetTrainConfig(pairs=tmp_path / "no_pairs", out=tmp_path / "run", ablation=ablation)
    with pytest.raises(ValueError, match="keep_seen_source=false"):
        train(config)
    with pytest.raises(ValueError, match="no warped image to keep in the mouth"):
        train(configure(config, ["network.keep_seen_source=false", "keep_shown_mouth=true"]))
    assert not (tmp_path / "run").exists(), "refused before anything was written"


def test_the_decisive_alpha_term_asks_the_mask_to_show_one_image_not_both() -> None:
    """``weights.decisive_alpha``: nothing for a mask of 0 or 1 (before the border ramp), most for
    0.5, and its gradient pushes a mask towards whichever end it is nearer."""
    size = 32
    ramp = border_ramp(size)
    image, mask = torch.rand(1, 3, size, size), torch.ones(1, 1, size, size)
    weights = DCNetLossWeights(decisive_alpha=1.0)

    def term(alpha: torch.Tensor) -> torch.Tensor:
        return generator_terms(image, alpha, image, mask, None, None, weights, None)["decisive_alpha"]

    assert float(term(ramp.clone())) == pytest.approx(0, abs=1e-6)
    assert float(term(torch.zeros_like(ramp))) == 0
    halves = [term(level * ramp) for level in (0.2, 0.5, 0.8)]
    assert float(halves[1]) > float(halves[0]) == pytest.approx(float(halves[2]), rel=1e-5)
    assert float(halves[1]) == pytest.approx(float(ramp.mean()), rel=1e-5)
    low, high = (torch.full_like(ramp, level).mul(ramp).requires_grad_() for level in (0.3, 0.7))
    (term(low) + term(high)).backward()
    inside = ramp == 1
    assert (low.grad[inside] > 0).all() and (high.grad[inside] < 0).all()
    default = generator_terms(image, low, image, mask, None, None, DCNetLossWeights(), None)
    assert "decisive_alpha" not in default


def test_the_face_alpha_term_asks_for_the_generated_face_where_the_source_would_show_through() -> None:
    """``weights.face_alpha``: nothing where the blending mask reaches 0.99 inside the face (or
    anywhere outside it), the shortfall inside it otherwise, less the crop's border ramp."""
    size = 32
    mask = torch.zeros(1, 1, size, size)
    mask[..., 8:24, 8:24] = 1
    image = torch.rand(1, 3, size, size)
    weights = DCNetLossWeights(face_alpha=1.0)

    def term(alpha: torch.Tensor) -> torch.Tensor:
        return generator_terms(image, alpha, image, mask, None, None, weights, None)["face_alpha"]

    assert term(0.99 * mask) == 0, "the face fully generated; the rest free"
    half = torch.full_like(mask, 0.5).requires_grad_()
    shortfall = term(half)
    assert float(shortfall) == pytest.approx(0.49)
    shortfall.backward()
    assert (half.grad[mask == 0] == 0).all() and (half.grad[mask == 1] < 0).all()
    assert "face_alpha" not in generator_terms(image, half, image, mask, None, None, DCNetLossWeights(), None)


def test_the_mouth_term_weighs_the_error_inside_the_grown_mouth_only() -> None:
    """``weights.mouth_l1``: the mean error over the target's mouth interior grown by
    MOUTH_GROWTH of the crop (its lips), nothing for errors beyond it; absent by default."""
    size = 96
    mouth = torch.zeros(1, 1, size, size)
    mouth[..., 40:44, 30:60] = 1
    truth = torch.rand(1, 3, size, size)
    alpha, face = torch.ones(1, 1, size, size), torch.ones(1, 1, size, size)
    weights = DCNetLossWeights(mouth_l1=1.0)
    reach = round(MOUTH_GROWTH * size)

    def term(output: torch.Tensor) -> torch.Tensor:
        return generator_terms(output, alpha, truth, face, None, None, weights, None, mouth)["mouth_l1"]

    far = truth.clone()
    far[..., : 40 - reach - 1, :] += 0.5  # wrong only above the lips
    assert float(term(far)) == 0
    lips = truth.clone()
    lips[..., 40 - reach, 45] += 0.3  # wrong on one pixel of the upper lip, in all three channels
    grown = (44 + reach - (40 - reach)) * (60 + reach - (30 - reach))
    assert float(term(lips)) == pytest.approx(0.3 / grown, rel=1e-4)
    default = generator_terms(lips, alpha, truth, face, None, None, DCNetLossWeights(), None, mouth)
    assert "mouth_l1" not in default


def _mouth_batch(size: int, source_scale: float) -> PairBatch:
    """A pair whose target mouth interior is a square the source saw, through a grid that reads
    the source crop around its centre shrunk by ``source_scale`` (its area by the square)."""
    conditions = torch.rand(1, len(CONDITION_CHANNELS), size, size)
    conditions[:, COVISIBLE] = 1
    conditions[:, MOUTH] = 0
    conditions[:, MOUTH, 24:40, 20:44] = 1
    steps = (torch.arange(size) + 0.5) * (2 / size) - 1
    rows, columns = torch.meshgrid(steps, steps, indexing="ij")
    grid = source_scale * torch.stack([columns, rows], dim=-1)[None]
    return PairBatch(torch.rand(1, 9, size, size), conditions, grid, torch.rand(1, 3, size, size))


def test_a_run_can_keep_the_mouth_the_source_showed_open_as_the_renderer_does() -> None:
    """``keep_shown_mouth``: inside a mouth the source saw whole, the composited crop is the warped
    source, as :func:`jr2net.dcnet_renderer.kept_mouth` leaves it; a mouth the source saw squeezed
    (a closed mouth the target opens) stays DCNet's, and so does everything outside the mouth."""
    size = 64
    net = DCNet(DCNetConfig(keep_seen_source=False)).eval()
    with torch.no_grad():
        net.out.bias[:3] = -0.3  # a correction everywhere (a new net starts with none)
    whole, squeezed = _mouth_batch(size, 1.0), _mouth_batch(size, 0.3)
    assert float(whole.shown_mouth[..., 30, 32]) == pytest.approx(1, abs=1e-3)
    assert float(whole.shown_mouth[..., 5, 5]) == pytest.approx(0, abs=1e-6)
    assert float(squeezed.shown_mouth.max()) == pytest.approx(0, abs=1e-6)
    with torch.no_grad():
        plain, alpha = generate(net, whole)
        kept, kept_alpha = generate(net, whole, keep_shown_mouth=True)
        torch.testing.assert_close(
            generate(net, squeezed, keep_shown_mouth=True)[0], generate(net, squeezed)[0]
        )
    torch.testing.assert_close(kept_alpha, alpha)
    inside, outside = (
        (slice(None), slice(None), slice(28, 36), slice(24, 40)),
        (..., slice(0, 12), slice(None)),
    )
    under = torch.ones_like(alpha) - alpha
    warped_there = alpha * whole.conditions[:, :3] + under * whole.source_image
    torch.testing.assert_close(kept[inside], warped_there[inside], atol=2e-3, rtol=0)
    torch.testing.assert_close(kept[outside], plain[outside])
    assert float((plain[inside] - kept[inside]).abs().mean()) > 0.05


def _two_step_run(pairs: Path, out: Path, network: DCNetConfig | None = None) -> DCNetTrainConfig:
    """A run of two steps of two pairs that validates and saves samples at its end."""
    return DCNetTrainConfig(
        pairs=pairs,
        out=out,
        network=network or DCNetConfig(),
        steps=2,
        batch_size=2,
        validate_every=2,
        sample_every=2,
        warmup_steps=1,
    )


def test_a_moved_background_net_trains_and_loads_with_its_second_mask(pairs: Path, tmp_path: Path) -> None:
    config = _two_step_run(pairs, tmp_path / "moved", DCNetConfig(moved_background=True))
    net = load_dcnet(train(config, "test"))
    assert net.config.moved_background
    batch = PairDataset(pairs, "validation").batch(np.arange(1))
    with torch.no_grad():
        _, masks = net(batch.texture, batch.conditions, batch.grid)
    assert masks.shape[1] == 2
    with pytest.raises(ValueError, match="no warped image to show"):
        train(configure(config, ["ablation=dense", "network.keep_seen_source=false"]), "test")


def test_a_run_starts_from_trained_weights_and_a_moved_background_starts_its_share_at_a_half(
    pairs: Path, tmp_path: Path
) -> None:
    plain = _two_step_run(pairs, tmp_path / "plain")
    start = train(plain, "test")
    moved = configure(plain, [f"init={start}", "network.moved_background=true", f"out={tmp_path / 'moved'}"])
    state = starting_state(start, moved.network)
    trained = load_dcnet(start)
    net = DCNet(moved.network)
    net.load_state_dict(state)
    batch = PairDataset(pairs, "validation").batch(np.arange(1))
    with torch.no_grad():
        image, masks = net(batch.texture, batch.conditions, batch.grid)
        trained_image, trained_alpha = trained(batch.texture, batch.conditions, batch.grid)
    torch.testing.assert_close(image, trained_image)
    torch.testing.assert_close(masks[:, :1], trained_alpha)
    torch.testing.assert_close(masks[:, 1:], 0.5 * border_ramp(SIZE).expand_as(masks[:, 1:]))
    weights = train(moved, "test init")
    assert dcnet_provenance(weights)["init"]["path"] == str(start)
    assert load_dcnet(weights).config.moved_background
    shutil.copyfile(weights, start)  # the start file replaced during the run, as shipping it would
    resumed = train(configure(moved, ["steps=3", "resume=true"]), "test init resumed")
    assert dcnet_provenance(resumed)["init"]["command"] == "test", "the start as it was when the run began"
    with pytest.raises(ValueError, match="holds a DCNet of"):
        starting_state(start, DCNetConfig(generator_widths=(32, 16)))
