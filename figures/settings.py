"""Options that reach the figure modules without changing their uniform ``build`` signature.

The ``full`` profile of the deep-network figures trains the paper's networks on MNIST,
CIFAR and ImageNet files that the user supplies; their folder is taken from the
environment variable :data:`DATA_ENV` (``python -m figures --data-root DIR`` sets it).
"""

from __future__ import annotations

import os

__all__ = ["DATA_ENV", "data_root"]

DATA_ENV = "ULTRASLOW_DATA"


def data_root() -> str | None:
    """Folder of user-supplied datasets, or ``None`` when :data:`DATA_ENV` is unset or empty."""
    value = os.environ.get(DATA_ENV, "").strip()
    return value or None
