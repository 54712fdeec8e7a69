"""Where a source photo shows the person: GrabCut seeded by the head's ellipse, and its margin."""

from __future__ import annotations

import pytest
import torch

from jr2net.compositing import pixel_centres
from jr2net.head_motion import BACKGROUND_MARGIN, HEAD_EXTENT, ellipse_radius, mid_plane_points
from jr2net.params import FaceParams, ParamLayout
from jr2net.person_mask import person_masks

HEIGHT, WIDTH = 384, 512
LAYOUT = ParamLayout(identity_count=4, expression_count=3, vertex_count=10)


def head(shift_cm: float = 0.0) -> FaceParams:
    """A frontal head 80 cm away (10 px per cm on its mid-plane), ``shift_cm`` to image right."""
    params = FaceParams.neutral(LAYOUT, distance=80.0, focal=800.0)
    return params.replace(translation=torch.tensor([[shift_cm, 0.0, 80.0]]))


def photo(person: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W): a noisy skin-and-hair coloured person where ``person`` (H, W) is true, a noisy
    blue-grey wall elsewhere."""
    generator = torch.Generator().manual_seed(0)
    noise = 0.04 * torch.randn(1, 3, HEIGHT, WIDTH, generator=generator)
    wall = torch.tensor([0.35, 0.45, 0.6]).view(1, 3, 1, 1)
    skin = torch.tensor([0.8, 0.6, 0.5]).view(1, 3, 1, 1)
    return (torch.where(person, skin, wall) + noise).clamp(0, 1)


def test_the_ellipse_radius_is_one_on_the_heads_extent() -> None:
    plane = mid_plane_points(head(), HEIGHT, WIDTH, pixel_centres(HEIGHT, WIDTH)[0])
    radius, model_y = ellipse_radius(plane), plane[..., 1]
    centre_row, centre_column = HEIGHT // 2, WIDTH // 2
    side = centre_column + int(10 * HEAD_EXTENT[0])
    assert float(radius[centre_row, centre_column]) < 0.02
    assert float(radius[centre_row, side]) == pytest.approx(1.0, abs=0.02)
    assert float(model_y[centre_row - 50, centre_column]) == pytest.approx(5.0, abs=0.1)


def test_grabcut_finds_a_person_wider_than_the_sure_core_and_leaves_the_wall() -> None:
    """The person: a disc 1.2 times the head's half width around the head (hair), and everything
    below the head (shoulders), the face rendered on it; the mask covers it and not the wall
    beside it."""
    rows = torch.arange(HEIGHT).view(-1, 1) + 0.5 - HEIGHT / 2
    columns = torch.arange(WIDTH).view(1, -1) + 0.5 - WIDTH / 2 - 40
    radius = 1.2 * 10 * HEAD_EXTENT[0]
    truth = (rows**2 + columns**2 <= radius**2) | ((rows > 100) & (columns.abs() < 170))
    face = torch.zeros(1, HEIGHT, WIDTH)
    face[:, HEIGHT // 2 - 60 : HEIGHT // 2 + 60, WIDTH // 2 - 10 : WIDTH // 2 + 90] = 1.0
    masks = person_masks(photo(truth), head(shift_cm=4.0), face)
    assert masks.person.shape[:2] == (1, 1) and max(masks.person.shape[-2:]) == 192
    resized = torch.nn.functional.interpolate(masks.person, size=(HEIGHT, WIDTH), mode="nearest")[0, 0] > 0.5
    overlap = float((resized & truth).sum() / (resized | truth).sum())
    assert overlap > 0.9
    assert bool((masks.near >= masks.person).all())
    margin = masks.near.sum(dim=-1).max() - masks.person.sum(dim=-1).max()  # along the widest row
    expected = 2 * BACKGROUND_MARGIN * 10 * 192 / WIDTH  # both sides, 10 px per cm
    assert abs(float(margin) - expected) <= 2


def test_a_close_up_that_the_head_fills_is_all_person() -> None:
    """A head 15 cm away (53 px per cm) fills the photo: no background to model, nothing moves
    the background, and GrabCut is not asked to (it cannot build a colour model of no pixels)."""
    close = FaceParams.neutral(LAYOUT, distance=15.0, focal=800.0)
    masks = person_masks(torch.rand(1, 3, HEIGHT, WIDTH), close, torch.zeros(1, HEIGHT, WIDTH))
    assert bool((masks.person == 1).all()) and bool((masks.near == 1).all())


def test_a_head_outside_the_photo_is_an_error() -> None:
    with pytest.raises(ValueError, match="outside its image"):
        person_masks(torch.rand(1, 3, HEIGHT, WIDTH), head(shift_cm=200.0), torch.zeros(1, HEIGHT, WIDTH))


def test_the_same_photo_gives_the_same_mask() -> None:
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, HEIGHT, WIDTH, generator=generator)
    face = torch.zeros(1, HEIGHT, WIDTH)
    masks = [person_masks(image, head(), face).person for _ in range(3)]
    assert all(torch.equal(masks[0], mask) for mask in masks[1:])
