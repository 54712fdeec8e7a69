"""The learned frame renderer: DCNet generates the source's crop for each target frame.

The crop window and the source texture are computed once per source (:class:`SourceCrop`); each
frame's dense conditions go through a :class:`DCNetRunner` (torch or onnxruntime, see
:mod:`jr2net.engines.dcnet_runners`). DCNet's correction of the warped crop (its image minus the
warped source it was given) is applied to the warped source at the frame's own resolution, so the
crop's size does not blur the face, and the result is blended over the source frame with the soft
mask DCNet predicts, which is 0 at the crop's border: no hard edge anywhere. The correction,
which DCNet makes only where the source did not see the target, fades in from that region's edge
(:func:`soft_onset`) instead of starting at full strength next to the kept source pixels, and is
not applied where the source showed the mouth's inside open (:func:`kept_mouth`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from jr2net.compositing import feather, pixel_centres, sample
from jr2net.dense_conditions import CROP_SIZE, CropWindow, SourceCrop, dense_conditions, source_head
from jr2net.nets.dcnet import background, unseen_only
from jr2net.reenact import SourceFace, TargetWarp, area_ratio, mouth_shown


class DCNetRunner(Protocol):
    """Runs DCNet: ``(texture (1, 9, S, S), conditions (1, 12, S, S), grid (1, S, S, 2))`` ->
    ``(image (1, 3, S, S), alpha (1, 1 or 2, S, S))`` (:class:`jr2net.nets.dcnet.DCNetOutput`)."""

    def __call__(self, texture: Tensor, conditions: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]: ...


DCNetRunners = Callable[[int], DCNetRunner]
"""The DCNet runner for crops of side S (an ONNX export is made per size)."""

CORRECTION_ONSET_FRACTION = 1 / 64  # of the crop's side: the correction's fade-in into the unseen region


def soft_onset(correction: Tensor, conditions: Tensor) -> Tensor:
    """DCNet's ``correction`` (1, 3, S, S) faded in over :data:`CORRECTION_ONSET_FRACTION` of the
    crop from the edge of where the source did not see the target (``conditions`` (1, C, S, S)).

    Started at full strength, the generated texture meets the kept source pixels at an edge: the
    source's own pixels next to it are still the better guess of what lies there."""
    unseen = unseen_only(torch.ones_like(conditions[:, :1]), conditions)
    return correction * feather(unseen, CORRECTION_ONSET_FRACTION * conditions.shape[-1])


def paste(
    window: CropWindow,
    correction: Tensor,
    alpha: Tensor,
    warped: Tensor,
    frame: Tensor,
    kept: Tensor | None = None,
) -> Tensor:
    """The crop's ``correction`` (1, 3, S, S) added to ``warped`` (1, 3, H, W), the warped source at
    the frame's resolution, except by the share ``kept`` (1, 1, H, W) in [0, 1] of each pixel, and
    blended by ``alpha`` (1, 1, S, S) over ``frame`` (1, 3, H, W) where the window lies on it; with
    a second channel of ``alpha`` (``moved_background``), over its share of ``warped`` there
    (:func:`jr2net.nets.dcnet.background`)."""
    height, width = frame.shape[-2:]
    points = window.to_crop(pixel_centres(height, width), correction.shape[-1])
    layer = sample(torch.cat([correction, alpha], dim=1), points, "zeros")
    added = layer[:, :3] if kept is None else layer[:, :3] * (1 - kept)
    masks = layer[:, 3:].clamp(0, 1)
    weight = masks[:, :1]
    return weight * (warped + added).clamp(0, 1) + (1 - weight) * background(masks, warped, frame)


def kept_mouth(warp: TargetWarp) -> Tensor:
    """(1, 1, H, W): where the source showed the target's mouth interior open
    (:func:`jr2net.reenact.mouth_shown`), which the warped source keeps: DCNet treats the whole
    mouth cap as unseen and drew its own teeth, brighter than any it saw, over the source's real
    ones (decided on the decision set, the split network: face PSNR 26.01 → 26.11 dB, no clip
    worse by more than 0.02, retalk_face_2 +0.34, retalk_face_4 +0.28)."""
    return mouth_shown(warp.mouth, warp.covisible, area_ratio(warp.face_points))


class DCNetRenderer:
    """A :class:`jr2net.reenact.FrameRenderer` that runs DCNet on the source's crop.

    The crop's side is the source window's own (:meth:`CropWindow.crop_size`), at most
    ``crop_size``; or exactly ``crop_size`` when ``fixed``."""

    def __init__(self, runners: DCNetRunners, crop_size: int = CROP_SIZE, fixed: bool = False) -> None:
        self.runners = runners
        self.crop_size = crop_size
        self.fixed = fixed
        self._source: SourceFace | None = None
        self._crop: SourceCrop | None = None

    def crop_of(self, source: SourceFace) -> SourceCrop:
        """The source's crop window and texture (computed on the first frame of a source)."""
        if self._crop is None or self._source is not source:
            window = CropWindow.around(source_head(source))
            size = self.crop_size if self.fixed else window.crop_size(self.crop_size)
            self._source, self._crop = source, SourceCrop.on(window, source, size)
        return self._crop

    def __call__(self, warp: TargetWarp) -> Tensor:
        source = warp.source
        crop = self.crop_of(source)
        dense = dense_conditions(warp, crop)
        image, alpha = self.runners(crop.size)(crop.texture, dense.conditions, dense.grid)
        warped = sample(source.image, warp.source_points)
        correction = soft_onset(image - dense.conditions[:, :3], dense.conditions)
        return paste(crop.window, correction, alpha, warped, source.image, kept_mouth(warp))
