"""Compiled (numba) forward and backward of ghost batch norm on 2-D CPU activations.

Ghost batch ``j`` holds rows ``starts[j]:starts[j + 1]`` of an ``(N, C)`` activation. Each
kernel works through one ghost batch at a time, so that its rows (``g x C`` values, a few
hundred kB) stay in cache between the passes over them: the activation is read from memory
once per direction, where ``torch.batch_norm`` on the whole batch reads it several times, and
no call is made per ghost batch. The inner loops run over the contiguous channel axis in the
activation's dtype (as the native kernel accumulates a float32 activation in float32), so
they compile to the widest SIMD code; per-channel results are formed in float64.

Formulas, per ghost batch of ``n`` rows and channel ``c`` (``xhat = (x - mean) invstd``):

* forward: with ``d = x - x_first`` (deviations from the ghost batch's first row, so that a
  large mean does not cancel), ``mean = x_first + sum d / n`` and
  ``var = sum d^2 / n - (sum d / n)^2`` in one pass; ``invstd = 1 / sqrt(var + eps)``,
  ``y = (x - mean) invstd w + b``;
* backward: ``db = sum dy``, ``dw = sum dy xhat``,
  ``dx = w invstd (dy - db / n - xhat dw / n)``.

The kernels run on one thread (and release the GIL). Sharing the ghost batches among threads
was measured and dropped: on 2 cores it equalled batch norm's two threads only when nothing
else ran, and lost to one thread inside a training step, where the threads of the preceding
matrix product still spin when the ghost batch norm starts.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["ghost_forward", "ghost_backward"]


@njit(cache=True, nogil=True)
def ghost_forward(x, weight, bias, starts, eps, y, mean, invstd, var_unbiased):
    """Normalise each ghost batch of ``x`` into ``y``; write its statistics (float64 rows).

    Parameters
    ----------
    x, y : numpy.ndarray, shape (N, C)
        Activation and output (C-contiguous, same dtype).
    weight, bias : numpy.ndarray, shape (C,)
        Affine parameters (ones and zeros without them), in the activation's dtype.
    starts : numpy.ndarray of int64, shape (k + 1,)
        Row where each ghost batch starts, then ``N``.
    eps : float
        Added to the variance.
    mean, invstd, var_unbiased : numpy.ndarray of float64, shape (k, C)
        Written: each ghost batch's mean, ``1 / sqrt(var + eps)`` and unbiased variance.
    """
    n_channels = x.shape[1]
    zero = x[0, 0] * 0  # in the activation's dtype
    origin = np.empty(n_channels, x.dtype)
    total = np.empty(n_channels, x.dtype)
    squares = np.empty(n_channels, x.dtype)
    centre = np.empty(n_channels, x.dtype)
    scale = np.empty(n_channels, x.dtype)
    for j in range(starts.size - 1):
        r0, r1 = starts[j], starts[j + 1]
        n = r1 - r0
        for c in range(n_channels):
            origin[c] = x[r0, c]
            total[c] = zero
            squares[c] = zero
        for r in range(r0, r1):
            for c in range(n_channels):
                d = x[r, c] - origin[c]
                total[c] += d
                squares[c] += d * d
        for c in range(n_channels):
            shift = np.float64(total[c]) / n
            var = max(np.float64(squares[c]) / n - shift * shift, 0.0)
            mean[j, c] = np.float64(origin[c]) + shift
            var_unbiased[j, c] = var * n / (n - 1) if n > 1 else var
            invstd[j, c] = 1.0 / np.sqrt(var + eps)
            centre[c] = mean[j, c]
            scale[c] = invstd[j, c] * weight[c]
        for r in range(r0, r1):
            for c in range(n_channels):
                y[r, c] = (x[r, c] - centre[c]) * scale[c] + bias[c]


@njit(cache=True, nogil=True)
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
    zero = x[0, 0] * 0
    sum_dy = np.empty(n_channels, x.dtype)
    sum_dy_dev = np.empty(n_channels, x.dtype)
    centre = np.empty(n_channels, x.dtype)
    a = np.empty(n_channels, x.dtype)
    b = np.empty(n_channels, x.dtype)
    const = np.empty(n_channels, x.dtype)
    for j in range(starts.size - 1):
        r0, r1 = starts[j], starts[j + 1]
        n = r1 - r0
        for c in range(n_channels):
            sum_dy[c] = zero
            sum_dy_dev[c] = zero
            centre[c] = mean[j, c]
        for r in range(r0, r1):
            for c in range(n_channels):
                g = dy[r, c]
                sum_dy[c] += g
                sum_dy_dev[c] += g * (x[r, c] - centre[c])
        for c in range(n_channels):
            s = invstd[j, c]
            dbias[j, c] = sum_dy[c]
            dweight[j, c] = sum_dy_dev[c] * s
            # dx = a dy + b (x - mean) + const, with const = -a sum_dy / n
            a[c] = weight[c] * s
            b[c] = -weight[c] * s * s * s * sum_dy_dev[c] / n
            const[c] = -weight[c] * s * sum_dy[c] / n
        for r in range(r0, r1):
            for c in range(n_channels):
                dx[r, c] = a[c] * dy[r, c] + b[c] * (x[r, c] - centre[c]) + const[c]
