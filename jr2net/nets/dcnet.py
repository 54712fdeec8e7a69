"""DCNet: the dense-conditional reenactment generator of JR2Net (PAPER.md), sized for real time.

Inputs, all on one aligned square crop of S pixels (:mod:`jr2net.dense_conditions`):

- ``texture`` (B, 9, S, S): the source crop ‖ its light map ‖ its normal map.
- ``conditions`` (B, 12, S, S): the warped source (the source sampled at each target pixel's source
  point, over the whole crop) ‖ co-visibility ‖ target face mask ‖ mouth interior ‖ target light
  map ‖ target normal map (:data:`CONDITION_CHANNELS`).
- ``grid`` (B, S, S, 2): each target pixel's source point in the source crop, in grid_sample's
  [-1, 1] coordinates: the view synthesis that warps the texture *features*.

A texture encoder turns the source into features at S/2 and S/4, which are warped to the target
by ``grid``; a context encoder (strided, then dilated convolutions, its deepest level upsampled
and concatenated) reads the conditions; the generator decodes the warped features and the context
at S/4 and S/2, every level's normalised activations scaled and shifted per pixel by the
conditions (SPADE), and a last convolution at S over its upsampled features and the warped source
gives the whole crop: an RGB correction of the warped source and a soft blending mask, which a
ramp at the crop's border brings to zero so the crop melts into the frame it is pasted on. The
work sits at S/4 and S/2 so that a 256² crop costs about half a GMAC.

Where the source saw the target (co-visible, outside the mouth) the warped source is kept as it
is (``keep_seen_source``): a correction there, even one kept to low frequencies, added nothing on
the held-out pairs (face PSNR 23.405 with it, 23.408 without) and cost 0.1 to 0.4 dB on unseen
clips. The generator makes what the source never showed (the mouth, what the head turned
towards, hair, neck and background) and the blending mask. The correction starts at zero: an
untrained DCNet gives back the warped source.

The crop is blended over the static source frame, which shows the source's head where it was
wherever the mask is below 1 (about a half over the hair and the chin of a turned head: the static
outline beside the moved one). With ``moved_background`` a second mask channel says how much of
the layer under the blend is the warped source, the whole frame moved with the head, instead
(:func:`background`): the network can show the moved hair under a half mask and the static
background behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

from jr2net.shapes import check_tensor

MAP_CHANNELS = ("light_r", "light_g", "light_b", "normal_x", "normal_y", "normal_z")
TEXTURE_CHANNELS = ("source_r", "source_g", "source_b", *MAP_CHANNELS)
CONDITION_CHANNELS = ("warped_r", "warped_g", "warped_b", "covisible", "mask", "mouth", *MAP_CHANNELS)
BORDER_FRACTION = 1 / 16  # the blending mask ramps from 0 at the crop's edge to 1 this far inside
SLOPE = 0.2


@dataclass(frozen=True)
class DCNetConfig:
    """Widths of the three networks (the defaults are the real-time size)."""

    texture_widths: tuple[int, int] = (16, 32)  # at S/2, S/4
    context_widths: tuple[int, int, int] = (16, 32, 48)  # at S/2, S/4, S/8
    generator_widths: tuple[int, int] = (48, 24)  # at S/4, S/2
    modulation_width: int = 16  # hidden width of each SPADE modulation
    condition_channels: int = len(CONDITION_CHANNELS)
    keep_seen_source: bool = True  # no correction where the source saw the target
    moved_background: bool = False  # a second mask: the warped source under the blend, not the static
    # (its share starts at a half: started at 0.018, a sigmoid's logit of -4, it stayed there)


def _conv(inputs: int, outputs: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, 3, stride=stride, padding=dilation, dilation=dilation)


def _activate(x: Tensor) -> Tensor:
    return functional.leaky_relu(x, SLOPE)


class TextureEncoder(nn.Module):
    """Source crop ‖ light ‖ normals (B, 9, S, S) -> features at S/2 and S/4."""

    def __init__(self, widths: tuple[int, int]) -> None:
        super().__init__()
        self.to_half = _conv(len(TEXTURE_CHANNELS), widths[0], stride=2)
        self.to_quarter = _conv(widths[0], widths[1], stride=2)
        self.quarter_mix = _conv(widths[1], widths[1])

    def forward(self, texture: Tensor) -> tuple[Tensor, Tensor]:
        half = _activate(self.to_half(texture))
        quarter = _activate(self.quarter_mix(_activate(self.to_quarter(half))))
        return half, quarter


class ContextEncoder(nn.Module):
    """Conditions (B, C, S, S) -> context at S/4: dilated convolutions at S/4 and S/8, the deeper
    level upsampled and concatenated (``widths[1] + widths[2]`` channels)."""

    def __init__(self, channels: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        self.to_half = _conv(channels, widths[0], stride=2)
        self.to_quarter = _conv(widths[0], widths[1], stride=2)
        self.quarter_dilated = _conv(widths[1], widths[1], dilation=2)
        self.to_eighth = _conv(widths[1], widths[2], stride=2)
        self.eighth_dilated = nn.ModuleList([_conv(widths[2], widths[2], dilation=d) for d in (2, 4)])

    def forward(self, conditions: Tensor) -> Tensor:
        quarter = _activate(self.to_quarter(_activate(self.to_half(conditions))))
        quarter = _activate(self.quarter_dilated(quarter))
        eighth = _activate(self.to_eighth(quarter))
        for layer in self.eighth_dilated:
            eighth = _activate(layer(eighth))
        up = functional.interpolate(eighth, scale_factor=2.0, mode="bilinear", align_corners=False)
        return torch.cat([quarter, up], dim=1)


class SpadeBlock(nn.Module):
    """Instance-normalised activations scaled and shifted per pixel by the conditions (SPADE: a
    shared 3×3 convolution of the conditions, 1×1 to scale and shift), then a convolution; a
    residual connection (1×1 where the width changes)."""

    def __init__(self, inputs: int, outputs: int, conditions: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(inputs, affine=False)
        self.shared = _conv(conditions, hidden)
        self.scale = nn.Conv2d(hidden, inputs, 1)
        self.shift = nn.Conv2d(hidden, inputs, 1)
        self.conv = _conv(inputs, outputs)
        self.skip = nn.Conv2d(inputs, outputs, 1) if inputs != outputs else nn.Identity()

    def forward(self, x: Tensor, conditions: Tensor) -> Tensor:
        modulation = functional.relu(self.shared(conditions))
        modulated = self.norm(x) * (1 + self.scale(modulation)) + self.shift(modulation)
        return self.skip(x) + self.conv(_activate(modulated))


def unseen_only(correction: Tensor, conditions: Tensor) -> Tensor:
    """The correction (B, 3, S, S) where the source did not see the target, 0 where it did
    (co-visible and not the mouth, from ``conditions`` (B, C, S, S))."""
    covisible = conditions[:, CONDITION_CHANNELS.index("covisible")][:, None]
    mouth = conditions[:, CONDITION_CHANNELS.index("mouth")][:, None]
    return (1 - covisible * (1 - mouth)) * correction


def background(masks: Tensor, warped: Tensor, static: Tensor) -> Tensor:
    """The layer the generated crop is blended over, (B, 3, H, W): the ``static`` source, or with a
    second mask channel (``moved_background``) its share of the ``warped`` source over it.

    Args:
        masks: (B, 1 or 2, H, W) DCNet's blending mask ‖ the share of the warped source under it.
        warped, static: (B, 3, H, W) the warped and the static source.
    """
    if masks.shape[1] == 1:
        return static
    share = masks[:, 1:2]
    return share * warped + (1 - share) * static


def border_ramp(size: int, fraction: float = BORDER_FRACTION) -> Tensor:
    """(1, 1, S, S): 0 at the crop's edge, rising linearly to 1 ``fraction`` of S inside."""
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    edge = torch.minimum(centres, size - centres) / max(fraction * size, 1.0)
    ramp = edge.clamp(0, 1)
    return (ramp[:, None] * ramp[None, :])[None, None]


