"""Image backbones written here (no torchvision): ResNet-18/50 and a MobileNetV2.

Each backbone maps (B, 3, H, W) images to (B, C) pooled features and states ``feature_size`` (C).
"""

from __future__ import annotations

from torch import Tensor, nn


def _conv_bn(inputs: int, outputs: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(inputs, outputs, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(outputs),
    ]


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(inputs, width, 3, stride), nn.ReLU(inplace=True), *_conv_bn(width, width, 3)
        )
        self.shortcut = _shortcut(inputs, width, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (strided), 1×1 expand by 4, with a residual connection (ResNet-50)."""

    expansion = 4

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        outputs = width * self.expansion
        self.body = nn.Sequential(
            *_conv_bn(inputs, width, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(width, width, 3, stride),
            nn.ReLU(inplace=True),
            *_conv_bn(width, outputs, 1),
        )
        self.shortcut = _shortcut(inputs, outputs, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def _shortcut(inputs: int, outputs: int, stride: int) -> nn.Module:
    if stride == 1 and inputs == outputs:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(inputs, outputs, 1, stride))


class ResNet(nn.Module):
    """ResNet (He et al. 2016) without its classifier.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        depths: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18, (3, 4, 6, 3) for ResNet-50.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], depths: tuple[int, int, int, int]) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_conv_bn(3, 64, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        channels = 64
        for stage, depth in enumerate(depths):
            width = 64 * 2**stage
            for index in range(depth):
                layers.append(block(channels, width, 2 if index == 0 and stage > 0 else 1))
                channels = width * block.expansion
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_size = channels

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, feature_size)."""
        return self.features(images)


def resnet18() -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2))


def resnet34() -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3))


def resnet50() -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand, 3×3 depthwise (strided), 1×1 linear projection."""

    def __init__(self, inputs: int, outputs: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inputs * expansion
        expand = [*_conv_bn(inputs, hidden, 1), nn.ReLU6(inplace=True)] if expansion != 1 else []
        self.body = nn.Sequential(
            *expand,
            *_conv_bn(hidden, hidden, 3, stride, groups=hidden),
            nn.ReLU6(inplace=True),
            *_conv_bn(hidden, outputs, 1),
        )
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x) if self.residual else self.body(x)


# (expansion, channels, blocks, first stride) per stage, Sandler et al. 2018, table 2.
MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _scaled(channels: int, width: float) -> int:
    return max(8, int(channels * width + 4) // 8 * 8)


class MobileNetV2(nn.Module):
    """MobileNetV2 without its classifier, channels scaled by ``width`` (rounded to multiples of 8)."""

    def __init__(self, width: float = 1.0, last_channels: int = 640) -> None:
        super().__init__()
        channels = _scaled(32, width)
        layers: list[nn.Module] = [*_conv_bn(3, channels, 3, 2), nn.ReLU6(inplace=True)]
        for expansion, stage_channels, blocks, stride in MOBILENET_V2_STAGES:
            outputs = _scaled(stage_channels, width)
            for index in range(blocks):
                layers.append(InvertedResidual(channels, outputs, stride if index == 0 else 1, expansion))
                channels = outputs
        layers += [*_conv_bn(channels, last_channels, 1), nn.ReLU6(inplace=True)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_size = last_channels

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, feature_size)."""
        return self.features(images)
