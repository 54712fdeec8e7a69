"""The head's own motion beyond the face: how hair, ears and neck move when the head does.

The warp's face region (``face_area`` for a photo) says where each face pixel comes from; hair,
ears and neck lie outside it. Extending the face's flow over them carries the hair with the face,
which is wrong for a turning head: the face's front sweeps sideways while the head's outline barely
moves (the back of the head turns the other way). A head's outline lies near the plane through its
middle, across the line of sight (the ICT head is widest at model z ≈ 0, between its front at
z ≈ 13 cm and its back at z ≈ −9), so beyond the face each pixel moves as the point of that plane
(model z = 0) seen there: the head's rigid motion maps the target view's plane to the source's by a
homography. A turn then moves the outline by the plane's foreshortening only, a tilt (roll) turns it,
a shift moves it. The plane counts as head within :data:`HEAD_EXTENT` (model centimetres, hair
included); the neck is skinned: the further down its point, the less of the head's motion it keeps,
none at its base (the shoulders do not turn with the head).

Given where the source shows the person (:mod:`jr2net.person_mask`), the head's motion is taken
only where the source point it reads is the person's, and the background (the pixel and the point it
would read both :data:`BACKGROUND_MARGIN` or more off the person) is known to stay put, instead of
being dragged along by the head's motion fading out past it; the margin leaves the person's edge to
the face's and the head's flow.

Computed at 1/:data:`HEAD_FLOW_DOWNSCALE` of the frame, where the warp's flow is extended
(:func:`jr2net.compositing.extrapolate_flow`): the plane's flow is smooth, the face's points stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.camera import FLIP, euler_to_matrix, intrinsics
from jr2net.compositing import pixel_centres, sample
from jr2net.params import FaceParams

HEAD_FLOW_DOWNSCALE = 4  # the head's flow is computed at this fraction of the frame's size
HEAD_PLANE_DEPTH = 0.0  # model z (cm) of the plane whose motion the outline follows
HEAD_EXTENT = (14.0, 17.0)  # the half width and half height (cm) of the plane's head ellipse, at the origin
NECK_RANGE = (-17.0, -8.0)  # model y (cm): no head motion at or below the first, all of it above the second
BACKGROUND_MARGIN = 3.0  # cm: the background is known to stay put this far from the person and beyond


@dataclass(frozen=True)
class PersonMasks:
    """Where the source photo shows the person (:mod:`jr2net.person_mask`), both (1, 1, h', w') at
    any size over the frame.

    Attributes:
        person: 1 on the person, 0 on the background.
        near: 1 on the person and within :data:`BACKGROUND_MARGIN` of it.
    """

    person: Tensor
    near: Tensor


@dataclass(frozen=True)
class HeadFlow:
    """The head's flow beyond the face at 1/:data:`HEAD_FLOW_DOWNSCALE` of the frame (ceil).

    Attributes:
        flow: (1, 2, h, w) source pixel minus target pixel (frame pixels), 0 off the head.
        mask: (1, 1, h, w) 1 where the flow is known: on the head (the plane's point within
            :data:`HEAD_EXTENT`; given the person, only where it reads the person) and, given the
            person, on the background (flow 0).
    """

    flow: Tensor
    mask: Tensor


def plane_homography(params: FaceParams, height: int, width: int) -> Tensor:
    """(1, 3, 3) the map from the model's mid-plane (x, y, 1) (cm, z = :data:`HEAD_PLANE_DEPTH`) to
    homogeneous pixels of an image of ``height`` × ``width`` under ``params``' pose and focal."""
    placed = FLIP @ euler_to_matrix(params.rotation)
    offset = HEAD_PLANE_DEPTH * placed[:, :, 2] + params.translation
    columns = torch.stack([placed[:, :, 0], placed[:, :, 1], offset], dim=-1)
    return intrinsics(params.focal, height, width) @ columns


def mid_plane_points(params: FaceParams, height: int, width: int, pixels: Tensor) -> Tensor:
    """(..., 3) the mid-plane point (x, y, 1) (cm) that ``params``' view of a ``height`` × ``width``
    image shows at each of ``pixels`` (..., 2); NaN or infinite where the line of sight misses it."""
    homogeneous = torch.cat([pixels, torch.ones_like(pixels[..., :1])], dim=-1)
    plane = homogeneous @ torch.linalg.inv(plane_homography(params, height, width)[0]).T
    return plane / plane[..., 2:]


def ellipse_radius(plane: Tensor) -> Tensor:
    """(...) how far out mid-plane points (..., 2+) (cm) lie on the head's ellipse: 1 on
    :data:`HEAD_EXTENT`."""
    half_width, half_height = HEAD_EXTENT
    return ((plane[..., 0] / half_width) ** 2 + (plane[..., 1] / half_height) ** 2).sqrt()


def head_flow(
    source: FaceParams, target: FaceParams, height: int, width: int, person: PersonMasks | None = None
) -> HeadFlow:
    """The head's flow beyond the face for one target frame of a ``height`` × ``width`` source.

    Each small pixel's centre is traced to the target's mid-plane and from there into the source
    view; the displacement is scaled by the neck's skinning (:data:`NECK_RANGE`). ``person``, where
    the source shows the person, limits the head's motion to the person and makes the background's
    stillness known."""
    small_height = -(-height // HEAD_FLOW_DOWNSCALE)
    small_width = -(-width // HEAD_FLOW_DOWNSCALE)
    pixels = pixel_centres(small_height, small_width)[0] * HEAD_FLOW_DOWNSCALE  # (h, w, 2) frame pixels
    plane = mid_plane_points(target, height, width, pixels)
    seen = plane_homography(source, height, width)[0]
    source_pixels = plane @ seen.T
    source_pixels = source_pixels[..., :2] / source_pixels[..., 2:]
    low, high = NECK_RANGE
    share = ((plane[..., 1:2] - low) / (high - low)).clamp(0, 1)
    inside = ellipse_radius(plane) <= 1
    flow = share * (source_pixels - pixels)
    inside = inside & flow.isfinite().all(dim=-1)  # a line of sight along the plane meets it nowhere
    known = inside
    if person is not None:
        masks = torch.cat([person.person, person.near], dim=1)
        to_mask = torch.tensor([masks.shape[-1] / width, masks.shape[-2] / height])
        reads = sample(masks, ((pixels + flow) * to_mask)[None])[0]
        inside = inside & (reads[0] > 0.5)
        near = reads[1] + sample(person.near, (pixels * to_mask)[None])[0, 0]
        known = inside | (near < 0.5)
    flow = torch.where(inside[..., None], flow, torch.zeros_like(flow))
    return HeadFlow(flow.permute(2, 0, 1)[None].contiguous(), known[None, None].float())
