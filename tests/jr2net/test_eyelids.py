"""A closing eye's lid reads the skin above the source's crease: the take, the reads, a real blink."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.compositing import pixel_centres
from jr2net.eyelids import CREASE, LASH_BAND, LASH_LINE, closed_lid_reads, skin_above_crease
from jr2net.face_model import FaceModel
from jr2net.gaze import EYE_OPENINGS
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import Controls, Reenactor, prepare_source
from tests.conftest import video_frames

SIZE = 200
CORNERS = (60.0, 140.0)  # the eyes' corners' x (both eyes drawn on the same spot)
LID_Y = 100.0  # the corners' height


def _contour(opening: float) -> torch.Tensor:
    """(16, 2) an almond eye contour in :data:`EYE_OPENINGS` order: corner, upper lid, corner,
    lower lid; ``opening`` is the lids' gap at the middle (pixels)."""
    left, right = CORNERS
    upper_x = torch.linspace(left, right, 9)
    bulge = torch.sin(torch.linspace(0, torch.pi, 9))
    upper = torch.stack([upper_x, LID_Y - 0.6 * opening * bulge], dim=-1)
    lower = torch.stack([upper_x, LID_Y + 0.4 * opening * bulge], dim=-1).flip(0)[1:-1]
    return torch.cat([upper, lower])


def _eyes(opening: float) -> torch.Tensor:
    return torch.stack([_contour(opening)] * len(EYE_OPENINGS))


def _image(fold: float, above: float) -> torch.Tensor:
    """(1, 3, H, W): ``above`` over the skin above the crease, ``fold`` between it and the lid."""
    image = torch.full((1, 3, SIZE, SIZE), 0.5)
    crease = LID_Y - 12.0 - CREASE * (CORNERS[1] - CORNERS[0])
    rows = torch.arange(SIZE) + 0.5
    image[..., (rows < crease), :] = above
    image[..., (rows >= crease) & (rows < LID_Y - 12.0 + 1), :] = fold
    return image


def test_lids_take_the_skin_above_the_crease_only_where_it_is_the_lighter() -> None:
    open_eyes = _eyes(20.0)
    assert skin_above_crease(_image(fold=0.2, above=0.6), open_eyes).tolist() == [1.0, 1.0]
    assert skin_above_crease(_image(fold=0.6, above=0.3), open_eyes).tolist() == [0.0, 0.0]
    half = skin_above_crease(_image(fold=0.5, above=0.55), open_eyes)
    assert 0.2 < float(half[0]) < 0.8


def test_an_eye_no_more_closed_than_the_source_reads_as_before() -> None:
    points = pixel_centres(SIZE, SIZE)
    source = _eyes(20.0)
    assert closed_lid_reads(points, source, source, torch.ones(2)) is None
    assert closed_lid_reads(points, source, _eyes(30.0), torch.ones(2)) is None


def test_a_closed_lid_reads_upward_from_the_source_crease() -> None:
    """The target eye shut (lids 1 px apart): between where its crease lies (as open as the
    source's over its lower lid, CREASE widths up) and its lash band, each column reads the
    source from the source's crease upward; nothing moves but that and the opening."""
    points = pixel_centres(SIZE, SIZE)
    source, target = _eyes(20.0), _eyes(1.0)
    result = closed_lid_reads(points, source, target, torch.ones(2))
    assert result is not None
    moved, inside = result
    assert moved.shape == points.shape and inside.shape == (1, 1, SIZE, SIZE)
    changed = (moved != points).any(dim=-1)[0]
    assert torch.equal(changed, inside[0, 0] > 0)
    width = CORNERS[1] - CORNERS[0]
    column = int(sum(CORNERS) / 2)  # the middle, past the corners' fade
    source_lid, target_lid = LID_Y - 12.0, LID_Y - 0.6
    crease = LID_Y + 0.4 - 20.0 - CREASE * width  # the target's lower lid + the source's gap
    rows = torch.nonzero(changed[:, column])[:, 0].float() + 0.5
    lid, opening = rows[rows < target_lid], rows[rows >= target_lid]
    assert float(lid.min()) >= crease - 1 and float(lid.max()) <= target_lid - LASH_BAND * width + 1
    assert float(opening.max()) <= LID_Y + 0.4 + 1  # and the opening, down to the lower lid
    full = lid[lid >= crease + 0.5 * (target_lid - LASH_BAND * width - crease)]  # past the fade-in
    read = moved[0, full.long(), column]
    expected = source_lid - CREASE * width - (full - crease)
    assert torch.allclose(read[:, 1], expected, atol=0.5)
    assert torch.allclose(read[:, 0], torch.full_like(read[:, 0], column + 0.5), atol=0.5)
    assert not changed[:, : int(CORNERS[0])].any() and not changed[:, int(CORNERS[1]) + 1 :].any()


