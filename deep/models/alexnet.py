"""AlexNet with batch norm for ImageNet, as bigBatch's ``AlexNetOWT_BN``.

Features: ``Conv11x11/4(64, pad 2) -> MaxPool(3,2) -> BN -> ReLU``, ``Conv5x5(192, pad 2) ->
MaxPool(3,2) -> ReLU -> BN``, ``Conv3x3(384) -> ReLU -> BN``, ``Conv3x3(256) -> ReLU -> BN``,
``Conv3x3(256) -> MaxPool(3,2) -> ReLU -> BN`` (no conv bias), giving 256x6x6 for a 224x224
image; classifier ``FC4096 (no bias) -> BN -> ReLU -> Dropout(0.5)`` twice, then
``FC(num_classes)``.
"""

from __future__ import annotations

from torch import nn

from deep.models.base import ShapedModel

__all__ = ["AlexNetBN", "alexnet"]


class AlexNetBN(ShapedModel):
    """AlexNet-BN for ``(3, 224, 224)`` inputs."""

    def __init__(self, num_classes: int) -> None:
        super().__init__((3, 224, 224), num_classes)
        relu = nn.ReLU
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2, bias=False),
            nn.MaxPool2d(3, 2),
            nn.BatchNorm2d(64),
            relu(inplace=True),
            nn.Conv2d(64, 192, 5, padding=2, bias=False),
            nn.MaxPool2d(3, 2),
            relu(inplace=True),
            nn.BatchNorm2d(192),
            nn.Conv2d(192, 384, 3, padding=1, bias=False),
            relu(inplace=True),
            nn.BatchNorm2d(384),
            nn.Conv2d(384, 256, 3, padding=1, bias=False),
            relu(inplace=True),
            nn.BatchNorm2d(256),
            nn.Conv2d(256, 256, 3, padding=1, bias=False),
            nn.MaxPool2d(3, 2),
            relu(inplace=True),
            nn.BatchNorm2d(256),
        )
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096, bias=False),
            nn.BatchNorm1d(4096),
            relu(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096, bias=False),
            nn.BatchNorm1d(4096),
            relu(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def body(self, x):
        return self.classifier(self.features(x).flatten(1))


def alexnet(num_classes: int = 1000) -> AlexNetBN:
    """AlexNet with BN (ImageNet, 1000 classes by default)."""
    return AlexNetBN(num_classes)
