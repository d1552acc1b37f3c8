"""Compiled (numba) forward and backward of ghost batch norm on 2-D CPU activations.

Ghost batch ``j`` holds rows ``starts[j]:starts[j + 1]`` of an ``(N, C)`` activation. The
kernels work through one ghost batch at a time, so that its rows (``g x C`` values, a few
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

Threads. Ghost batches are independent, so threads share them out: each thread claims the
next unclaimed ghost batch with an atomic counter until none is left. With ``threads > 1``
the work runs on torch's own OpenMP team (:mod:`deep._torch_openmp`): the threads that just
ran the matrix product, and are still spinning for more work, take the ghost batches. Every
ghost batch is computed by the same code whichever thread takes it, so the result does not
depend on the number of threads (bit for bit). Without torch's OpenMP runtime the kernels run
on the calling thread.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import carray, cfunc, njit, types

from ._torch_openmp import address, claim, torch_team

__all__ = ["ghost_forward", "ghost_backward"]


# ----------------------------------------------------------------------------- one ghost batch
@njit(cache=True, nogil=True)
def _forward_rows(x, weight, bias, r0, r1, eps, y, mean, invstd, var_unbiased, work):
    """Normalise rows ``r0:r1`` (one ghost batch); write its statistic rows (float64)."""
    n_channels = x.shape[1]
    n = r1 - r0
    origin, total, squares, centre, scale = work[0], work[1], work[2], work[3], work[4]
    for c in range(n_channels):
        origin[c] = x[r0, c]
        total[c] = 0
        squares[c] = 0
    for r in range(r0, r1):
        for c in range(n_channels):
            d = x[r, c] - origin[c]
            total[c] += d
            squares[c] += d * d
    for c in range(n_channels):
        shift = np.float64(total[c]) / n
        var = max(np.float64(squares[c]) / n - shift * shift, 0.0)
        mean[c] = np.float64(origin[c]) + shift
        var_unbiased[c] = var * n / (n - 1) if n > 1 else var
        invstd[c] = 1.0 / np.sqrt(var + eps)
        centre[c] = mean[c]
        scale[c] = invstd[c] * weight[c]
    for r in range(r0, r1):
        for c in range(n_channels):
            y[r, c] = (x[r, c] - centre[c]) * scale[c] + bias[c]


@njit(cache=True, nogil=True)
def _backward_rows(dy, x, weight, r0, r1, mean, invstd, dx, dweight, dbias, work):
    """Input gradient of rows ``r0:r1`` (one ghost batch); its parameter-gradient rows."""
    n_channels = x.shape[1]
    n = r1 - r0
    sum_dy, sum_dy_dev, centre, a, b, const = work[0], work[1], work[2], work[3], work[4], work[5]
    for c in range(n_channels):
        sum_dy[c] = 0
        sum_dy_dev[c] = 0
        centre[c] = mean[c]
    for r in range(r0, r1):
        for c in range(n_channels):
            g = dy[r, c]
            sum_dy[c] += g
            sum_dy_dev[c] += g * (x[r, c] - centre[c])
    for c in range(n_channels):
        s = invstd[c]
        dbias[c] = sum_dy[c]
        dweight[c] = sum_dy_dev[c] * s
        # dx = a dy + b (x - mean) + const, with const = -a sum_dy / n
        a[c] = weight[c] * s
        b[c] = -weight[c] * s * s * s * sum_dy_dev[c] / n
        const[c] = -weight[c] * s * sum_dy[c] / n
    for r in range(r0, r1):
        for c in range(n_channels):
            dx[r, c] = a[c] * dy[r, c] + b[c] * (x[r, c] - centre[c]) + const[c]


# ----------------------------------------------------------------------------- claiming loops
@njit(cache=True, nogil=True)
def _forward_claimed(x, weight, bias, starts, eps, y, mean, invstd, var_unbiased, counter):
    """Claim ghost batches from ``counter`` and normalise them until none is left."""
    work = np.empty((5, x.shape[1]), x.dtype)
    k = starts.size - 1
    while True:
        j = claim(counter, 0)
        if j >= k:
            return
        _forward_rows(
            x, weight, bias, starts[j], starts[j + 1], eps,
            y, mean[j], invstd[j], var_unbiased[j], work,
        )  # fmt: skip


@njit(cache=True, nogil=True)
def _backward_claimed(dy, x, weight, starts, mean, invstd, dx, dweight, dbias, counter):
    """Claim ghost batches from ``counter`` and differentiate them until none is left."""
    work = np.empty((6, x.shape[1]), x.dtype)
    k = starts.size - 1
    while True:
        j = claim(counter, 0)
        if j >= k:
            return
        _backward_rows(
            dy, x, weight, starts[j], starts[j + 1], mean[j], invstd[j],
            dx, dweight[j], dbias[j], work,
        )  # fmt: skip


# ----------------------------------------------------------------------------- team callbacks
# A callback receives one int64 block: the sizes, the claim counter (the claiming loops count
# on ``counter[0]``, here the block's word _COUNTER), eps (as float64 bits) and the address of
# every array, in the order of _FORWARD_ARRAYS or _BACKWARD_ARRAYS.
_N, _C, _K, _COUNTER, _EPS = range(5)
_FORWARD_ARRAYS = ("x", "weight", "bias", "starts", "y", "mean", "invstd", "var_unbiased")
_BACKWARD_ARRAYS = ("dy", "x", "weight", "starts", "mean", "invstd", "dx", "dweight", "dbias")
_HEAD = 5


@njit(cache=True, nogil=True)
def _forward_from_block(data, dtype):
    """The forward's claiming loop on the arrays a block names (``dtype``: the activation's)."""
    h = carray(data, (_HEAD + 8,), np.int64)
    n, c, k = h[_N], h[_C], h[_K]
    eps = carray(data, (_HEAD,), np.float64)[_EPS]
    _forward_claimed(
        carray(address(h[_HEAD]), (n, c), dtype),
        carray(address(h[_HEAD + 1]), (c,), dtype),
        carray(address(h[_HEAD + 2]), (c,), dtype),
        carray(address(h[_HEAD + 3]), (k + 1,), np.int64),
        eps,
        carray(address(h[_HEAD + 4]), (n, c), dtype),
        carray(address(h[_HEAD + 5]), (k, c), np.float64),
        carray(address(h[_HEAD + 6]), (k, c), np.float64),
        carray(address(h[_HEAD + 7]), (k, c), np.float64),
        h[_COUNTER:],
    )


@njit(cache=True, nogil=True)
def _backward_from_block(data, dtype):
    """The backward's claiming loop on the arrays a block names (``dtype``: the activation's)."""
    h = carray(data, (_HEAD + 9,), np.int64)
    n, c, k = h[_N], h[_C], h[_K]
    _backward_claimed(
        carray(address(h[_HEAD]), (n, c), dtype),
        carray(address(h[_HEAD + 1]), (n, c), dtype),
        carray(address(h[_HEAD + 2]), (c,), dtype),
        carray(address(h[_HEAD + 3]), (k + 1,), np.int64),
        carray(address(h[_HEAD + 4]), (k, c), np.float64),
        carray(address(h[_HEAD + 5]), (k, c), np.float64),
        carray(address(h[_HEAD + 6]), (n, c), dtype),
        carray(address(h[_HEAD + 7]), (k, c), np.float64),
        carray(address(h[_HEAD + 8]), (k, c), np.float64),
        h[_COUNTER:],
    )


@functools.cache
def _callbacks() -> dict[tuple[str, type], int]:
    """Addresses of the four ``void (*)(void *)`` callbacks (compiled on first use)."""
    signature = types.void(types.voidptr)

    @cfunc(signature, nogil=True, cache=True)
    def forward_f32(data):
        _forward_from_block(data, np.float32)

    @cfunc(signature, nogil=True, cache=True)
    def forward_f64(data):
        _forward_from_block(data, np.float64)

    @cfunc(signature, nogil=True, cache=True)
    def backward_f32(data):
        _backward_from_block(data, np.float32)

    @cfunc(signature, nogil=True, cache=True)
    def backward_f64(data):
        _backward_from_block(data, np.float64)

    return {
        ("forward", np.float32): forward_f32.address,
        ("forward", np.float64): forward_f64.address,
        ("backward", np.float32): backward_f32.address,
        ("backward", np.float64): backward_f64.address,
    }


def _run(direction: str, arrays: dict[str, np.ndarray], eps: float, threads: int) -> None:
    """Run ``direction`` over all ghost batches: on torch's team, or on this thread."""
    x, k = arrays["x"], arrays["starts"].size - 1
    team = torch_team() if threads > 1 and k > 1 else None
    if team is None:
        counter = np.zeros(1, np.int64)
        if direction == "forward":
            a = arrays
            _forward_claimed(
                a["x"], a["weight"], a["bias"], a["starts"], eps,
                a["y"], a["mean"], a["invstd"], a["var_unbiased"], counter,
            )  # fmt: skip
        else:
            _backward_claimed(*arrays.values(), counter)
        return
    block = np.zeros(_HEAD + len(arrays), np.int64)
    block[_N], block[_C], block[_K] = x.shape[0], x.shape[1], k
    block[_EPS : _EPS + 1].view(np.float64)[0] = eps
    block[_HEAD:] = [a.ctypes.data for a in arrays.values()]
    team.run(_callbacks()[direction, x.dtype.type], block.ctypes.data, min(threads, k))


