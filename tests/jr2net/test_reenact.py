"""Geometric reenactment on real media: self-reenactment, motion transfer, the control API."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from jr2net.avatar import REGION as AVATAR_REGION
from jr2net.avatar import model_source, render_portrait
from jr2net.face_model import FaceModel
from jr2net.mesh_topology import CAPPED_HOLES, hole_caps
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import (
    CAVITY_SHADE,
    Controls,
    GeometricRefiner,
    Reenactor,
    RefinerInputs,
    apply_controls,
    computed_at,
    mouth_opening,
    mouth_shown,
    prepare_source,
    relative_target,
)
from jr2net.render import RenderMaps
from tests.conftest import video_frames


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    error = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = error[mask].mean() if mask is not None else error.mean()
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


@pytest.fixture(scope="module")
def clip_frames(shared_media: Path) -> dict[int, np.ndarray]:
    return video_frames(shared_media / "liveportrait/driving/d18.mp4", {0, 1, 80})


@pytest.fixture(scope="module")
def reconstructed(face_model: FaceModel, clip_frames: dict[int, np.ndarray]) -> dict:
    with Reconstructor(face_model, mode="image") as reconstructor:
        return {i: reconstructor.image(image).params for i, image in clip_frames.items()}


def test_caps_close_eyes_and_mouth(face_model: FaceModel) -> None:
    caps = hole_caps(face_model)
    counts = torch.bincount(caps.hole, minlength=3)
    assert all(counts > 10), dict(zip(CAPPED_HOLES, counts.tolist()))
    centres = face_model.neutral[caps.triangles].mean(dim=1)
    mouth = caps.hole == CAPPED_HOLES.index("mouth")
    assert float(centres[mouth, 1].mean()) < -2 < float(centres[~mouth, 1].mean())


def test_self_reenactment_reproduces_the_frame(
    face_model: FaceModel, clip_frames: dict, reconstructed: dict
) -> None:
    source = prepare_source(face_model, clip_frames[0], reconstructed[0])
    reenactor = Reenactor(face_model, source)
    frame = reenactor(reconstructed[0])
    face = frame.face_mask[0, 0].numpy() > 0
    assert face.mean() > 0.1
    assert _psnr(frame.image, clip_frames[0], face) > 35
    assert _psnr(frame.image, clip_frames[0]) > 35


def test_a_source_computed_at_half_its_size_is_shown_at_its_own(
    face_model: FaceModel, clip_frames: dict, reconstructed: dict
) -> None:
    """The warp computed on a half-size source, the frame shown from the full-size picture: as
    sharp as the full-size path, where the half-size frame upscaled is not."""
    source = prepare_source(face_model, clip_frames[0], reconstructed[0])
    half = computed_at(face_model, source, 0.5)
    assert half.image.shape[-2:] == (source.image.shape[-2] // 2, source.image.shape[-1] // 2)
    assert half.picture is source.image and computed_at(face_model, source, 1.0) is source
    frame = Reenactor(face_model, half)(reconstructed[0])
    assert frame.image.shape == clip_frames[0].shape
    small = Reenactor(face_model, replace(half, display=None))(reconstructed[0]).image
    upscaled = torch.nn.functional.interpolate(
        torch.from_numpy(small).permute(2, 0, 1)[None].float(), size=clip_frames[0].shape[:2], mode="bilinear"
    )[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
    assert _psnr(frame.image, clip_frames[0]) > 35
    assert _psnr(frame.image, clip_frames[0]) > _psnr(upscaled, clip_frames[0]) + 5


def test_the_avatar_is_computed_at_its_own_size(face_model: FaceModel) -> None:
    image, params = model_source(face_model, 128)
    avatar = prepare_source(face_model, image, params, region=AVATAR_REGION)
    assert computed_at(face_model, avatar, 0.5) is avatar, "drawn from the model, never warped"


def test_open_mouth_is_transferred(face_model: FaceModel, clip_frames: dict, reconstructed: dict) -> None:
    """Driving d18 from its neutral frame 0 to its open-mouth frame 80 opens the avatar's mouth."""
    image, params = model_source(face_model, 256)
    reenactor = Reenactor(face_model, prepare_source(face_model, image, params, region=AVATAR_REGION))
    closed = reenactor(reconstructed[0])
    opened = reenactor(reconstructed[80])
    jaw = face_model.expression_names.index("jawOpen")
    assert float(opened.params.expression[0, jaw]) > float(closed.params.expression[0, jaw]) + 0.3
    assert _psnr(closed.image, image) > 35, "the reference frame reproduces the source"
    mouth_rows = slice(int(0.6 * 256), int(0.85 * 256))
    dark_closed = (closed.image[mouth_rows].max(axis=-1) < 80).sum()
    dark_open = (opened.image[mouth_rows].max(axis=-1) < 80).sum()
    assert dark_open > dark_closed + 50, "an open mouth shows the dark mouth interior"


