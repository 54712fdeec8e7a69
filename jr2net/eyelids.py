"""A closing eye shows lid skin, read from above the crease, where the source's lid was folded away.

An open eye hides most of its upper lid in the fold under the crease: between the crease and the
lid margin the source shows only the crease's shadow and the lashes, a few pixels high. When the
driver's eye closes, the pinned warp (:mod:`jr2net.landmark_pinning`, :mod:`jr2net.eye_warp`)
moves the lid margin down and stretches those few pixels over the whole lid, a dark band where
the driver shows skin: on d3 reenacting its own first frame the output's lids stopped at about 40 %
of the way closed by MediaPipe's own measure (its eye aspect ratio 0.17–0.21 at the driver's 0.04
and blinks at half amplitude, ``eyeBlinkLeft`` slope 0.40).

Here the lid between where the crease lies and the lashes reads the skin above the source's
crease instead, mirrored about the crease line so that it starts where the skin above it is read
(the lid of a closed eye continues the skin above it; the mirror keeps the texture's own grain, with
no seam at the crease). Column by column across the eye (its corner-to-corner parameter ``u``):

- the target lid runs from the crease, where the eye's upper lid would be open as the source's is
  over the target's lower lid, :data:`CREASE` eye widths up, down to the lash band's top,
  :data:`LASH_BAND` eye widths above the target's upper lid (the lash band itself stays as the warp
  reads it: the lashes the source shows, moved with the lid margin);
- each of its pixels reads the source at the source's upper lid ``CREASE`` widths up, going up by as
  much as the pixel lies below the target's crease;
- the opening left between the lids reads the source's lash line (:data:`LASH_LINE` eye widths above
  its upper lid) instead of the source's eyeball squeezed into a sliver, a white line where the
  driver's shut eye shows lashes;
- the reads move there by how far the eye closed from the source's opening, fading in from the
  crease and from the corners; the lid's, also by how much lighter the skin above the crease is than the fold
  (:func:`skin_above_crease`: deep-set eyes under a shadowed brow show the lid itself in the fold,
  and darkened their closed lids with the skin above; s12 takes none of it, d3's first frame 0.96
  and 0.64).

On d3 reenacting its first frame the output's eye aspect ratio now reaches 0.12–0.13 (was 0.17–0.21)
and its blinks 0.60 of the driver's (``eyeBlinkLeft`` slope, was 0.40); s12 driven by d3 (no take of
the skin above its crease, the lash line only) 0.26 (was 0.23). The constants were set looking at
d3's blink and checked on the eight training clips: face PSNR +0.05 dB, the face without mouth, eyes
and edge +0.10 (no clip lower), the eyes +0.02 (lia_ted −0.28, three clips +0.06 to +0.24).
"""

from __future__ import annotations

import torch
from torch import Tensor

from jr2net.compositing import sample
from jr2net.gaze import EYE_OPENINGS, contour_openness
from jr2net.shapes import check_tensor

