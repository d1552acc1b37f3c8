"""Compiled (numba) forward and backward of ghost batch norm on 2-D CPU activations.

Ghost batch ``j`` holds rows ``starts[j]:starts[j + 1]`` of an ``(N, C)`` activation. Each
kernel works through one ghost batch at a time, so that its rows (``g x C`` values, a few
hundred kB) stay in cache between the passes over them: the activation is read from memory
about once per direction, where ``torch.batch_norm`` on the whole batch reads it several times.
Statistics are accumulated in float64 whatever the activation's dtype; the inner loops run
over the contiguous channel axis and compile to SIMD code.

Formulas, per ghost batch of ``n`` rows and channel ``c`` (``xhat = (x - mean) invstd``):

* forward: ``mean = sum x / n``, ``var = sum (x - mean)^2 / n`` (two passes, no cancellation),
  ``invstd = 1 / sqrt(var + eps)``, ``y = xhat w + b``;
* backward: ``db = sum dy``, ``dw = sum dy xhat``,
  ``dx = w invstd (dy - db / n - xhat dw / n)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["ghost_forward", "ghost_backward"]


@njit(cache=True)
def ghost_forward(x, weight, bias, starts, eps, y, mean, invstd, var_unbiased):
    """Normalise each ghost batch of ``x`` into ``y``; write its statistics (float64 rows).

    Parameters
    ----------
    x, y : numpy.ndarray, shape (N, C)
        Activation and output (C-contiguous, same dtype).
    weight, bias : numpy.ndarray, shape (C,)
        Affine parameters (ones and zeros without them).
    starts : numpy.ndarray of int64, shape (k + 1,)
        Row where each ghost batch starts, then ``N``.
    eps : float
        Added to the variance.
    mean, invstd, var_unbiased : numpy.ndarray of float64, shape (k, C)
        Written: each ghost batch's mean, ``1 / sqrt(var + eps)`` and unbiased variance.
    """
    n_channels = x.shape[1]
    acc = np.empty(n_channels)
    scale = np.empty(n_channels)
    shift = np.empty(n_channels)
    for j in range(starts.size - 1):
        r0, r1 = starts[j], starts[j + 1]
        n = r1 - r0
        acc[:] = 0.0
        for r in range(r0, r1):
            for c in range(n_channels):
                acc[c] += x[r, c]
        for c in range(n_channels):
            mean[j, c] = acc[c] / n
            acc[c] = 0.0
        for r in range(r0, r1):
            for c in range(n_channels):
                dev = x[r, c] - mean[j, c]
                acc[c] += dev * dev
        for c in range(n_channels):
            var_unbiased[j, c] = acc[c] / (n - 1) if n > 1 else acc[c]
            invstd[j, c] = 1.0 / np.sqrt(acc[c] / n + eps)
            scale[c] = invstd[j, c] * weight[c]
            shift[c] = bias[c] - mean[j, c] * scale[c]
        for r in range(r0, r1):
            for c in range(n_channels):
                y[r, c] = x[r, c] * scale[c] + shift[c]


@njit(cache=True)
def ghost_backward(dy, x, weight, starts, mean, invstd, dx, dweight, dbias):
    """Input gradient of :func:`ghost_forward` into ``dx``; per-ghost parameter gradients.

    Parameters
    ----------
    dy, x, dx : numpy.ndarray, shape (N, C)
        Output gradient, the forward's input, and the input gradient (written).
    weight : numpy.ndarray, shape (C,)
        The forward's weight (ones without affine parameters).
    starts : numpy.ndarray of int64, shape (k + 1,)
        As in :func:`ghost_forward`.
    mean, invstd : numpy.ndarray of float64, shape (k, C)
        The forward's statistics.
    dweight, dbias : numpy.ndarray of float64, shape (k, C)
        Written: ``sum dy xhat`` and ``sum dy`` of each ghost batch (sum the rows).
    """
    n_channels = x.shape[1]
    sum_dy = np.empty(n_channels)
    sum_dy_dev = np.empty(n_channels)
    a = np.empty(n_channels)
    b = np.empty(n_channels)
    const = np.empty(n_channels)
    for j in range(starts.size - 1):
        r0, r1 = starts[j], starts[j + 1]
        n = r1 - r0
        sum_dy[:] = 0.0
        sum_dy_dev[:] = 0.0
        for r in range(r0, r1):
            for c in range(n_channels):
                g = dy[r, c]
                sum_dy[c] += g
                sum_dy_dev[c] += g * (x[r, c] - mean[j, c])
        for c in range(n_channels):
            s = invstd[j, c]
            dbias[j, c] = sum_dy[c]
            dweight[j, c] = sum_dy_dev[c] * s
            # dx = a dy + b (x - mean) - a sum_dy / n = a dy + b x + const
            a[c] = weight[c] * s
            b[c] = -a[c] * s * s * sum_dy_dev[c] / n
            const[c] = -a[c] * sum_dy[c] / n - b[c] * mean[j, c]
        for r in range(r0, r1):
            for c in range(n_channels):
                dx[r, c] = a[c] * dy[r, c] + b[c] * x[r, c] + const[c]