def test_the_avatar_is_drawn_from_the_model_at_the_target_never_through_the_renderer(
    face_model: FaceModel, reconstructed: dict
) -> None:
    """A turned avatar is exactly its render at the target: nothing smeared from what its picture
    saw edge-on, no frontal head left on the background; the frame renderer is never called."""

    def refuse(warp: object) -> torch.Tensor:
        raise AssertionError("the built-in avatar went through the frame renderer")

    image, params = model_source(face_model, 256)
    source = prepare_source(face_model, image, params, region=AVATAR_REGION)
    reenactor = Reenactor(face_model, source, renderer=refuse)
    reference = reconstructed[0]
    assert np.array_equal(reenactor(reference).image, image), "the reference frame is the picture"
    turned = reenactor(reference.replace(rotation=reference.rotation + torch.tensor([[0.0, 0.5, 0.0]])))
    assert np.array_equal(turned.image, render_portrait(face_model, turned.params, 256))
    moved = np.abs(turned.image.astype(float) - image).max(axis=-1) > 30
    assert moved.mean() > 0.05, "the head turned"
    assert np.array_equal(reenactor.render(turned.params).image, turned.image)


def test_relative_motion_follows_the_driving_rotation(reconstructed: dict) -> None:
    reference = reconstructed[0]
    turned = reference.replace(rotation=reference.rotation + torch.tensor([[0.0, 0.3, 0.0]]))
    source = reconstructed[80].replace(rotation=torch.tensor([[0.1, -0.2, 0.05]]))
    target = relative_target(source, turned, reference)
    assert abs(float(target.rotation[0, 1]) - (-0.2 + 0.3)) < 0.05
    unchanged = relative_target(source, reference, reference)
    torch.testing.assert_close(unchanged.rotation, source.rotation, atol=1e-5, rtol=0)
    torch.testing.assert_close(unchanged.translation, source.translation)


def test_controls_override(face_model: FaceModel, reconstructed: dict) -> None:
    params = apply_controls(
        face_model, reconstructed[0], Controls(expression={"jawOpen": 0.7}, yaw=15.0, light="side")
    )
    assert float(params.expression[0, face_model.expression_names.index("jawOpen")]) == pytest.approx(0.7)
    assert float(params.rotation[0, 1]) == pytest.approx(math.radians(15))
    with pytest.raises(ValueError, match="unknown light"):
        Controls(light="disco")
    with pytest.raises(ValueError, match="unknown expression"):
        apply_controls(face_model, reconstructed[0], Controls(expression={"grin": 1.0}))


def test_source_needs_albedo(face_model: FaceModel, clip_frames: dict, reconstructed: dict) -> None:
    with pytest.raises(ValueError, match="albedo"):
        prepare_source(face_model, clip_frames[0], reconstructed[0].replace(albedo=None))


def _colour(rgb: tuple[float, float, float], size: int) -> torch.Tensor:
    """(1, 3, size, size) of one colour."""
    return torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, size, size)


def _uniform_inputs(
    warped: torch.Tensor,
    covisible: torch.Tensor,
    light_map: torch.Tensor,
    albedo: torch.Tensor,
    mouth: torch.Tensor,
) -> RefinerInputs:
    """The geometric refiner's inputs for a flat face filling the frame, under the source's own
    light (no relighting), stretched by nothing: ``warped``, ``light_map``, ``albedo`` (1, 3, S, S),
    ``covisible``, ``mouth`` (1, 1, S, S)."""
    ones = torch.ones_like(covisible)
    light = torch.zeros(1, 9, 3)
    maps = RenderMaps(ones, ones, light_map, light_map, albedo, albedo, None)  # type: ignore[arg-type]
    source = SimpleNamespace(params=SimpleNamespace(light=light))
    return RefinerInputs(source, warped, covisible, maps, light, mouth, ones)  # type: ignore[arg-type]


