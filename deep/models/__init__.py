"""The networks of the large-batch experiments, built by name.

>>> from deep.models import build
>>> model = build("f1")
>>> model.input_shape, model.num_classes
((1, 28, 28), 10)

Names: ``f1`` (MNIST), ``c1``/``c3`` (CIFAR-10/100 shallow nets), ``resnet44``, ``vgg16``,
``wresnet16_4`` (CIFAR), ``alexnet`` (ImageNet, BN), and small CPU nets ``f1_small``,
``mlp1d`` (MNIST-1D; ``mlp1d_nobn`` without batch norm) and ``mlp_digits`` (8x8 digits).
Every model has ``input_shape`` (one sample) and ``num_classes`` and raises ``ValueError`` on
an input of another shape.
"""

from __future__ import annotations

from collections.abc import Callable

from deep.models.alexnet import alexnet
from deep.models.base import ShapedModel
from deep.models.cifar_shallow import c1, c3
from deep.models.mlp import f1, f1_small, mlp1d, mlp1d_nobn, mlp_digits
from deep.models.resnet import resnet44, wresnet16_4
from deep.models.vgg import vgg16

__all__ = ["MODELS", "build", "ShapedModel"]

MODELS: dict[str, Callable[..., ShapedModel]] = {
    "f1": f1,
    "c1": c1,
    "c3": c3,
    "resnet44": resnet44,
    "vgg16": vgg16,
    "wresnet16_4": wresnet16_4,
    "alexnet": alexnet,
    "f1_small": f1_small,
    "mlp1d": mlp1d,
    "mlp1d_nobn": mlp1d_nobn,
    "mlp_digits": mlp_digits,
}


def build(name: str, num_classes: int | None = None) -> ShapedModel:
    """Build the model called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`MODELS`.
    num_classes : int, optional
        Number of outputs; the model's own default (its dataset's) when omitted.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or ``num_classes < 2``.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names are {sorted(MODELS)}")
    factory = MODELS[name]
    return factory() if num_classes is None else factory(num_classes)
