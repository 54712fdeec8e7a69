"""DCNet's crop and conditions on a real reenactment, and the renderer's paste."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.dcnet_renderer import DCNetRenderer, paste, soft_onset
from jr2net.dense_conditions import CropWindow, SourceCrop, dense_conditions
from jr2net.face_model import FaceModel
from jr2net.nets.dcnet import CONDITION_CHANNELS
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import Reenactor, prepare_source, relative_target
from jr2net.shapes import ShapeError
from tests.conftest import video_frames

SIZE = 128


@pytest.fixture(scope="module")
def reenactor(face_model: FaceModel, shared_media: Path) -> Reenactor:
    image = video_frames(shared_media / "liveportrait/driving/d18.mp4", {0})[0]
    with Reconstructor(face_model, mode="image") as reconstructor:
        params = reconstructor.image(image).params
    return Reenactor(face_model, prepare_source(face_model, image, params))


def test_window_maps_between_frame_and_crop() -> None:
    mask = torch.zeros(1, 1, 100, 200)
    mask[..., 20:60, 50:90] = 1
    window = CropWindow.around(mask, scale=2.0)
    assert (window.centre_x, window.centre_y, window.side) == (70.0, 40.0, 80.0)
    points = torch.tensor([[30.0, 0.0], [110.0, 80.0]])
    torch.testing.assert_close(window.to_crop(points, 64), torch.tensor([[0.0, 0.0], [64.0, 64.0]]))
    torch.testing.assert_close(window.to_frame(window.to_crop(points, 64), 64), points)
    with pytest.raises(ValueError, match="empty"):
        CropWindow.around(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ShapeError):
        CropWindow.around(torch.zeros(8, 8))


def test_unchanged_pose_warps_the_source_onto_itself(reenactor: Reenactor) -> None:
    source = reenactor.source
    crop = SourceCrop.of(source, SIZE)
    dense = dense_conditions(reenactor.warp(source.params), crop)
    assert dense.conditions.shape == (1, len(CONDITION_CHANNELS), SIZE, SIZE)
    mask = dense.conditions[:, CONDITION_CHANNELS.index("mask")] > 0.5
    assert 0.1 < float(mask.float().mean()) < 0.6
    warped, texture = dense.conditions[:, :3], crop.texture[:, :3]
    assert float((warped - texture).abs().mean()) < 0.01
    centres = (torch.arange(SIZE, dtype=torch.float32) + 0.5) / SIZE * 2 - 1
    identity = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1)[None]
    assert float((dense.grid - identity).abs()[mask].max()) < 0.01


def test_head_turn_moves_the_grid(reenactor: Reenactor) -> None:
    source = reenactor.source
    turned = source.params.replace(rotation=source.params.rotation + torch.tensor([[0.0, 0.3, 0.0]]))
    target = relative_target(source.params, turned, source.params)
    crop = SourceCrop.of(source, SIZE)
    still = dense_conditions(reenactor.warp(source.params), crop)
    moved = dense_conditions(reenactor.warp(target), crop)
    mask = moved.conditions[:, CONDITION_CHANNELS.index("mask")] > 0.5
    shift = (moved.grid - still.grid)[mask].abs().mean(dim=0)
    assert float(shift[0]) > 0.02  # a yaw moves the source points sideways


def test_renderer_with_a_transparent_crop_gives_the_source_back(reenactor: Reenactor) -> None:
    def transparent(texture: torch.Tensor, conditions: torch.Tensor, grid: torch.Tensor) -> tuple:
        return torch.ones_like(texture[:, :3]), torch.zeros_like(texture[:, :1])

    source = reenactor.source
    frame = DCNetRenderer(lambda size: transparent, SIZE)(reenactor.warp(source.params))
    torch.testing.assert_close(frame, source.image)


def test_paste_lands_in_the_window_only() -> None:
    frame = torch.zeros(1, 3, 60, 80)
    warped = torch.full((1, 3, 60, 80), 0.25)
    window = CropWindow(40.0, 30.0, 20.0)
    correction, alpha = torch.full((1, 3, 16, 16), 0.75), torch.ones(1, 1, 16, 16)
    out = paste(window, correction, alpha, warped, frame)
    assert float(out[..., 25:35, 35:45].min()) > 1 - 1e-5
    assert float(out[..., :15, :].max()) == 0.0 and float(out[..., :, :25].max()) == 0.0
    assert np.isclose(float(out.mean()), 20 * 20 / (60 * 80), atol=0.01)


def test_paste_blends_over_the_moved_shares_warped_frame() -> None:
    """A half mask over a frame whose right half the second channel moves: the static frame
    shows through on the left, the warped one on the right."""
    frame, warped = torch.zeros(1, 3, 32, 32), torch.full((1, 3, 32, 32), 0.5)
    window = CropWindow(16.0, 16.0, 32.0)
    masks = torch.full((1, 2, 32, 32), 0.5)
    masks[:, 1, :, :16] = 0
    masks[:, 1, :, 16:] = 1
    out = paste(window, torch.zeros(1, 3, 32, 32), masks, warped, frame)
    torch.testing.assert_close(out[..., 8:24, 4:12], torch.full((1, 3, 16, 8), 0.25))
    torch.testing.assert_close(out[..., 8:24, 20:28], torch.full((1, 3, 16, 8), 0.5))


def test_the_correction_fades_in_from_the_unseen_regions_edge() -> None:
    """Seen on the left half, unseen on the right: no correction where seen, part of it on the
    unseen half's first pixel, all of it a few pixels in (1/64 of a 128 crop: 2 px)."""
    conditions = torch.zeros(1, len(CONDITION_CHANNELS), SIZE, SIZE)
    conditions[:, CONDITION_CHANNELS.index("covisible"), :, : SIZE // 2] = 1
    faded = soft_onset(torch.ones(1, 3, SIZE, SIZE), conditions)
    row = faded[0, 0, SIZE // 2]
    assert float(row[: SIZE // 2].abs().max()) == 0.0
    assert 0.0 < float(row[SIZE // 2]) < 0.5
    torch.testing.assert_close(row[SIZE // 2 + 4 :], torch.ones(SIZE // 2 - 4), atol=2e-3, rtol=0)


def test_paste_leaves_the_kept_share_to_the_warped_source() -> None:
    """Kept on the left half: the warped source alone there, the correction added on the right."""
    warped = torch.full((1, 3, 32, 32), 0.25)
    kept = torch.zeros(1, 1, 32, 32)
    kept[..., :16] = 1
    window = CropWindow(16.0, 16.0, 32.0)
    correction, alpha = torch.full((1, 3, 32, 32), 0.5), torch.ones(1, 1, 32, 32)
    out = paste(window, correction, alpha, warped, torch.zeros_like(warped), kept)
    torch.testing.assert_close(out[..., 8:24, 6:14], torch.full((1, 3, 16, 8), 0.25))
    torch.testing.assert_close(out[..., 8:24, 18:26], torch.full((1, 3, 16, 8), 0.75))


def test_paste_keeps_the_warped_frames_detail_under_a_flat_correction() -> None:
    rng = torch.Generator().manual_seed(0)
    warped = torch.rand(1, 3, 64, 64, generator=rng) * 0.5
    window = CropWindow(32.0, 32.0, 64.0)
    correction, alpha = torch.full((1, 3, 8, 8), 0.1), torch.ones(1, 1, 8, 8)
    out = paste(window, correction, alpha, warped, torch.zeros_like(warped))
    torch.testing.assert_close(out[..., 8:56, 8:56], warped[..., 8:56, 8:56] + 0.1)


@pytest.mark.parametrize(("side", "expected"), [(10.0, 32), (166.25, 192), (192.0, 192), (400.0, 256)])
def test_the_crop_is_the_windows_own_pixels_rounded_up_and_capped(side: float, expected: int) -> None:
    assert CropWindow(0.0, 0.0, side).crop_size() == expected


def test_the_renderer_asks_for_the_windows_crop_size_unless_fixed(reenactor: Reenactor) -> None:
    asked = []

    def transparent(size: int):
        asked.append(size)
        return lambda texture, conditions, grid: (texture[:, :3], torch.zeros_like(texture[:, :1]))

    warp = reenactor.warp(reenactor.source.params)
    window_size = CropWindow.around((reenactor.source.depth > 0).float()[:, None]).crop_size(1024)
    DCNetRenderer(transparent, 1024)(warp)
    DCNetRenderer(transparent, 64, fixed=True)(warp)
    assert 64 < window_size < 1024
    assert asked == [window_size, 64]