def test_the_mouth_cavity_fades_in_at_the_caps_edge() -> None:
    """The dark cavity the geometric refiner draws where a target opens a mouth the source did not
    see open is smoothed at the cap's edge: a hard cap showed as stair-steps of black."""
    size = 128
    cap = torch.zeros(1, 1, size, size)
    cap[..., 40:88, 32:96] = 1
    pink = _colour((0.9, 0.6, 0.6), size)
    inputs = _uniform_inputs(pink, 1 - cap, _colour((0.8, 0.8, 0.8), size), pink, cap)
    row = GeometricRefiner()(inputs)[0, 0, 64, 16:48]
    cavity = CAVITY_SHADE * 0.9
    assert row[0] == pytest.approx(0.9) and row[-1] == pytest.approx(cavity, abs=1e-3)
    steps = row[:-1] - row[1:]
    assert (steps >= -1e-6).all(), "darkening monotonically into the cap"
    assert steps.max() < 0.6 * (0.9 - cavity), "no pixel-sized jump from the lips to the cavity"


def test_the_mouth_cap_splits_into_what_the_source_showed_open_and_what_it_did_not() -> None:
    """Seen whole on the left third, seen squeezed in the middle, unseen on the right: the opening
    (the geometric cavity, DCNet's own mouth) is the last two, the shown part the first, and the two
    make the blurred cap."""
    size = 96
    cap = torch.zeros(1, 1, size, size)
    cap[..., 24:72, 12:84] = 1
    covisible = torch.ones_like(cap)
    covisible[..., 60:] = 0
    stretch = torch.ones_like(cap)
    stretch[..., 36:60] = 0.1
    opening, shown = mouth_opening(cap, covisible, stretch), mouth_shown(cap, covisible, stretch)
    torch.testing.assert_close(opening + shown, mouth_opening(cap, torch.zeros_like(cap), stretch))
    middle = size // 2
    assert float(shown[0, 0, middle, 20]) > 0.99 and float(opening[0, 0, middle, 20]) < 0.01
    for column in (48, 75):
        assert float(opening[0, 0, middle, column]) > 0.99 and float(shown[0, 0, middle, column]) < 0.01
    assert float((opening + shown)[..., :12, :].max()) < 0.01  # nothing off the cap


def test_the_rendered_fill_takes_the_lights_colour() -> None:
    """Where the source saw nothing the refiner draws the albedo under the target's light, the
    light's colour included: under its brightness alone a warm-lit face's fill came out grey-blue
    beside the warped skin."""
    size = 16
    albedo = _colour((0.8, 0.58, 0.47), size)
    unseen, closed = torch.zeros(1, 1, size, size), torch.zeros(1, 1, size, size)
    inputs = _uniform_inputs(albedo, unseen, _colour((0.9, 0.6, 0.3), size), albedo, closed)
    pixel = GeometricRefiner()(inputs)[0, :, 8, 8]
    assert torch.allclose(pixel, torch.tensor([0.8 * 0.9, 0.58 * 0.6, 0.47 * 0.3]), atol=1e-5)


def test_the_rendered_fill_fades_in_from_what_the_source_saw() -> None:
    """A thin band the source did not see (a turned cheek's silhouette) keeps the warped source; a
    wide unseen area is drawn from the albedo inside, rising from its edge without a step."""
    size = 512
    covisible = torch.ones(1, 1, size, size)
    covisible[..., :, 20:22] = 0  # a two-pixel band
    covisible[..., :, 256:] = 0  # the right half
    skin, albedo = _colour((0.6, 0.4, 0.3), size), _colour((0.8, 0.6, 0.5), size)
    white = _colour((1.0, 1.0, 1.0), size)
    inputs = _uniform_inputs(skin, covisible, white, albedo, torch.zeros_like(covisible))
    row = GeometricRefiner()(inputs)[0, 0, 256]
    assert row[20:22] == pytest.approx([0.6, 0.6], abs=0.02), "the thin band keeps the warped source"
    assert row[400] == pytest.approx(0.8, abs=1e-3), "the wide area's inside is the rendered albedo"
    steps = (row[257:] - row[256:-1]).abs()
    assert steps.max() < 0.25 * (0.8 - 0.6), "no step at the unseen area's edge"
