"""Options that reach the figure modules without changing their uniform ``build`` signature.

The ``full`` profile of the deep-network figures trains the paper's networks on MNIST,
CIFAR and ImageNet files that the user supplies; their folder is taken from the
environment variable :data:`DATA_ENV` (``python -m figures --data-root DIR`` sets it).
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["DATA_ENV", "data_root", "torch_threads"]

DATA_ENV = "ULTRASLOW_DATA"


def data_root() -> str | None:
    """Folder of user-supplied datasets, or ``None`` when :data:`DATA_ENV` is unset or empty."""
    value = os.environ.get(DATA_ENV, "").strip()
    return value or None


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` intra-op threads in torch, then restore the previous number.

    The small networks of the tiny and quick profiles train faster on one thread per
    process: their operations are too small to share, and idle threads spin.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