CREASE = 0.15  # eye widths from the upper lid up to where the skin above the crease is read
LASH_BAND = 0.12  # eye widths of lashes above the upper lid that move with it as the warp reads them
LASH_LINE = LASH_BAND / 2  # eye widths above the source's upper lid that a closing opening reads
CORNER_FADE = 0.25  # of the eye's width from each corner over which the lid reads fade in
LIGHTER_BY = 0.1  # how much lighter (of the full range) the skin above the crease is for a full take
CREASE_FADE = 0.5  # of the lid's height below the crease over which the lid reads fade in
UPPER_LID = tuple(range(len(EYE_OPENINGS[0]) // 2 + 1))  # contour positions, corner to corner over the top
LOWER_LID = (0, *range(len(EYE_OPENINGS[0]) - 1, len(EYE_OPENINGS[0]) // 2 - 1, -1))  # the same under it


def skin_above_crease(image: Tensor, contours: Tensor) -> Tensor:
    """(2,) how much each eye's lid takes the skin above the crease, 0 to 1: by how much that skin
    (the :data:`CREASE` eye widths above that) is lighter than what lies between it and the upper
    lid (the crease's shadow and the lashes the lid would otherwise stretch), full at
    :data:`LIGHTER_BY`. Deep-set eyes under a shadowed brow show the lid itself there, lighter than
    the skin above it: their lids keep it.

    Args:
        image: (1, 3, H, W) the source image in [0, 1].
        contours: (2, 16, 2) the source's eye-opening contours (:data:`EYE_OPENINGS` order).
    """
    check_tensor("image", image, (1, 3, "H", "W"))
    check_tensor("contours", contours, (len(EYE_OPENINGS), len(EYE_OPENINGS[0]), 2))
    across = torch.linspace(0.25, 0.75, 8)
    up = torch.linspace(0.0, 1.0, 6)
    gains = []
    for contour in contours.float():
        upper = contour[list(UPPER_LID)]
        knots = _along(contour, upper[:, 0])
        lid = torch.stack([_piecewise(across, knots, upper[:, axis]) for axis in (0, 1)], dim=-1)
        height = CREASE * (contour[0] - contour[len(UPPER_LID) - 1]).norm()
        fold, above = (
            lid[:, None] - torch.stack([torch.zeros_like(up), (start + up) * height], -1)[None]
            for start in (0.0, 1.0)
        )
        fold_light, above_light = (sample(image, strip[None]).mean() for strip in (fold, above))
        gains.append(((above_light - fold_light) / LIGHTER_BY).clamp(0, 1))
    return torch.stack(gains)


def closed_lid_reads(
    points: Tensor, source_contours: Tensor, target_contours: Tensor, gains: Tensor
) -> tuple[Tensor, Tensor] | None:
    """Where each pixel of a lid that closed further than the source's reads the source.

    Args:
        points: (1, H, W, 2) where each target pixel reads the source now (pixels).
        source_contours: (2, 16, 2) the source's eye-opening contours (:data:`EYE_OPENINGS` order).
        target_contours: (2, 16, 2) where the target's are drawn.
        gains: (2,) how much each lid takes the skin above the crease (:func:`skin_above_crease`).

    Returns:
        points: (1, H, W, 2) ``points`` moved towards the skin above the crease on each closing lid
            and towards the lash line in its opening.
        inside: (1, 1, H, W) 1 where the reads moved, else 0.
        None where no eye is more closed than the source's.
    """
    dims = check_tensor("points", points, (1, "H", "W", 2))
    check_tensor("source_contours", source_contours, (2, len(EYE_OPENINGS[0]), 2))
    check_tensor("target_contours", target_contours, (2, len(EYE_OPENINGS[0]), 2))
    height, width = dims["H"], dims["W"]
    source_open, target_open = contour_openness(source_contours), contour_openness(target_contours)
    closing = ((source_open - target_open) / source_open.clamp(min=1e-3)).clamp(0, 1)
    if not (closing > 0).any():
        return None
    moved = points.clone()
    inside = torch.zeros(1, 1, height, width)
    for eye in range(len(EYE_OPENINGS)):
        if closing[eye] <= 0:
            continue
        source, target = source_contours[eye].float(), target_contours[eye].float()
        box = _lid_box(source, target, height, width)
        if box is None:
            continue
        top, bottom, left, right = box
        rows, columns = torch.arange(top, bottom) + 0.5, torch.arange(left, right) + 0.5
        where = torch.stack(torch.meshgrid(columns, rows, indexing="xy"), dim=-1)  # (h, w, 2) pixel centres
        reads, skin, lashes = _lid_reads(source, target, where)
        weight = closing[eye] * (gains[eye] * skin + lashes)
        region = moved[0, top:bottom, left:right]
        moved[0, top:bottom, left:right] = region + weight[..., None] * (reads - region)
        inside[0, 0, top:bottom, left:right] = torch.maximum(
            inside[0, 0, top:bottom, left:right], (weight > 0).float()
        )
    return moved, inside


def _lid_box(source: Tensor, target: Tensor, height: int, width: int) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) pixels of the frame that can hold the target eye's lid, or None
    where it lies off the frame or is not across the columns (the lids are read column by column:
    an eye whose corners stand less than a pixel apart across them, a head rolled onto its side)."""
    corners = (source[0, 0] - source[len(UPPER_LID) - 1, 0], target[0, 0] - target[len(UPPER_LID) - 1, 0])
    if min(abs(float(span)) for span in corners) < 1.0:
        return None
    eye_width = (target[0] - target[len(UPPER_LID) - 1]).norm()
    highest = torch.minimum(target[:, 1].min(), _open_upper_lid(source, target).min())
    top = int((highest - CREASE * eye_width).floor().clamp(min=0))
    left = int(target[:, 0].min().floor().clamp(min=0))
    bottom = min(int(target[:, 1].max().ceil()) + 1, height)
    right = min(int(target[:, 0].max().ceil()) + 1, width)
    if bottom <= top or right <= left:
        return None
    return top, bottom, left, right


def _open_upper_lid(source: Tensor, target: Tensor) -> Tensor:
    """(9,) the heights of the target's upper lid if it were as open as the source's over the
    target's lower lid, at the upper lid's contour points."""
    lower = torch.tensor(LOWER_LID)
    upper = torch.tensor(UPPER_LID)
    return target[lower, 1] + (source[upper, 1] - source[lower, 1])


def _lid_reads(source: Tensor, target: Tensor, where: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For the pixel centres ``where`` (h, w, 2) of one eye's box: the reads (h, w, 2), and how much
    each pixel takes them (h, w) on the lid (the mirrored skin) and in the opening (the lashes)."""
    upper, lower = torch.tensor(UPPER_LID), torch.tensor(LOWER_LID)
    first, last = target[0], target[len(UPPER_LID) - 1]
    source_width = (source[0] - source[len(UPPER_LID) - 1]).norm()
    target_width = (last - first).norm()
    along = _along(target, where[..., 0])  # (h, w)
    knots = _along(target, target[upper, 0])
    target_lid = _piecewise(along, knots, target[upper, 1])
    target_lower = _piecewise(along, _along(target, target[lower, 0]), target[lower, 1])
    crease = _piecewise(along, knots, _open_upper_lid(source, target)) - CREASE * target_width
    lash_top = target_lid - LASH_BAND * target_width
    source_knots = _along(source, source[upper, 0])
    source_x = _piecewise(along, source_knots, source[upper, 0])
    source_lid = _piecewise(along, source_knots, source[upper, 1])
    below = where[..., 1] - crease
    mirrored = source_lid - CREASE * source_width - below * source_width / target_width
    in_opening = (where[..., 1] >= target_lid) & (where[..., 1] <= target_lower)
    lashes = source_lid - LASH_LINE * source_width
    reads = torch.stack([source_x, torch.where(in_opening, lashes, mirrored)], dim=-1)
    height = (lash_top - crease).clamp(min=1e-6)
    across = (along > 0) & (along < 1)
    on_lid = (below >= 0) & (where[..., 1] < lash_top) & across
    fade = (below / (CREASE_FADE * height).clamp(min=1.0)).clamp(0, 1)
    corners = (torch.minimum(along, 1 - along) / CORNER_FADE).clamp(0, 1)
    return reads, on_lid.float() * fade * corners, (in_opening & across).float() * corners


def _along(contour: Tensor, x: Tensor) -> Tensor:
    """Where the columns ``x`` (any shape) lie across the eye of ``contour`` (16, 2): 0 at its first
    corner, 1 at the other."""
    first, last = contour[0, 0], contour[len(UPPER_LID) - 1, 0]
    return (x - first) / (last - first)


def _piecewise(at: Tensor, knots: Tensor, values: Tensor) -> Tensor:
    """The piecewise-linear function through (``knots``, ``values``) (K,) at ``at`` (any shape),
    held constant beyond the end knots."""
    order = knots.argsort()
    knots, values = knots[order], values[order]
    index = torch.searchsorted(knots.contiguous(), at.contiguous()).clamp(1, len(knots) - 1)
    low, high = knots[index - 1], knots[index]
    share = ((at - low) / (high - low).clamp(min=1e-6)).clamp(0, 1)
    return values[index - 1] + share * (values[index] - values[index - 1])
