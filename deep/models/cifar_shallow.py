"""C1 / C3: the shallow CIFAR convolutional nets as in bigBatch's ``cifar_shallow``.

``[Conv5x5(64, pad 2, no bias) -> MaxPool(3, 2) -> BN -> ReLU] x 2 -> flatten (64*7*7)
-> FC384 (no bias) -> BN -> ReLU -> Dropout(0.5) -> FC192 (no bias) -> BN -> ReLU
-> Dropout(0.5) -> FC(num_classes)``. C1 is the CIFAR-10 net, C3 the CIFAR-100 one.
"""

from __future__ import annotations

from torch import nn

from deep.models.base import ShapedModel

__all__ = ["CifarShallow", "c1", "c3"]


class CifarShallow(ShapedModel):
    """The shallow CIFAR net (input ``(3, 32, 32)``)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__((3, 32, 32), num_classes)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 5, padding=2, bias=False),
            nn.MaxPool2d(3, 2),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 5, padding=2, bias=False),
            nn.MaxPool2d(3, 2),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(
            nn.Linear(64 * 7 * 7, 384, bias=False),
            nn.BatchNorm1d(384),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(384, 192, bias=False),
            nn.BatchNorm1d(192),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(192, num_classes),
        )

    def body(self, x):
        return self.classifier(self.features(x).flatten(1))


def c1(num_classes: int = 10) -> CifarShallow:
    """C1 (CIFAR-10)."""
    return CifarShallow(num_classes)


def c3(num_classes: int = 100) -> CifarShallow:
    """C3 (CIFAR-100)."""
    return CifarShallow(num_classes)
