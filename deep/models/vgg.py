"""VGG-16 with batch norm for CIFAR.

Configuration D: ``64,64,M,128,128,M,256x3,M,512x3,M,512x3,M``, each ``Conv3x3 (no bias)
-> BN -> ReLU``, ``M`` a 2x2 max-pool, so a 32x32 image ends as 512x1x1; then the head of
Keskar et al.'s C2/C4 ``deepnet``: ``FC512 (no bias) -> BN -> ReLU -> Dropout(0.5) ->
FC(num_classes)``.
"""

from __future__ import annotations

from torch import nn

from deep.models.base import ShapedModel

__all__ = ["VGG16_CONFIG", "VGG", "vgg16"]

VGG16_CONFIG = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


class VGG(ShapedModel):
    """VGG with BN for ``(3, 32, 32)`` inputs, built from a configuration tuple."""

    def __init__(self, config: tuple, num_classes: int) -> None:
        super().__init__((3, 32, 32), num_classes)
        layers: list[nn.Module] = []
        c_in = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [
                    nn.Conv2d(c_in, item, 3, padding=1, bias=False),
                    nn.BatchNorm2d(item),
                    nn.ReLU(inplace=True),
                ]
                c_in = item
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(c_in, 512, bias=False),
            nn.BatchNorm1d(512),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(512, num_classes),
        )

    def body(self, x):
        return self.classifier(self.features(x).flatten(1))


def vgg16(num_classes: int = 10) -> VGG:
    """VGG-16 with BN for CIFAR."""
    return VGG(VGG16_CONFIG, num_classes)
