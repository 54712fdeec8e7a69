"""Loading a reenactment source: a photo, a short clip, or the built-in avatar (``model``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from PIL import Image

from jr2net.albedo import estimate_appearance
from jr2net.avatar import REGION as AVATAR_REGION
from jr2net.avatar import model_source
from jr2net.face_model import FaceModel
from jr2net.image_io import to_uint8
from jr2net.media import MediaError, is_image, iter_video_frames, probe_video, read_image
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import SourceFace, computed_at, prepare_source

MODEL_SOURCE = "model"
# The size each refiner computes its warp at, of the source's (shown at the source's own size, see
# :func:`jr2net.reenact.computed_at`). The geometric one at half: self-reenactment on the eight
# training clips (40 frames) scored face / full-frame PSNR 24.72 / 22.79 against 24.47 / 22.71 at
# the live working size (256 px) and 24.69 / 22.69 against 24.54 / 22.58 at their own, the
# benchmark's clips at 256 px 28.89 / 24.88 against 28.77 / 24.58 (the read points upsampled are
# smoother than the full-size correspondence), and plan and draw took 19.4 instead of 27.7 ms a
# frame (one thread). DCNet at half lost 0.30 / 0.53 dB there (its crop shrinks with the source).
COMPUTE_SCALES = {"geometric": 0.5}
CLIP_FRAMES = 30
CLIP_IDENTITY_FRAMES = 5


def limit_size(image: np.ndarray, size: int) -> np.ndarray:
    """Scale an RGB image down so its longer side is at most ``size`` (never up)."""
    if max(image.shape[:2]) <= size:
        return image
    scale = size / max(image.shape[:2])
    resized = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return np.array(Image.fromarray(image).resize(resized, Image.Resampling.LANCZOS))


def source_from_image(model: FaceModel, image: np.ndarray, name: str = "source") -> SourceFace:
    """A prepared source from one RGB uint8 photo; a clear error when it has no face."""
    with Reconstructor(model, mode="image") as reconstructor:
        result = reconstructor.image(image)
    if result.params is None:
        raise MediaError(f"{name}: no face found in the source image")
    return prepare_source(model, image, result.params, landmarks=result.tracking.landmarks)


def source_from_clip(model: FaceModel, path: Path, size: int) -> SourceFace:
    """A prepared source from a short clip: the identity from its first frames with a face, the
    texture, light and albedo from the first of them."""
    frames = [
        (i, t, limit_size(image, size))
        for i, t, image in itertools.islice(iter_video_frames(path), CLIP_FRAMES)
    ]
    with Reconstructor(model, mode="video", identity_frames=CLIP_IDENTITY_FRAMES) as reconstructor:
        first = next((r for r in reconstructor.video(frames) if r.params is not None), None)
    if first is None:
        raise MediaError(f"{path}: no face found in the first {CLIP_FRAMES} frames of the source clip")
    image = frames[first.index][2]
    appearance = estimate_appearance(model, first.params, image)
    params = first.params.replace(light=appearance.light[None], albedo=appearance.albedo[None])
    return prepare_source(model, image, params, landmarks=first.tracking.landmarks)


def load_source(model: FaceModel, source: str, size: int) -> SourceFace:
    """``model``, a photo or a clip as a prepared source at most ``size`` pixels on its longer side."""
    if source == MODEL_SOURCE:
        return prepare_source(model, *model_source(model, size), region=AVATAR_REGION)
    path = Path(source)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if is_image(path):
        return source_from_image(model, limit_size(read_image(path), size), str(path))
    try:
        probe_video(path)
    except MediaError as error:
        raise MediaError(f"{path}: not a readable image or video ({error})") from error
    return source_from_clip(model, path, size)


def refined_source(model: FaceModel, source: SourceFace) -> SourceFace:
    """``source`` itself, or for the built-in avatar (drawn from the face model, never refined) its
    picture taken as a photo: what a warm-up runs on to pay the frame renderer's first-use costs
    and measure its stages for the photos callers bring."""
    if source.region != AVATAR_REGION:
        return source
    return source_from_image(model, to_uint8(source.image[0]), "the built-in avatar's picture")


def computing_source(model: FaceModel, source: SourceFace, refiner: str) -> SourceFace:
    """``source`` as the ``refiner`` (``geometric``, ``dcnet``) computes it (:data:`COMPUTE_SCALES`),
    its frames shown at its own size."""
    return computed_at(model, source, COMPUTE_SCALES.get(refiner, 1.0))
