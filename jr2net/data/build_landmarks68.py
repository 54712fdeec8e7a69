"""Regenerate ``landmarks68_ict.json``: the 68 Multi-PIE landmarks on the ICT mesh, dlib's convention.

    pip install -e .[bench] && python -m jr2net.data.build_landmarks68

ICT's own 68 landmark vertices follow its artist's placement; dlib's 68-point annotations (the
convention landmark benchmarks use) sit elsewhere by a few millimetres. On the training photos
(``../shared/train/photos``, none of the shared test media), each photo is tracked and fitted,
dlib's points are lifted onto the fitted surface and carried to the neutral mesh; the median over
photos, snapped onto the mesh, is each inner landmark's surface point (a landmark seen in fewer
than ``MIN_PHOTOS`` photos keeps ICT's vertex). dlib's jaw (0-16) follows the visible outline of
the face, so its outline landmarks (all but the chin, 7-9) are calibrated as directions instead:
their angle around the centre of the calibrated eye and mouth corners, in the head's own image
axes (circular mean over photos). The chin, too, keeps ICT's vertices.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from jr2net.assets import repository_root
from jr2net.camera import euler_to_matrix, intrinsics, model_to_camera, project
from jr2net.data.surface import closest_on_mesh, lift_to_neutral
from jr2net.dlib_reference import DlibModels
from jr2net.face_model import FaceModel
from jr2net.fitting import LandmarkFitter
from jr2net.landmarks68 import OUTLINE_ANCHORS, OUTLINE_JAW, Landmarks68, outline_angles, outline_frame
from jr2net.media import read_image
from jr2net.params import FaceParams
from jr2net.render import render_face
from jr2net.tracking import Tracker

OUTPUT = Path(__file__).with_name("landmarks68_ict.json")
PHOTOS = repository_root().parent / "shared" / "train" / "photos"
JAW = range(17)
MIN_PHOTOS = 100


def _observations(
    model: FaceModel,
) -> tuple[list[list[np.ndarray]], list[tuple[FaceParams, np.ndarray, tuple]]]:
    """Lifted neutral-mesh points per inner landmark, and every photo's (params, dlib points, size)."""
    try:
        dlib_models = DlibModels.load()
    except RuntimeError as error:
        raise SystemExit(str(error)) from error
    fitter = LandmarkFitter(model)
    observed: list[list[np.ndarray]] = [[] for _ in range(68)]
    fits = []
    with Tracker(mode="image") as tracker:
        for path in tqdm(sorted(PHOTOS.glob("*.jpg")), desc="calibrating", unit="photo"):
            image = read_image(path)
            reference = dlib_models.landmarks68(image)
            tracking = tracker.track(image)
            if reference is None or not tracking.face:
                continue
            identity, frames = fitter.fit_identity([tracking])
            params = fitter.to_params(identity, frames[0])
            with torch.no_grad():
                tri_id = render_face(model, params, *image.shape[:2], region="face_area").fragments.tri_id[0]
            points, usable = lift_to_neutral(model, params, tri_id, reference)
            fits.append((params, reference, image.shape[:2]))
            for i in np.nonzero(usable)[0]:
                if i not in JAW:
                    observed[i].append(points[i])
    return observed, fits


def _jaw_angles(model: FaceModel, landmarks: Landmarks68, fits: list) -> list[float]:
    """Circular mean over photos of each outline landmark's dlib angle in the outline frame."""
    sums = np.zeros((len(OUTLINE_JAW), 2))
    for params, reference, (height, width) in fits:
        rotation = euler_to_matrix(params.rotation)
        matrix = intrinsics(params.focal, height, width)
        with torch.no_grad():
            vertices = model(params.identity, params.expression)
            screen = project(model_to_camera(vertices, rotation, params.translation), matrix)[0, :, :2]
            axis = project(
                model_to_camera(torch.tensor([[[0.0, 0, 0], [1, 0, 0]]]), rotation, params.translation),
                matrix,
            )
        anchors = landmarks.surface_points(screen)[list(OUTLINE_ANCHORS)]
        centre, axes = outline_frame(anchors, axis[0, 1, :2] - axis[0, 0, :2])
        outline = torch.tensor(reference[list(OUTLINE_JAW)], dtype=torch.float32)
        angles, _ = outline_angles(outline, centre, axes)
        sums += np.stack([np.cos(angles.numpy()), np.sin(angles.numpy())], axis=1)
    return np.arctan2(sums[:, 1], sums[:, 0]).round(6).tolist()


def main() -> None:
    model = FaceModel.load()
    observed, fits = _observations(model)
    counts = [len(o) for o in observed]
    calibrated = [i for i, count in enumerate(counts) if count >= MIN_PHOTOS]
    medians = torch.tensor(np.array([np.median(observed[i], axis=0) for i in calibrated]))
    face_triangles = model.region_triangles("face_area")
    triangles, bary = closest_on_mesh(medians, model.neutral.double(), face_triangles)
    corners = torch.stack([model.landmarks68] * 3, dim=1)
    barycentrics = torch.tensor([[1.0, 0.0, 0.0]]).repeat(68, 1).double()
    corners[calibrated], barycentrics[calibrated] = face_triangles[triangles], bary
    surface = Landmarks68(corners, barycentrics.float(), jaw_angles=torch.zeros(len(OUTLINE_JAW)))
    data = {
        "about": "generated by python -m jr2net.data.build_landmarks68; do not edit",
        "photos_used_per_landmark": counts,
        "calibrated": [count >= MIN_PHOTOS for count in counts],
        "corners": corners.tolist(),
        "barycentrics": barycentrics.numpy().round(6).tolist(),
        "jaw_angles": _jaw_angles(model, surface, fits),
    }
    OUTPUT.write_text(json.dumps(data) + "\n")
    print(f"wrote {OUTPUT} from {max(counts)} photos")


if __name__ == "__main__":
    main()
