"""Where a source photo shows the person (head, hair, neck) and where its background: GrabCut seeded
by the head's mid-plane ellipse.

The head's motion beyond the face (:mod:`jr2net.head_motion`) is known only up to where the hair
ends, which the face model does not say: without this mask the motion fades out smoothly past the
head and drags the background next to it along. The photo itself says it: the colours inside the
head's ellipse (:data:`jr2net.head_motion.HEAD_EXTENT`) and on the fitted face are the person's,
those well outside the ellipse and above the neck the background's; GrabCut (OpenCV) labels the band
between. Run once per source at :data:`GRABCUT_SIDE` pixels on the long side (55-90 ms for a
512-pixel photo, one thread).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from jr2net.compositing import pixel_centres
from jr2net.head_motion import BACKGROUND_MARGIN, NECK_RANGE, PersonMasks, ellipse_radius, mid_plane_points
from jr2net.params import FaceParams
from jr2net.shapes import check_tensor

GRABCUT_SIDE = 192  # the long side (px) GrabCut runs at
GRABCUT_ITERATIONS = 5
GRABCUT_SEED = 0
SURE_HEAD = 0.55  # within this share of the head's ellipse every pixel is the person's
SURE_BACKGROUND = 1.6  # beyond this multiple of it, above the neck, every pixel is background
# A close-up whose head's ellipse leaves fewer pixels than this outside it shows no background to
# model (GrabCut's colour models need samples on both sides): every pixel is then the person's.
MIN_BACKGROUND_PIXELS = 32


def person_masks(image: Tensor, params: FaceParams, face: Tensor) -> PersonMasks:
    """Where the source ``image`` (1, 3, H, W) in [0, 1] shows the person, at :data:`GRABCUT_SIDE`
    on the long side, and what lies within :data:`BACKGROUND_MARGIN` of it; ``params`` is the
    source's fit and ``face`` (1, H, W) > 0 where its face is rendered (all of it the person's)."""
    check_tensor("image", image, (1, 3, "H", "W"))
    check_tensor("face", face, (1, image.shape[-2], image.shape[-1]))
    height, width = image.shape[-2:]
    scale = GRABCUT_SIDE / max(height, width)
    rows, columns = max(8, round(height * scale)), max(8, round(width * scale))
    pixels = (image[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    small = cv2.resize(pixels, (columns, rows), interpolation=cv2.INTER_AREA)
    grid = pixel_centres(rows, columns)[0] * torch.tensor([width / columns, height / rows])
    plane = mid_plane_points(params, height, width, grid)
    radius, model_y = ellipse_radius(plane).numpy(), plane[..., 1].numpy()
    seeds = np.full((rows, columns), cv2.GC_PR_BGD, np.uint8)
    seeds[radius <= 1.0] = cv2.GC_PR_FGD
    seeds[radius <= SURE_HEAD] = cv2.GC_FGD
    covered = torch.nn.functional.adaptive_max_pool2d((face > 0).float()[None], (rows, columns))
    seeds[covered[0, 0].numpy() > 0] = cv2.GC_FGD
    seeds[(radius > SURE_BACKGROUND) & (model_y > NECK_RANGE[1])] = cv2.GC_BGD
    if not (seeds == cv2.GC_FGD).any():
        raise ValueError("the source's head lies outside its image: nothing to seed the person with")
    if ((seeds == cv2.GC_BGD) | (seeds == cv2.GC_PR_BGD)).sum() >= MIN_BACKGROUND_PIXELS:
        background_model, foreground_model = np.zeros((1, 65)), np.zeros((1, 65))
        cv2.setRNGSeed(GRABCUT_SEED)  # its colour models start from k-means: the same photo, the same mask
        cv2.grabCut(
            small, seeds, None, background_model, foreground_model, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK
        )
    person = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.uint8)
    margin = round(BACKGROUND_MARGIN * float(params.focal[0] / params.translation[0, 2]) * scale)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    near = cv2.dilate(person, disc)
    return PersonMasks(*(torch.from_numpy(mask.astype(np.float32))[None, None] for mask in (person, near)))