def test_a_shut_opening_reads_the_lash_line_whatever_the_lid_takes() -> None:
    """Between the shut target's lids, the middle column reads the source's lash line instead of
    its eyeball squeezed flat; with no take of the skin above the crease the lid above stays."""
    points = pixel_centres(SIZE, SIZE)
    result = closed_lid_reads(points, _eyes(20.0), _eyes(2.0), torch.zeros(2))
    assert result is not None
    moved, inside = result
    column = int(sum(CORNERS) / 2)
    changed = torch.nonzero(inside[0, 0, :, column])[:, 0]
    target_upper, target_lower = LID_Y - 1.2, LID_Y + 0.8
    assert float(changed.min()) + 0.5 >= target_upper - 1 and float(changed.max()) + 0.5 <= target_lower + 1
    lash_line = LID_Y - 12.0 - LASH_LINE * (CORNERS[1] - CORNERS[0])
    assert torch.allclose(moved[0, changed, column, 1], torch.full((len(changed),), lash_line), atol=0.5)


def test_an_eye_standing_upright_is_left_as_the_warp_reads_it() -> None:
    """A head rolled onto its side: the shut eye's corners share a column, so its lid, read column
    by column, is left alone (no division by the corners' zero span across the columns)."""
    upright = _eyes(1.0).flip(-1)  # x and y swapped: the eye runs down the frame
    points = pixel_centres(SIZE, SIZE)
    result = closed_lid_reads(points, _eyes(20.0).flip(-1), upright, torch.ones(2))
    assert result is None or torch.equal(result[0], points)


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="target_contours"):
        closed_lid_reads(pixel_centres(SIZE, SIZE), _eyes(20.0), _eyes(1.0)[:1], torch.ones(2))
    with pytest.raises(ValueError, match="image"):
        skin_above_crease(torch.zeros(3, SIZE, SIZE), _eyes(20.0))


def test_a_real_blink_shows_lid_skin_where_the_driver_does(face_model: FaceModel, shared_media: Path) -> None:
    """d3's first frame driven by its frame 58 (both eyes shut): over the lids (from the driver's
    brows to its lower lids), the output is nearer the true frame with the lid reads than with the
    source's folded lid stretched (the lid reads' take set to 0)."""
    frames = video_frames(shared_media / "liveportrait/driving/d3.mp4", {0, 58})
    with Reconstructor(face_model, mode="image") as reconstructor:
        results = {i: reconstructor.image(image) for i, image in frames.items()}
    source_landmarks = results[0].tracking.landmarks
    source = prepare_source(face_model, frames[0], results[0].params, landmarks=source_landmarks)
    driver = results[58].tracking.landmarks[:, :2]
    lids = np.zeros(frames[58].shape[:2], dtype=bool)
    for opening, brow_low in zip(
        EYE_OPENINGS, ((55, 65, 52, 53, 46), (285, 295, 282, 283, 276)), strict=True
    ):
        left, right = driver[list(opening), 0].min(), driver[list(opening), 0].max()
        top, bottom = driver[list(brow_low), 1].max(), driver[list(opening), 1].max()
        lids[int(top) : int(bottom), int(left) : int(right)] = True
    errors = []
    for gains in (None, torch.zeros(2)):
        reenactor = Reenactor(face_model, source)
        assert reenactor._lid_gains is not None and float(reenactor._lid_gains.min()) > 0.5
        if gains is not None:
            reenactor._lid_gains = gains
        reenactor(results[0].params, Controls(), source_landmarks)
        image = reenactor(results[58].params, Controls(), results[58].tracking.landmarks).image
        errors.append(float(np.abs(image.astype(float) - frames[58])[lids].mean()))
    with_lids, without = errors
    assert with_lids < 0.85 * without
