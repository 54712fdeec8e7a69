"""Augmentation of RecNet's training crops: a similarity of the crop that the 3D targets follow
exactly, and changes of colour, sharpness and noise that leave them alone.

The similarity zooms the crop about its centre, turns it in the image plane and shifts it:
``x' = zoom · Rot(roll) · (x - c) + c + shift`` (crop pixels, c the crop's centre). Seen through
the augmented crop the face is the same face in a camera of ``zoom`` times the focal, its principal
point moved by the same map, and turned about its optical axis by ``roll``: camera-frame points
rotate by ``Rz(roll)`` (:func:`jr2net.nets.crop_camera.image_pose_to_crop` with this map), so the
face anchor, and the rotation relative to its viewing ray, turn with the crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jr2net.compositing import gaussian_blur
from jr2net.nets.crop_camera import along_ray, image_pose_to_crop, relative_to_ray


@dataclass(frozen=True)
class Augmentation:
    """How strongly crops are augmented; a zero turns that change off.

    Attributes:
        zoom: the crop is scaled by a factor drawn from ``1 ± zoom``.
        shift: and moved by up to ± this many pixels along each axis.
        roll_degrees: and turned in the image plane by up to ± this many degrees.
        colour: each channel is scaled by a factor drawn from ``1 ± colour``.
        contrast: the contrast about the crop's mean is scaled by ``1 ± contrast``.
        grey: the share of crops turned grey.
        blur: the share of crops blurred (Gaussian, sigma drawn from 0.5-1.5 px).
        noise: Gaussian noise of a standard deviation drawn from [0, noise] is added.
    """

    zoom: float = 0.1
    shift: float = 10.0
    roll_degrees: float = 0.0
    colour: float = 0.15
    contrast: float = 0.0
    grey: float = 0.1
    blur: float = 0.0
    noise: float = 0.0


@dataclass(frozen=True)
class CropSimilarity:
    """B similarities of (S, S) crops: ``x' = zoom · Rot(roll) · (x - c) + c + shift``.

    Attributes:
        zoom: (B,) scale factors.
        roll: (B,) angles in radians (positive turns image x toward image y, i.e. clockwise on screen).
        shift: (B, 2) pixel offsets.
        size: the crop size S.
    """

    zoom: Tensor
    roll: Tensor
    shift: Tensor
    size: int

    @classmethod
    def draw(
        cls, rng: np.random.Generator, count: int, augmentation: Augmentation, size: int
    ) -> CropSimilarity:
        """``count`` random similarities within ``augmentation``'s ranges."""
        zoom = rng.uniform(1 - augmentation.zoom, 1 + augmentation.zoom, count)
        roll = np.radians(rng.uniform(-augmentation.roll_degrees, augmentation.roll_degrees, count))
        shift = rng.uniform(-augmentation.shift, augmentation.shift, (count, 2))
        return cls(*(torch.from_numpy(values).float() for values in (zoom, roll, shift)), size)

    def linear(self) -> Tensor:
        """(B, 2, 2) ``zoom · Rot(roll)``."""
        cosine, sine = torch.cos(self.roll), torch.sin(self.roll)
        rotation = torch.stack([cosine, -sine, sine, cosine], dim=-1).reshape(-1, 2, 2)
        return self.zoom[:, None, None] * rotation

    def matrix(self) -> Tensor:
        """(B, 2, 3) affine maps of crop pixels."""
        linear = self.linear()
        centre = torch.full((len(self.zoom), 2), self.size / 2)
        offset = centre + self.shift - (linear @ centre[:, :, None])[..., 0]
        return torch.cat([linear, offset[:, :, None]], dim=-1)

    def points(self, points: Tensor) -> Tensor:
        """Crop pixel positions (B, N, 2) -> their positions in the augmented crops."""
        matrix = self.matrix().to(points)
        return points @ matrix[:, :, :2].transpose(1, 2) + matrix[:, None, :, 2]

    def intrinsics(self, intrinsics: Tensor) -> Tensor:
        """Crop cameras (B, 3, 3) -> the cameras of the augmented crops."""
        moved = intrinsics.clone()
        moved[:, 0, 0] = moved[:, 1, 1] = intrinsics[:, 0, 0] * self.zoom.to(intrinsics)
        moved[:, :2, 2] = self.points(intrinsics[:, None, :2, 2])[:, 0]
        return moved

    def pose(self, rotation: Tensor, anchor: Tensor) -> tuple[Tensor, Tensor]:
        """A face's Euler angles relative to the viewing ray (B, 3) and its anchor's camera-frame
        position (B, 3) -> the same in the augmented crops' cameras."""
        absolute, moved = image_pose_to_crop(along_ray(rotation, anchor), anchor, self.matrix().to(anchor))
        return relative_to_ray(absolute, moved), moved

    def images(self, images: Tensor) -> Tensor:
        """(B, C, S, S) crops -> the augmented crops (bilinear, black outside)."""
        inverse = torch.linalg.inv(self.linear())
        theta = torch.cat([inverse, -inverse @ (2 * self.shift / self.size)[:, :, None]], dim=-1)
        grid = torch.nn.functional.affine_grid(theta.to(images), list(images.shape), align_corners=False)
        return torch.nn.functional.grid_sample(
            images, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )


def photometric(images: Tensor, rng: np.random.Generator, augmentation: Augmentation) -> Tensor:
    """(B, 3, S, S) RGB crops in [0, 1] -> the same with colour, contrast, grey, blur and noise
    drawn per crop within ``augmentation``'s ranges, clamped to [0, 1]."""
    count = len(images)

    def factors(spread: float, *shape: int) -> Tensor:
        return torch.from_numpy(rng.uniform(1 - spread, 1 + spread, (count, *shape))).to(images)

    images = images * factors(augmentation.colour, 3, 1, 1)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = ((images - mean) * factors(augmentation.contrast, 1, 1, 1) + mean).clamp(0, 1)
    grey = torch.from_numpy(rng.random(count) < augmentation.grey)[:, None, None, None]
    images = torch.where(grey, images.mean(1, keepdim=True).expand_as(images), images)
    blurred = rng.random(count) < augmentation.blur
    sigmas = rng.uniform(0.5, 1.5, count)
    if blurred.any():
        images = images.clone()
        for index in np.flatnonzero(blurred):
            images[index] = gaussian_blur(images[index : index + 1], float(sigmas[index]))[0]
    if not augmentation.noise:
        return images
    deviation = torch.from_numpy(rng.uniform(0, augmentation.noise, count)).to(images)
    noise = torch.from_numpy(rng.standard_normal(images.shape, dtype=np.float32)).to(images)
    return (images + deviation[:, None, None, None] * noise).clamp(0, 1)
