"""The base class every model derives from: it knows its input shape and checks its input."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ShapedModel"]


class ShapedModel(nn.Module):
    """An ``nn.Module`` that states the shape of one input sample and refuses any other.

    Subclasses set ``input_shape`` (one sample, without the batch axis) and ``num_classes``
    and implement :meth:`body`. Fully connected models set ``flat_input = True`` and then
    accept any sample shape with ``prod(input_shape)`` elements (e.g. MNIST as ``(1, 28, 28)``
    or as ``(784,)``).
    """

    input_shape: tuple[int, ...] = ()
    flat_input: bool = False

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` (flattened for fully connected models) or raise ``ValueError``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        sample = tuple(x.shape[1:])
        if self.flat_input:
            if x.dim() >= 2 and math.prod(sample) == math.prod(self.input_shape):
                return x.reshape(x.shape[0], -1)
        elif sample == self.input_shape:
            return x
        flat_note = (
            f" or any (N, ...) with {math.prod(self.input_shape)} features"
            if self.flat_input
            else ""
        )
        dims = ", ".join(map(str, self.input_shape))
        raise ValueError(
            f"{type(self).__name__} expects input of shape (N, {dims})"
            f"{flat_note}"
            f", got {tuple(x.shape)}"
        )

    def body(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.check_input(x))
