"""DCNet's inputs on an aligned square crop: the source texture and the target's dense conditions.

One crop window per source (:meth:`CropWindow.around`): a square around the source's face, wide
enough for hair, ears, neck and the head's motion, fixed for the whole call so the crop does not
jitter. Every map of a :class:`jr2net.reenact.TargetWarp` is resampled into that window at S×S:
the warped source is the source image sampled at the crop's source points (the face's eq. 2 points,
the head's own motion over hair and neck, the extrapolated flow beyond), so it covers the whole crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.compositing import pixel_centres, sample
from jr2net.reenact import SourceFace, TargetWarp
from jr2net.shapes import check_tensor

CROP_SIZE = 256  # the largest crop, and the size DCNet is trained at
CROP_SCALE = 1.25  # the crop's side over the larger side of the rendered head's bounding box
CROP_STEP = 32  # crop sides are multiples of this (DCNet needs multiples of 8; fewer ONNX exports)


@dataclass(frozen=True)
class CropWindow:
    """A square window on the frame: centre (x, y) and side, in frame pixels (may reach outside)."""

    centre_x: float
    centre_y: float
    side: float

    def crop_size(self, largest: int = CROP_SIZE, step: int = CROP_STEP) -> int:
        """The crop's side S for this window: its own side in frame pixels rounded up to a multiple
        of ``step``, at most ``largest``. A small face (a 256 px live source, say) is not
        upsampled into a larger crop, which would only cost the network time."""
        return min(largest, max(step, step * math.ceil(self.side / step)))

    @classmethod
    def around(cls, mask: Tensor, scale: float = CROP_SCALE) -> CropWindow:
        """The window ``scale`` times the larger side of the bounding box of mask (1, 1, H, W) > 0."""
        check_tensor("mask", mask, (1, 1, "H", "W"))
        rows = torch.nonzero(mask[0, 0].amax(dim=1) > 0)
        columns = torch.nonzero(mask[0, 0].amax(dim=0) > 0)
        if not len(rows):
            raise ValueError("the face mask is empty: no face to crop around")
        top, bottom = float(rows[0]), float(rows[-1]) + 1
        left, right = float(columns[0]), float(columns[-1]) + 1
        side = scale * max(bottom - top, right - left)
        return cls((left + right) / 2, (top + bottom) / 2, side)

    def frame_points(self, size: int) -> Tensor:
        """(1, S, S, 2) frame positions of the crop's pixel centres."""
        return self.to_frame(pixel_centres(size, size), size)

    def to_frame(self, crop_points: Tensor, size: int) -> Tensor:
        """Crop pixel positions (..., 2) at S×S -> frame pixel positions."""
        corner = torch.tensor([self.centre_x - self.side / 2, self.centre_y - self.side / 2])
        return corner + crop_points * (self.side / size)

    def to_crop(self, frame_points: Tensor, size: int) -> Tensor:
        """Frame pixel positions (..., 2) -> crop pixel positions at S×S."""
        corner = torch.tensor([self.centre_x - self.side / 2, self.centre_y - self.side / 2])
        return (frame_points - corner) * (size / self.side)

    def crop(self, maps: Tensor, size: int, padding: str = "zeros") -> Tensor:
        """Maps (1, C, H, W) resampled into the window at (1, C, S, S)."""
        return sample(maps, self.frame_points(size), padding)


def source_head(source: SourceFace) -> Tensor:
    """(1, 1, H, W) 1 where the source's head is rendered: what its crop window is around."""
    return (source.depth > 0).float()[:, None]


@dataclass(frozen=True)
class SourceCrop:
    """The source on its window: ``texture`` (1, 9, S, S) = image ‖ light map ‖ normal map, and
    ``frame_points`` (1, S, S, 2), the frame positions of the crop's pixel centres."""

    window: CropWindow
    texture: Tensor
    frame_points: Tensor

    @classmethod
    def of(cls, source: SourceFace, size: int = CROP_SIZE, scale: float = CROP_SCALE) -> SourceCrop:
        """The source on the window around its rendered head, at S = ``size``."""
        return cls.on(CropWindow.around(source_head(source), scale), source, size)

    @classmethod
    def on(cls, window: CropWindow, source: SourceFace, size: int) -> SourceCrop:
        """The source on ``window`` at S = ``size``."""
        maps = torch.cat([source.image, source.light_map, source.normal_map], dim=1)
        return cls(window, window.crop(maps, size), window.frame_points(size))

    @property
    def size(self) -> int:
        return self.texture.shape[-1]


@dataclass(frozen=True)
class DenseConditions:
    """One target frame on the source's window.

    Attributes:
        conditions: (1, 12, S, S) warped source ‖ co-visible ‖ mask ‖ mouth ‖ target light ‖
            target normals (:data:`jr2net.nets.dcnet.CONDITION_CHANNELS`).
        grid: (1, S, S, 2) each crop pixel's source point in the source crop, in [-1, 1].
    """

    conditions: Tensor
    grid: Tensor


def dense_conditions(warp: TargetWarp, crop: SourceCrop) -> DenseConditions:
    """The target frame's conditions and feature-warp grid on ``crop``'s window."""
    window, size = crop.window, crop.size
    height, width = warp.source_points.shape[1:3]
    flow = (warp.source_points - pixel_centres(height, width)).permute(0, 3, 1, 2)
    target = warp.target
    maps = torch.cat([flow, warp.covisible, target.mask, warp.mouth, target.light, target.normal], dim=1)
    cropped_flow, cropped_maps = sample(maps, crop.frame_points, "zeros").split([2, 9], dim=1)
    points = crop.frame_points + cropped_flow.permute(0, 2, 3, 1)  # no flow off the frame
    warped = sample(warp.source.image, points, "zeros")
    grid = window.to_crop(points, size) * (2.0 / size) - 1.0
    return DenseConditions(torch.cat([warped, cropped_maps], dim=1), grid)
