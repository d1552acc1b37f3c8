"""CIFAR ResNets with post-activation basic blocks: ResNet44 and WResNet16-4.

Stem ``Conv3x3(16) -> BN -> ReLU``; three stages of ``n`` blocks (stride 1, 2, 2), each block
``Conv3x3 -> BN -> ReLU -> Conv3x3 -> BN``, plus the shortcut (identity, or ``Conv1x1 -> BN``
when the shape changes), then ReLU; global average pooling (8x8) and a linear classifier.
Convolutions have no bias; Kaiming (fan-out) initialisation, as in bigBatch's ``resnet``.
Depth ``6 n + 2`` for ResNet44 (``n = 7``); WResNet16-4 has ``n = 2`` and widths times 4, no
dropout.
"""

from __future__ import annotations

from torch import nn

from deep.models.base import ShapedModel

__all__ = ["BasicBlock", "CifarResNet", "resnet44", "wresnet16_4"]


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Post-activation residual block with a projection shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(ShapedModel):
    """A CIFAR ResNet (input ``(3, 32, 32)``).

    Parameters
    ----------
    blocks_per_stage : int
        ``n``; the depth is ``6 n + 2``.
    widths : tuple of three ints
        Channels of the three stages.
    num_classes : int
        Outputs.
    stem_width : int
        Channels of the first convolution.
    """

    def __init__(
        self,
        blocks_per_stage: int,
        widths: tuple[int, int, int],
        num_classes: int,
        stem_width: int = 16,
    ) -> None:
        super().__init__((3, 32, 32), num_classes)
        self.stem = nn.Sequential(
            _conv3x3(3, stem_width), nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True)
        )
        stages, c_in = [], stem_width
        for i, width in enumerate(widths):
            blocks = []
            for b in range(blocks_per_stage):
                blocks.append(BasicBlock(c_in, width, 2 if (i > 0 and b == 0) else 1))
                c_in = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def body(self, x):
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))


def resnet44(num_classes: int = 10) -> CifarResNet:
    """ResNet44 for CIFAR: n = 7, widths 16/32/64."""
    return CifarResNet(7, (16, 32, 64), num_classes)


def wresnet16_4(num_classes: int = 10) -> CifarResNet:
    """Wide ResNet 16-4 for CIFAR: n = 2, widths 64/128/256, stem 16, no dropout."""
    return CifarResNet(2, (64, 128, 256), num_classes)
