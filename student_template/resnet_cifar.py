"""A CIFAR-style ResNet-18, the backbone of Question 3 (SimSiam).

Provided code. Compared with the ImageNet ResNet-18 the stem is a single 3x3
convolution with stride 1 and there is no max-pooling, so that 32x32 images keep
enough resolution (this is the variant of the SimSiam paper's CIFAR experiments).
``resnet18`` takes the keyword arguments that ``SimSiam`` passes to its
``base_encoder`` and ends with the linear layer ``fc`` that ``SimSiam`` replaces.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (projected when the shape changes)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet for 32x32 inputs: 3x3 stem, four stages, global average pooling, ``fc``.

    Args:
        layers: number of blocks in each of the four stages.
        num_classes: output size of ``fc``.
        zero_init_residual: zero the last BN's gamma of every block, so that each block
            starts as the identity (the SimSiam builder asks for it; it helps early training).
        width: channels of the first stage (64 in ResNet-18); smaller values make quick tests.
    """

    def __init__(self, layers: list[int], num_classes: int = 10, zero_init_residual: bool = False,
                 width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.in_planes = width
        self.layer1 = self._make_layer(width, layers[0], stride=1)
        self.layer2 = self._make_layer(2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * width, num_classes)
        self._init_weights(zero_init_residual)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        """One stage: the first block may downsample, the others keep the shape."""
        strides = [stride] + [1] * (blocks - 1)
        stage = []
        for s in strides:
            stage.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*stage)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """He initialisation for convolutions, unit BN, as in torchvision's ResNet."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, BasicBlock):
                    nn.init.zeros_(module.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` images to the ``(B, 8 * width)`` pooled features that feed ``fc``."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features followed by ``fc`` (the SimSiam projector once ``fc`` is replaced)."""
        return self.fc(self.forward_features(x))


def resnet18(num_classes: int = 10, zero_init_residual: bool = False, width: int = 64) -> ResNet:
    """CIFAR ResNet-18; usable as ``SimSiam(base_encoder=resnet18)``."""
    return ResNet([2, 2, 2, 2], num_classes=num_classes, zero_init_residual=zero_init_residual, width=width)
