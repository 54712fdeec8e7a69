"""DCNet: shapes, the border-free blending mask, the feature warp, and its weights files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jr2net.nets.dcnet import (
    CONDITION_CHANNELS,
    TEXTURE_CHANNELS,
    DCNet,
    DCNetConfig,
    background,
    border_ramp,
    warp_features,
)
from jr2net.nets.dcnet_checkpoint import dcnet_provenance, load_dcnet, save_dcnet
from jr2net.shapes import ShapeError

SIZE = 64


def _inputs(batch: int = 2, size: int = SIZE, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    texture = torch.rand(batch, len(TEXTURE_CHANNELS), size, size, generator=generator)
    conditions = torch.rand(batch, len(CONDITION_CHANNELS), size, size, generator=generator)
    grid = torch.rand(batch, size, size, 2, generator=generator) * 2 - 1
    return texture, conditions, grid


def test_output_is_an_image_and_a_mask_that_vanishes_at_the_border() -> None:
    torch.manual_seed(0)
    output = DCNet().eval().generate(*_inputs())
    assert output.image.shape == (2, 3, SIZE, SIZE) and output.alpha.shape == (2, 1, SIZE, SIZE)
    assert float(output.image.detach().min()) >= 0 and float(output.image.detach().max()) <= 1
    edges = torch.cat([output.alpha[..., 0, :], output.alpha[..., -1, :], output.alpha[..., :, 0]], dim=-1)
    assert float(edges.max()) < 0.1
    assert float(output.alpha[..., SIZE // 2, SIZE // 2].min()) > 0.2


def test_moved_background_adds_a_share_that_vanishes_at_the_border() -> None:
    torch.manual_seed(0)
    output = DCNet(DCNetConfig(moved_background=True)).eval().generate(*_inputs())
    assert output.alpha.shape == (2, 2, SIZE, SIZE)
    share = output.alpha[:, 1:].detach()
    assert float(share[..., 0, :].max()) < 0.1 and float(share[..., SIZE // 2, SIZE // 2].min()) > 0.2
    assert float(output.alpha[:, :1, SIZE // 2, SIZE // 2].min()) > 0.2


def test_background_is_the_static_source_or_the_warped_ones_share_over_it() -> None:
    warped, static = torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    alpha = torch.full((1, 1, 4, 4), 0.5)
    assert background(alpha, warped, static) is static
    share = torch.linspace(0, 1, 16).reshape(1, 1, 4, 4)
    torch.testing.assert_close(
        background(torch.cat([alpha, share], 1), warped, static), share.expand(1, 3, 4, 4)
    )


def test_untrained_net_gives_back_the_warped_source() -> None:
    texture, conditions, grid = _inputs()
    with torch.no_grad():
        image, _ = DCNet().eval()(texture, conditions, grid)
    torch.testing.assert_close(image, conditions[:, :3].clamp(0, 1))


@pytest.mark.parametrize("keep", [True, False])
def test_where_the_source_saw_the_target_it_is_kept(keep: bool) -> None:
    torch.manual_seed(0)
    net = DCNet(DCNetConfig(keep_seen_source=keep)).eval()
    torch.nn.init.normal_(net.out.weight, std=0.05)  # a correction everywhere
    texture, conditions, grid = _inputs(batch=1)
    conditions[:, :3] = 0.5  # mid-grey warped source, so no clamping hides the correction
    seen = torch.zeros(1, SIZE, SIZE)
    seen[:, :, : SIZE // 2] = 1  # the left half co-visible, outside the mouth
    conditions[:, CONDITION_CHANNELS.index("covisible")] = seen
    conditions[:, CONDITION_CHANNELS.index("mouth")] = 0
    conditions[:, CONDITION_CHANNELS.index("mouth"), :8, :8] = 1  # the mouth: made, seen or not
    with torch.no_grad():
        image, _ = net(texture, conditions, grid)
    correction = (image - 0.5).abs()
    assert float(correction[..., :, SIZE // 2 :].mean()) > 1e-3, "made where the source saw nothing"
    assert float(correction[..., :8, :8].mean()) > 1e-3
    kept = correction[..., 8:, : SIZE // 2]
    assert float(kept.max()) == 0.0 if keep else float(kept.mean()) > 1e-3


def test_border_ramp_is_one_inside_and_zero_towards_the_edge() -> None:
    ramp = border_ramp(256)[0, 0]
    assert float(ramp[128, 128]) == 1.0
    assert float(ramp[0, 128]) < 0.05 and float(ramp[128, -1]) < 0.05
    assert torch.equal(ramp, ramp.flip(0)) and torch.equal(ramp, ramp.T)


def test_identity_grid_leaves_features_in_place() -> None:
    features = torch.rand(1, 4, 16, 16)
    centres = (torch.arange(SIZE, dtype=torch.float32) + 0.5) / SIZE * 2 - 1
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1)[None]
    torch.testing.assert_close(warp_features(features, grid), features, atol=1e-5, rtol=0)


def test_grid_moves_features() -> None:
    """A grid that samples one column to the right shifts the features one column left."""
    features = torch.rand(1, 4, 16, 16)
    xs = (torch.arange(16, dtype=torch.float32) + 1.5) / 16 * 2 - 1
    ys = (torch.arange(16, dtype=torch.float32) + 0.5) / 16 * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]
    warped = warp_features(features, grid)
    torch.testing.assert_close(warped[..., :-1], features[..., 1:], atol=1e-5, rtol=0)


def test_wrong_shapes_get_clear_errors() -> None:
    net = DCNet().eval()
    texture, conditions, grid = _inputs()
    with pytest.raises(ShapeError, match="conditions"):
        net.generate(texture, conditions[:, :5], grid)
    with pytest.raises(ShapeError, match="grid"):
        net.generate(texture, conditions, grid[:1])
    with pytest.raises(ValueError, match="divisible by 8"):
        net.generate(*_inputs(size=60))


def test_weights_round_trip_in_fp16(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = DCNet(DCNetConfig(generator_widths=(32, 16))).eval()
    path = tmp_path / "dcnet.pt"
    save_dcnet(net, path, {"command": "test"})
    loaded = load_dcnet(path)
    assert loaded.config == net.config
    assert dcnet_provenance(path) == {"command": "test"}
    inputs = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(*inputs)[0], net(*inputs)[0], atol=2e-2, rtol=0)


def test_missing_and_foreign_weights_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train_dcnet"):
        load_dcnet(tmp_path / "none.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable DCNet"):
        load_dcnet(junk)
    other = tmp_path / "other.pt"
    torch.save({"format": "something else"}, other)
    with pytest.raises(ValueError, match="not a DCNet weights file"):
        load_dcnet(other)
