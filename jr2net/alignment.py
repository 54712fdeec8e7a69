"""Face crop and alignment for the networks: a similarity transform from eyes and mouth.

The crop is centred a little below the eyes, rotated so the eyes are level, and scaled from the
eye-to-eye and eye-to-mouth distances (the FFHQ recipe), so faces of any size and roll land in
the same place of a square crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RIGHT_EYE = (33, 133)  # the subject's right eye (image left in a frontal view): outer, inner corner
LEFT_EYE = (362, 263)  # the subject's left eye: inner, outer corner
MOUTH = (61, 291)


@dataclass(frozen=True)
class AlignedCrop:
    """A square face crop and the transform that made it.

    Attributes:
        image: (S, S, 3) uint8 crop.
        matrix: (2, 3) affine map from image pixels to crop pixels (``crop = M @ [x, y, 1]``).
    """

    image: np.ndarray
    matrix: np.ndarray

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Image pixel coordinates (N, 2) -> crop pixel coordinates (N, 2)."""
        return points @ self.matrix[:, :2].T + self.matrix[:, 2]

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Crop pixel coordinates (N, 2) -> image pixel coordinates (N, 2)."""
        return (points - self.matrix[:, 2]) @ np.linalg.inv(self.matrix[:, :2]).T


def alignment_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The (2, 3) image-to-crop similarity for MediaPipe landmarks (478, 2+) and a crop size."""
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    right_eye, left_eye = points[list(RIGHT_EYE)].mean(0), points[list(LEFT_EYE)].mean(0)
    eye_centre = (right_eye + left_eye) / 2
    eye_to_eye = left_eye - right_eye
    eye_to_mouth = points[list(MOUTH)].mean(0) - eye_centre
    axis = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    axis /= np.linalg.norm(axis)
    half_side = max(np.linalg.norm(eye_to_eye) * 2.0, np.linalg.norm(eye_to_mouth) * 1.8)
    centre = eye_centre + eye_to_mouth * 0.1
    scale = size / (2 * half_side)
    rotation = np.array([[axis[0], axis[1]], [-axis[1], axis[0]]]) * scale
    return np.concatenate([rotation, (size / 2 - rotation @ centre)[:, None]], axis=1)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 224) -> AlignedCrop:
    """Cut an aligned (size, size) crop from an RGB uint8 image (bilinear, black outside)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"align_face needs an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    if landmarks.shape[0] != 478:
        raise ValueError(f"align_face needs MediaPipe's 478 landmarks, got {landmarks.shape[0]}")
    matrix = alignment_matrix(landmarks, size)
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    # OpenCV samples at integer coordinates, the matrices map pixel centres (+0.5): shift both ways.
    sampling = inverse.copy()
    sampling[:, 2] += inverse[:, :2] @ np.array([0.5, 0.5]) - 0.5
    crop = cv2.warpAffine(
        np.ascontiguousarray(image),
        sampling,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return AlignedCrop(image=crop, matrix=matrix)
