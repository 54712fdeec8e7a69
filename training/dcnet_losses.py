"""DCNet's losses: L1, feature matching on a PatchGAN discriminator, hinge adversarial, and a
perceptual VGG-19 term when its weights are given by path (none can be downloaded here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional

from jr2net.nets.dcnet import CONDITION_CHANNELS, border_ramp

VGG19_LAYOUT = (64, 64, "pool", 128, 128, "pool", 256, 256, 256, 256, "pool", 512)  # up to relu4_1
VGG19_TAPS = (1, 6, 11, 20)  # torchvision's indices of relu1_1, relu2_1, relu3_1, relu4_1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


FACE_ALPHA = 0.99  # what the face_alpha term asks of the blending mask inside the face
MOUTH_GROWTH = 1 / 48  # of the crop's side: the mouth interior grown by this for mouth_l1 (its lips)


@dataclass(frozen=True)
class DCNetLossWeights:
    """Weights of the generator's terms (``face_l1`` is an extra L1 inside the target face mask;
    ``mouth_l1`` one inside the target's mouth and lips (its interior grown by
    :data:`MOUTH_GROWTH` of the crop), a few hundred pixels of the crop that the crop's L1 barely
    sees, where the generator makes what the source never showed;
    ``face_alpha`` asks the blending mask to be 1 there, so the static source never shows through
    the face: the ghost of a doubled chin or cheek; ``decisive_alpha`` asks it to be 0 or 1
    anywhere, so a moved head is shown either moved or where it was, never both at half strength:
    the ghost of a doubled head)."""

    l1: float = 10.0
    face_l1: float = 10.0
    mouth_l1: float = 0.0
    face_alpha: float = 0.0
    decisive_alpha: float = 0.0
    feature_matching: float = 2.0
    adversarial: float = 0.5
    perceptual: float = 1.0


class PatchDiscriminator(nn.Module):
    """A PatchGAN on (image ‖ conditions): logits per 30×30-ish patch and its hidden features."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 96)) -> None:
        super().__init__()
        channels = 3 + len(CONDITION_CHANNELS)
        layers = []
        for width in widths:
            layers.append(nn.Conv2d(channels, width, 4, stride=2, padding=1))
            channels = width
        self.layers = nn.ModuleList(layers)
        self.logits = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, image: Tensor, conditions: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = torch.cat([image, conditions], dim=1)
        features = []
        for layer in self.layers:
            x = functional.leaky_relu(layer(x), 0.2)
            features.append(x)
        return self.logits(x), features


class VGG19Features(nn.Module):
    """VGG-19's convolutions up to relu4_1, from a torchvision-layout state dict (``features.N.*``)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        if not path.is_file():
            raise FileNotFoundError(f"VGG-19 weights {path} are missing (a torchvision vgg19 state dict)")
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG19_LAYOUT:
            if item == "pool":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        state = torch.load(path, map_location="cpu", weights_only=True)
        wanted = {key: value for key, value in state.items() if key.split(".")[0] == "features"}
        own = self.state_dict()
        missing = sorted(set(own) - set(wanted))
        if missing:
            raise ValueError(f"{path} is not a VGG-19 state dict: no {missing[0]}")
        self.load_state_dict({key: wanted[key] for key in own})
        self.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, image: Tensor) -> list[Tensor]:
        x = (image - self.mean) / self.std
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in VGG19_TAPS:
                taps.append(x)
        return taps


def composite(image: Tensor, alpha: Tensor, background: Tensor) -> Tensor:
    """The generated crop over the source crop, as it is pasted over the frame."""
    return alpha * image + (1 - alpha) * background


def indecision(alpha: Tensor) -> Tensor:
    """(B, 1, S, S): 4 s (1 - s) of the blending mask ``alpha`` (B, 1, S, S) before the crop's
    border ramp (``s = alpha / ramp``), weighted by the ramp: 1 where the mask shows the generated
    crop and the source at half strength each, 0 where it shows one of them."""
    ramp = border_ramp(alpha.shape[-1]).to(alpha)
    decided = alpha / ramp.clamp(min=1e-6)
    return 4 * alpha * (1 - decided)


def generator_terms(
    output: Tensor,
    alpha: Tensor,
    truth: Tensor,
    mask: Tensor,
    fake: tuple[Tensor, list[Tensor]] | None,
    real_features: list[Tensor] | None,
    weights: DCNetLossWeights,
    vgg: VGG19Features | None,
    mouth: Tensor | None = None,
) -> dict[str, Tensor]:
    """The generator's weighted terms and ``total`` (``alpha``: its blending mask, (B, 1, S, S);
    ``fake``: the discriminator on the output; ``mouth``: the target's mouth interior (B, 1, S, S),
    for ``mouth_l1``)."""
    terms = {
        "l1": weights.l1 * (output - truth).abs().mean(),
        "face_l1": weights.face_l1 * _masked_l1(output, truth, mask),
    }
    if weights.mouth_l1 and mouth is not None:
        reach = 2 * round(MOUTH_GROWTH * mouth.shape[-1]) + 1
        lips = functional.max_pool2d(mouth, reach, stride=1, padding=reach // 2)
        terms["mouth_l1"] = weights.mouth_l1 * _masked_l1(output, truth, lips)
    if weights.face_alpha:  # the ramp holds alpha below 1 at the edge; a sigmoid reaches 0.99 at most
        reachable = FACE_ALPHA * mask * border_ramp(mask.shape[-1]).to(mask)
        shortfall = functional.relu(reachable - alpha).sum() / mask.sum().clamp(min=1)
        terms["face_alpha"] = weights.face_alpha * shortfall
    if weights.decisive_alpha:
        terms["decisive_alpha"] = weights.decisive_alpha * indecision(alpha).mean()
    if fake is not None and real_features is not None:
        logits, features = fake
        terms["adversarial"] = -weights.adversarial * logits.mean()
        matching = sum((f - r.detach()).abs().mean() for f, r in zip(features, real_features, strict=True))
        terms["feature_matching"] = weights.feature_matching * matching / len(features)
    if vgg is not None:
        pairs = zip(vgg(output), vgg(truth), strict=True)
        terms["perceptual"] = weights.perceptual * sum((o - t.detach()).abs().mean() for o, t in pairs)
    terms["total"] = sum(terms.values())
    return terms


def _masked_l1(output: Tensor, truth: Tensor, mask: Tensor) -> Tensor:
    """Mean absolute error of (B, 3, S, S) images over the pixels of ``mask`` (B, 1, S, S)."""
    return ((output - truth).abs() * mask).sum() / (3 * mask.sum()).clamp(min=1)


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge loss of the discriminator."""
    return functional.relu(1 - real_logits).mean() + functional.relu(1 + fake_logits).mean()
