"""dlib's face models, the independent reference of the landmark and identity benchmarks.

dlib comes from ``dlib-bin`` and its models from ``face-recognition-models`` (``pip install -e
.[bench]``); the models are found without importing that package, which imports
``pkg_resources`` (no longer shipped by current setuptools).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INSTALL_HINT = "dlib-bin and face-recognition-models are needed: pip install -e .[bench]"


@dataclass(frozen=True)
class DlibModels:
    """dlib's face detector, 68-point shape predictor and 128-D face descriptor network."""

    detector: object
    predictor: object
    recogniser: object

    @classmethod
    def load(cls) -> DlibModels:
        """Load the models; a RuntimeError with the install command when they are missing."""
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("dlib") is None:
            raise RuntimeError(INSTALL_HINT)
        import dlib

        models = Path(spec.submodule_search_locations[0]) / "models"
        return cls(
            detector=dlib.get_frontal_face_detector(),
            predictor=dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat")),
            recogniser=dlib.face_recognition_model_v1(
                str(models / "dlib_face_recognition_resnet_model_v1.dat")
            ),
        )

    def _largest_face_shape(self, image: np.ndarray) -> object | None:
        """The shape of the largest face of a C-contiguous image: dlib's detector misses faces, on
        its first call, in a strided view such as a decoded video frame with padded rows."""
        faces = self.detector(image, 1)
        if not faces:
            return None
        return self.predictor(image, max(faces, key=lambda r: r.width() * r.height()))

    def landmarks68(self, image: np.ndarray) -> np.ndarray | None:
        """dlib's 68 points (68, 2) of the largest face in an RGB uint8 image, at pixel centres
        (+0.5, the project's convention), or None without a face."""
        shape = self._largest_face_shape(np.ascontiguousarray(image))
        if shape is None:
            return None
        return np.array([(shape.part(i).x + 0.5, shape.part(i).y + 0.5) for i in range(68)], dtype=np.float64)

    def descriptor(self, image: np.ndarray) -> np.ndarray | None:
        """The 128-D identity descriptor of the largest face, or None without a face."""
        image = np.ascontiguousarray(image)
        shape = self._largest_face_shape(image)
        if shape is None:
            return None
        return np.array(self.recogniser.compute_face_descriptor(image, shape))