_ACTIVATIONS = ("x", "y", "dy", "dx")
_CHANNELS = ("weight", "bias")
_INT64, _FLOAT64 = np.dtype(np.int64), np.dtype(np.float64)
_FLOATS = (np.dtype(np.float32), _FLOAT64)


@njit(cache=True, nogil=True)
def _starts_rise(starts, n):
    """Whether ``starts`` goes from 0 to ``n`` in steps of at least 1."""
    if starts.size < 2 or starts[0] != 0 or starts[-1] != n:
        return False
    for j in range(starts.size - 1):
        if starts[j + 1] <= starts[j]:
            return False
    return True


def _checked(names: tuple[str, ...], values: tuple) -> dict[str, np.ndarray]:
    """The arrays by name, in ``names``' order, after checking every shape, dtype and layout
    the compiled code relies on (the team's callbacks rebuild the arrays from their
    addresses, so nothing else would catch a mismatch)."""
    arrays = dict(zip(names, values, strict=True))
    x, starts = arrays["x"], arrays["starts"]
    if x.ndim != 2 or x.dtype not in _FLOATS:
        raise ValueError(f"x must be a 2-D float32 or float64 array, got {x.dtype} {x.shape}")
    n, c = x.shape
    if starts.dtype != _INT64 or starts.ndim != 1 or not _starts_rise(starts, n):
        raise ValueError(f"starts must rise from 0 to {n} in int64 steps of at least 1")
    k = starts.size - 1
    for name, a in arrays.items():
        if name in _ACTIVATIONS:
            shape, dtype = (n, c), x.dtype
        elif name in _CHANNELS:
            shape, dtype = (c,), x.dtype
        elif name == "starts":
            continue
        else:  # the per-ghost float64 rows
            shape, dtype = (k, c), _FLOAT64
        if a.shape != shape or a.dtype != dtype or not a.flags.c_contiguous:
            raise ValueError(
                f"{name} must be a C-contiguous {dtype} array of shape {shape}, "
                f"got {a.dtype} {a.shape}"
            )
    if not starts.flags.c_contiguous:
        raise ValueError("starts must be C-contiguous")
    return arrays