def warp_features(features: Tensor, grid: Tensor) -> Tensor:
    """Features (B, C, S/k, S/k) sampled at ``grid`` (B, S, S, 2) averaged down by k: the eq. 2
    view synthesis of the texture features (zero outside the source crop)."""
    factor = grid.shape[1] // features.shape[-2]
    small = functional.avg_pool2d(grid.permute(0, 3, 1, 2), factor)
    return functional.grid_sample(
        features, small.permute(0, 2, 3, 1), mode="bilinear", padding_mode="zeros", align_corners=False
    )


@dataclass(frozen=True)
class DCNetOutput:
    """The generated crop: ``image`` (B, 3, S, S) in [0, 1] and ``alpha`` (B, 1, S, S), the soft
    mask that blends it over the frame (0 at the crop's border), with ``moved_background`` (B, 2, S,
    S): the mask ‖ the share of the warped source under it (:func:`background`)."""

    image: Tensor
    alpha: Tensor


class DCNet(nn.Module):
    """Texture encoder, context encoder and SPADE generator (see the module docstring)."""

    def __init__(self, config: DCNetConfig = DCNetConfig()) -> None:
        super().__init__()
        self.config = config
        texture, context, generator = config.texture_widths, config.context_widths, config.generator_widths
        channels, hidden = config.condition_channels, config.modulation_width
        self.texture = TextureEncoder(texture)
        self.context = ContextEncoder(channels, context)
        self.entry = nn.Conv2d(texture[1] + context[1] + context[2], generator[0], 1)
        self.quarter_block = SpadeBlock(generator[0], generator[0], channels, hidden)
        self.half_entry = nn.Conv2d(generator[0] + texture[0], generator[1], 1)
        self.half_block = SpadeBlock(generator[1], generator[1], channels, hidden)
        self.out = _conv(generator[1] + 3, 5 if config.moved_background else 4)
        with torch.no_grad():  # no correction before training: the warped source itself
            self.out.weight[:3].zero_()
            self.out.bias[:3].zero_()

    def forward(self, texture: Tensor, conditions: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
        """``(image (B, 3, S, S), alpha (B, 1, S, S))`` for the inputs of the module docstring
        (``alpha`` (B, 2, S, S) with ``moved_background``, see :class:`DCNetOutput`)."""
        half_features, quarter_features = self.texture(texture)
        context = self.context(conditions)
        size = conditions.shape[-1]
        quarter_conditions = functional.avg_pool2d(conditions, 4)
        half_conditions = functional.avg_pool2d(conditions, 2)
        x = self.entry(torch.cat([warp_features(quarter_features, grid), context], dim=1))
        x = self.quarter_block(x, quarter_conditions)
        x = functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = self.half_entry(torch.cat([x, warp_features(half_features, grid)], dim=1))
        x = self.half_block(x, half_conditions)
        x = functional.interpolate(_activate(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        out = self.out(torch.cat([x, conditions[:, :3]], dim=1))
        correction = out[:, :3]
        if self.config.keep_seen_source:
            correction = unseen_only(correction, conditions)
        image = (conditions[:, :3] + correction).clamp(0, 1)
        alpha = torch.sigmoid(out[:, 3:]) * border_ramp(size).to(out)
        return image, alpha

    def generate(self, texture: Tensor, conditions: Tensor, grid: Tensor) -> DCNetOutput:
        """:meth:`forward` with its inputs' shapes checked, as a :class:`DCNetOutput`."""
        dims = check_tensor("texture", texture, ("B", len(TEXTURE_CHANNELS), "S", "S"))
        check_tensor("conditions", conditions, ("B", self.config.condition_channels, "S", "S"), dims)
        check_tensor("grid", grid, ("B", "S", "S", 2), dims)
        if dims["S"] % 8:
            raise ValueError(f"DCNet needs a crop size divisible by 8, got {dims['S']}")
        return DCNetOutput(*self(texture, conditions, grid))
