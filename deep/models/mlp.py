"""Fully connected batch-normalised nets: F1 (Keskar et al.; bigBatch's mnist_f1), small ones."""

from __future__ import annotations

from torch import nn

from deep.models.base import ShapedModel

__all__ = ["MLP", "f1", "f1_small", "mlp1d", "mlp1d_nobn", "mlp_digits"]


class MLP(ShapedModel):
    """``in -> [Linear(h) -> BatchNorm1d -> ReLU] x depth -> Linear(num_classes)``.

    With ``batch_norm=False`` the ``BatchNorm1d`` layers are left out.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample; it is flattened.
    num_classes : int
        Outputs of the last layer.
    width, depth : int
        Hidden width ``h`` and number of hidden layers.
    batch_norm : bool
        Batch-normalise every hidden layer.
    """

    flat_input = True

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        width: int,
        depth: int,
        batch_norm: bool = True,
    ) -> None:
        super().__init__(input_shape, num_classes)
        layers: list[nn.Module] = []
        fan_in = 1
        for s in self.input_shape:
            fan_in *= s
        for _ in range(depth):
            layers.append(nn.Linear(fan_in, width))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.ReLU(inplace=True))
            fan_in = width
        layers.append(nn.Linear(fan_in, num_classes))
        self.layers = nn.Sequential(*layers)

    def body(self, x):
        return self.layers(x)


def f1(num_classes: int = 10) -> MLP:
    """F1 (MNIST): 784 -> [512, BN, ReLU] x 5 -> 10."""
    return MLP((1, 28, 28), num_classes, width=512, depth=5)


def f1_small(num_classes: int = 10) -> MLP:
    """A small F1 for quick CPU runs: 784 -> [128, BN, ReLU] x 2 -> 10."""
    return MLP((1, 28, 28), num_classes, width=128, depth=2)


def mlp1d(num_classes: int = 10) -> MLP:
    """For MNIST-1D (40 features): 40 -> [256, BN, ReLU] x 3 -> 10."""
    return MLP((40,), num_classes, width=256, depth=3)


def mlp1d_nobn(num_classes: int = 10) -> MLP:
    """``mlp1d`` without batch norm: 40 -> [256, ReLU] x 3 -> 10."""
    return MLP((40,), num_classes, width=256, depth=3, batch_norm=False)


def mlp_digits(num_classes: int = 10) -> MLP:
    """For scikit-learn's 8x8 digits: 64 -> [128, BN, ReLU] x 2 -> 10."""
    return MLP((1, 8, 8), num_classes, width=128, depth=2)