def ghost_forward(
    x, weight, bias, starts, eps, y, mean, invstd, var_unbiased, threads: int = 1
) -> None:
    """Normalise each ghost batch of ``x`` into ``y``; write its statistics (float64 rows).

    Parameters
    ----------
    x, y : numpy.ndarray, shape (N, C)
        Activation and output (C-contiguous, same dtype: float32 or float64).
    weight, bias : numpy.ndarray, shape (C,)
        Affine parameters (ones and zeros without them), in the activation's dtype.
    starts : numpy.ndarray of int64, shape (k + 1,)
        Row where each ghost batch starts, then ``N``.
    eps : float
        Added to the variance.
    mean, invstd, var_unbiased : numpy.ndarray of float64, shape (k, C)
        Written: each ghost batch's mean, ``1 / sqrt(var + eps)`` and unbiased variance.
    threads : int
        Threads of torch's OpenMP team to share the ghost batches among (1: this thread).
    """
    values = (x, weight, bias, starts, y, mean, invstd, var_unbiased)
    _run("forward", _checked(_FORWARD_ARRAYS, values), float(eps), threads)


def ghost_backward(
    dy, x, weight, starts, mean, invstd, dx, dweight, dbias, threads: int = 1
) -> None:
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
    threads : int
        As in :func:`ghost_forward`.
    """
    values = (dy, x, weight, starts, mean, invstd, dx, dweight, dbias)
    _run("backward", _checked(_BACKWARD_ARRAYS, values), 0.0, threads)
