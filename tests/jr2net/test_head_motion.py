"""The head's flow beyond the face: the mid-plane's motion, its extent, the neck's skinning."""

from __future__ import annotations

import math

import torch

from jr2net.camera import FLIP, euler_to_matrix, intrinsics, project
from jr2net.head_motion import (
    BACKGROUND_MARGIN,
    HEAD_EXTENT,
    HEAD_FLOW_DOWNSCALE,
    NECK_RANGE,
    PersonMasks,
    head_flow,
    plane_homography,
)
from jr2net.params import FaceParams, ParamLayout

HEIGHT, WIDTH = 480, 640
LAYOUT = ParamLayout(identity_count=4, expression_count=3, vertex_count=10)
DISTANCE, FOCAL = 80.0, 800.0  # 10 px per cm on the head's mid-plane
SHIFT = 3.0  # cm, 30 px


def placed(rotation: tuple[float, float, float] = (0.0, 0.0, 0.0), shift: float = 0.0) -> FaceParams:
    """A head 80 cm away, turned by ``rotation`` (radians) and moved ``shift`` cm to image right."""
    params = FaceParams.neutral(LAYOUT, distance=DISTANCE, focal=FOCAL)
    translation = torch.tensor([[shift, 0.0, DISTANCE]])
    return params.replace(rotation=torch.tensor([rotation]), translation=translation)


def pixel_of(params: FaceParams, point: tuple[float, float, float]) -> torch.Tensor:
    """(2,) where the model point lands in ``params``' view (pixels)."""
    camera = torch.tensor([point]) @ (FLIP @ euler_to_matrix(params.rotation)[0]).T + params.translation
    return project(camera[None], intrinsics(params.focal, HEIGHT, WIDTH))[0, 0, :2]


def small_pixel(params: FaceParams, point: tuple[float, float, float]) -> tuple[int, int]:
    """The (row, column) of the small grid where the model point lands in ``params``' view."""
    x, y = pixel_of(params, point).tolist()
    return int(y) // HEAD_FLOW_DOWNSCALE, int(x) // HEAD_FLOW_DOWNSCALE


def test_the_plane_homography_projects_plane_points_as_the_camera_does() -> None:
    params = placed((0.1, -0.3, 0.05), shift=2.0)
    expected = pixel_of(params, (4.0, -6.0, 0.0))
    mapped = plane_homography(params, HEIGHT, WIDTH)[0] @ torch.tensor([4.0, -6.0, 1.0])
    torch.testing.assert_close(mapped[:2] / mapped[2], expected)


def test_an_unmoved_head_has_no_flow() -> None:
    flow = head_flow(placed(), placed(), HEIGHT, WIDTH)
    small = (math.ceil(HEIGHT / HEAD_FLOW_DOWNSCALE), math.ceil(WIDTH / HEAD_FLOW_DOWNSCALE))
    assert flow.flow.shape == (1, 2, *small) and flow.mask.shape == (1, 1, *small)
    assert float(flow.flow.abs().max()) < 1e-3
    assert 0.05 < float(flow.mask.mean()) < 0.9


def test_a_shifted_head_moves_its_outline_and_leaves_the_background() -> None:
    """The target head 3 cm to image right: every head pixel above the neck reads the source
    30 px to the left; the frame's corner is off the head."""
    flow = head_flow(placed(), placed(shift=SHIFT), HEIGHT, WIDTH)
    row, column = small_pixel(placed(shift=SHIFT), (HEAD_EXTENT[0] * 0.8, 0.0, 0.0))
    assert float(flow.mask[0, 0, row, column]) == 1.0
    assert abs(float(flow.flow[0, 0, row, column]) + 30.0) < 0.5
    assert abs(float(flow.flow[0, 1, row, column])) < 0.5
    assert float(flow.mask[0, 0, 0, 0]) == 0.0 and float(flow.flow[0, :, 0, 0].abs().max()) == 0.0


def test_a_turning_head_keeps_its_outline_while_its_front_sweeps() -> None:
    """Turned 20° about the vertical: the nose tip (13 cm in front of the plane) moves by about
    10 px/cm · 13 · sin 20° ≈ 44 px, the plane's outline at the head's widest (9 cm out) by its
    foreshortening and perspective only, under a fifth of that."""
    turned = placed((0.0, math.radians(20.0), 0.0))
    flow = head_flow(placed(), turned, HEIGHT, WIDTH)
    front_sweep = abs(float(pixel_of(turned, (0.0, 0.0, 13.0))[0] - pixel_of(placed(), (0.0, 0.0, 13.0))[0]))
    assert front_sweep > 40.0
    for side in (-9.0, 9.0):
        row, column = small_pixel(turned, (side, 0.0, 0.0))
        assert float(flow.mask[0, 0, row, column]) == 1.0
        assert abs(float(flow.flow[0, 0, row, column])) < front_sweep / 5


def test_the_neck_keeps_less_of_the_heads_motion_the_lower_it_is() -> None:
    shifted = placed(shift=SHIFT)
    flow = head_flow(placed(), shifted, HEIGHT, WIDTH)
    low, high = NECK_RANGE

    def x_flow(height_cm: float) -> float:
        row, column = small_pixel(shifted, (0.0, height_cm, 0.0))
        return float(flow.flow[0, 0, row, column])

    assert abs(x_flow(high + 1.0) + 30.0) < 0.5
    assert abs(x_flow((low + high) / 2) + 15.0) < 2.0
    assert abs(x_flow(low - 0.5)) < 0.5


def test_the_persons_outline_ends_the_heads_motion_and_the_background_stays_known() -> None:
    """The source shows the person only left of the head's centre line: a 3 cm shift moves what
    reads the person by 30 px, and right of the person (pixel and read both off it) the flow is
    known to be 0 instead of unknown (past the margin)."""
    source, shifted = placed(), placed(shift=SHIFT)
    centre = int(pixel_of(source, (0.0, 0.0, 0.0))[0])
    person, near = torch.zeros(1, 1, HEIGHT, WIDTH), torch.zeros(1, 1, HEIGHT, WIDTH)
    person[..., :centre] = 1.0
    near[..., : centre + int(10 * BACKGROUND_MARGIN)] = 1.0
    plain = head_flow(source, shifted, HEIGHT, WIDTH)
    limited = head_flow(source, shifted, HEIGHT, WIDTH, PersonMasks(person, near))
    row, column = small_pixel(shifted, (-HEAD_EXTENT[0] * 0.5, 0.0, 0.0))
    assert float(limited.mask[0, 0, row, column]) == 1.0
    assert abs(float(limited.flow[0, 0, row, column]) + 30.0) < 0.5
    row, column = small_pixel(shifted, (HEAD_EXTENT[0] * 0.8, 0.0, 0.0))
    assert float(plain.flow[0, 0, row, column]) < -29.0
    assert float(limited.mask[0, 0, row, column]) == 1.0
    assert float(limited.flow[0, :, row, column].abs().max()) == 0.0
    assert float(limited.mask[0, 0, 0, -1]) == 1.0
