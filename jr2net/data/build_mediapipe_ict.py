"""Regenerate ``mediapipe_ict.json``: MediaPipe's 478 landmarks on the ICT mesh, and its blendshapes.

    python -m jr2net.data.build_mediapipe_ict

Landmarks: the ICT mean face is rendered from several views, MediaPipe tracks each render, and
every landmark is lifted onto the rendered surface (the triangle under it, perspective-correct
barycentrics at its sub-pixel position). The model-frame points are averaged over the views where
the landmark sits on a front-facing part of the face area and snapped to the closest point of the
face-area mesh, stored as (triangle, barycentrics). MediaPipe puts the upper lids' margin 2-4 px
below the mesh's, over the eye socket (the render has no eyeball in front of it): a landmark within
``SNAP_PX`` of the face area is lifted at its nearest face-area pixel, so the lids have a surface
point and follow blinks. Iris landmarks (468-477) fall into the eye
holes of the ICT mesh, and silhouette landmarks (the face oval) slide over the surface as the
head turns (their lifted points spread by more than ``MAX_SPREAD_CM`` across views): both are
marked invalid for a fixed correspondence.

Blendshapes: MediaPipe's 52 categories are ARKit names; each maps onto the ICT expressions of the
same name (``browInnerUp`` and ``cheekPuff`` onto both ICT halves). Which side "Left" means is
checked on renders: ICT ``X_L`` at full weight must raise MediaPipe ``XLeft`` above ``XRight``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from jr2net.data.surface import closest_on_mesh, lift_to_neutral
from jr2net.face_model import FaceModel, arkit_name
from jr2net.image_io import to_uint8
from jr2net.params import FaceParams, ParamLayout
from jr2net.render import render_face
from jr2net.tracking import LANDMARK_COUNT, Tracker

OUTPUT = Path(__file__).with_name("mediapipe_ict.json")
SIZE = 512
DISTANCE = 55.0
FOCAL = SIZE * DISTANCE / 30.0
VIEWS = [(pitch, yaw) for pitch in (-10.0, 0.0, 10.0) for yaw in (-25.0, -12.0, 0.0, 12.0, 25.0)]
IRIS = range(468, 478)
MAX_SPREAD_CM = 1.0
SNAP_PX = 4
SIDED_CHECKS = ("mouthSmile", "eyeBlink", "browDown", "mouthStretch", "eyeWide")


def _params(model: FaceModel, pitch: float, yaw: float, expression: dict[str, float]) -> FaceParams:
    params = FaceParams.neutral(ParamLayout.of(model), distance=DISTANCE, focal=FOCAL, light="frontal")
    return params.replace(
        rotation=torch.tensor([[math.radians(pitch), math.radians(yaw), 0.0]]),
        translation=torch.tensor([[0.0, -1.0, DISTANCE]]),
        expression=model.expression_vector(expression)[None],
    )


def _render(model: FaceModel, params: FaceParams) -> tuple[np.ndarray, object]:
    with torch.no_grad():
        maps = render_face(model, params, SIZE, SIZE)
    image = maps.image[0] * maps.mask[0] + 0.25 * (1 - maps.mask[0])
    return to_uint8(image), maps


def _landmarks(model: FaceModel, tracker: Tracker) -> dict:
    observed: list[list[np.ndarray]] = [[] for _ in range(LANDMARK_COUNT)]
    for pitch, yaw in VIEWS:
        params = _params(model, pitch, yaw, {})
        image, maps = _render(model, params)
        tracking = tracker.track(image)
        if not tracking.face:
            raise RuntimeError(f"MediaPipe found no face on the ICT render at pitch {pitch}, yaw {yaw}")
        points, usable = lift_to_neutral(
            model, params, maps.fragments.tri_id[0], tracking.landmarks[:, :2], SNAP_PX
        )
        for i in np.nonzero(usable)[0]:
            observed[i].append(points[i])
    spread = [float(np.linalg.norm(np.std(o, axis=0))) if len(o) >= 2 else None for o in observed]
    valid = np.array([s is not None and s <= MAX_SPREAD_CM and i not in IRIS for i, s in enumerate(spread)])
    means = np.array([np.median(o, axis=0) if len(o) else np.zeros(3) for o in observed])
    face_triangles = model.region_triangles("face_area")
    triangles, bary = closest_on_mesh(torch.tensor(means), model.neutral.double(), face_triangles)
    return {
        "triangles": face_triangles[triangles].tolist(),
        "barycentrics": bary.numpy().round(6).tolist(),
        "valid": valid.tolist(),
        "views_seen": [len(o) for o in observed],
        "spread_cm": [None if s is None else round(s, 4) for s in spread],
    }


def _blendshapes(model: FaceModel, tracker: Tracker) -> dict:
    image, _ = _render(model, _params(model, 0.0, 0.0, {}))
    names = tracker.track(image).blendshape_names
    checks = {}
    for stem in SIDED_CHECKS:
        image, _ = _render(model, _params(model, 0.0, 0.0, {f"{stem}_L": 1.0}))
        scores = dict(zip(names, tracker.track(image).blendshapes.tolist()))
        checks[stem] = {"left": round(scores[f"{stem}Left"], 3), "right": round(scores[f"{stem}Right"], 3)}
    same_side = sum(c["left"] > c["right"] for c in checks.values()) > len(checks) / 2
    mapping: dict[str, list[str]] = {}
    for name in names:
        if name == "_neutral":
            continue
        ict_name = (
            name
            if same_side
            else name.replace("Left", "_TMP").replace("Right", "Left").replace("_TMP", "Right")
        )
        mapping[name] = [model.expression_names[i] for i in model.expression_indices(ict_name)]
    unmapped = sorted(set(model.expression_names) - {n for targets in mapping.values() for n in targets})
    return {
        "mediapipe_names": list(names),
        "mediapipe_to_ict": mapping,
        "ict_without_mediapipe": [arkit_name(n) for n in unmapped],
        "left_means_subject_left": same_side,
        "side_checks": checks,
    }


def main() -> None:
    model = FaceModel.load()
    with Tracker(mode="image", max_faces=1) as tracker:
        data = {
            "about": "generated by python -m jr2net.data.build_mediapipe_ict; do not edit",
            "views": [{"pitch": p, "yaw": y} for p, y in VIEWS],
            "landmarks": _landmarks(model, tracker),
            "blendshapes": _blendshapes(model, tracker),
        }
    OUTPUT.write_text(json.dumps(data, indent=1) + "\n")
    valid = sum(data["landmarks"]["valid"])
    print(f"wrote {OUTPUT}: {valid}/{LANDMARK_COUNT} landmarks on the ICT face area")


if __name__ == "__main__":
    main()
