"""Compiled (numba) steps of the built-in update rules, with packed arguments.

Three small records travel into the kernels instead of a long argument list:

- :class:`Problem`: the data and the loss. The full-batch gradient runs on the *distinct*
  folded samples with their multiplicities (``sum_n l(z_n . w) = sum_k c_k l(u_k . w)``): a
  data set that holds a sample and its mirror image with the opposite label (the JMLR
  Fig. 1 set does) folds to repeated rows, whose loss derivative need not be evaluated twice.
  Minibatches draw from the rows as given.
- :class:`Rule`: which update (``kind``: 0 GD/SGD, 1 heavy ball, 2 Nesterov, 3 normalized
  GD, 4 Adam), its step size and parameters, and the minibatch settings.
- :class:`State`: what a run carries between recording times (weights, moment buffers, the
  sampling permutation and its position).

:func:`run_steps` advances a run between two recording times and reports divergence;
:func:`run_schedule` runs through all the recording times in one compiled call.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from separable.losses import neg_dloss

__all__ = [
    "Problem",
    "Rule",
    "State",
    "make_problem",
    "run_steps",
    "run_schedule",
    "apply_update",
    "exp_into",
]

GD_KIND, HEAVY_BALL, NESTEROV, NORMALIZED, ADAM = 0, 1, 2, 3, 4


class Problem(NamedTuple):
    """Folded samples and loss, in the layouts the kernels read.

    Attributes
    ----------
    Z : numpy.ndarray, shape (N, d)
        Folded samples (rows), for minibatches.
    UT : numpy.ndarray, shape (d, K)
        The distinct rows of ``Z``, transposed and contiguous (full-batch gradient), then
        zero columns up to ``K``, a multiple of 4.
    counts : numpy.ndarray, shape (K,)
        Multiplicity of each distinct row (as floats), 0 for the padding.
    loss_id : int
        Built-in loss (see :data:`separable.losses.LOSS_IDS`).
    loss_param : float
        Its parameter.
    """

    Z: np.ndarray
    UT: np.ndarray
    counts: np.ndarray
    loss_id: int
    loss_param: float


class Rule(NamedTuple):
    """An update rule as numbers: ``kind``, ``eta``, ``p1..p3`` and the minibatch settings."""

    kind: int
    eta: float
    p1: float
    p2: float
    p3: float
    batch: int
    replace: bool


class State(NamedTuple):
    """Mutable arrays carried across calls: weights, moments, permutation and its position."""

    w: np.ndarray
    m: np.ndarray
    v: np.ndarray
    perm: np.ndarray
    pos: np.ndarray


_LANES = 4  # float64 lanes of a 256-bit SIMD register


def _distinct_rows(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(Z, axis=0, return_counts=True)`` for a finite float matrix, in a few
    calls: the rows sorted lexicographically, and a new row wherever one differs from the
    previous (``np.unique`` with an axis sorts a structured view, ten times slower here)."""
    N = Z.shape[0]
    rows = Z[np.lexsort(Z.T[::-1])]
    new = np.ones(N, dtype=bool)
    np.any(rows[1:] != rows[:-1], axis=1, out=new[1:])
    starts = np.flatnonzero(new)
    return rows[starts], np.diff(starts, append=N)


def make_problem(Z: np.ndarray, loss_id: int, loss_param: float) -> Problem:
    """Pack folded samples ``Z`` (N, d) and a built-in loss for the kernels.

    The distinct rows are padded with zero rows of count 0 to a multiple of 4, so that the
    full-batch loops run in whole SIMD vectors without a scalar remainder (12% of a Fig. 1
    step). A padded row adds exactly ``0 * 0`` to the gradient: the bits do not change.
    """
    unique, counts = _distinct_rows(Z)
    K, d = unique.shape
    padded = -(-K // _LANES) * _LANES
    UT = np.zeros((d, padded))
    UT[:, :K] = unique.T
    c = np.zeros(padded)
    c[:K] = counts
    return Problem(
        np.ascontiguousarray(Z, dtype=np.float64), UT, c, int(loss_id), float(loss_param)
    )


@njit(inline="always")
def apply_update(rule, w, g, m, v, t):
    """One step of ``rule`` at step ``t`` (0-based) with gradient ``g``, in place."""
    d = w.size
    eta, p1 = rule.eta, rule.p1
    if rule.kind == GD_KIND:
        for j in range(d):
            w[j] -= eta * g[j]
    elif rule.kind == HEAVY_BALL:
        for j in range(d):
            m[j] = p1 * m[j] - eta * g[j]
            w[j] += m[j]
    elif rule.kind == NESTEROV:
        for j in range(d):
            mo = m[j]
            m[j] = p1 * mo - eta * g[j]
            w[j] += p1 * p1 * mo - (1.0 + p1) * eta * g[j]
    elif rule.kind == NORMALIZED:
        s = 0.0
        for j in range(d):
            s += g[j] * g[j]
        if s > 0.0:
            s = eta / np.sqrt(s)
            for j in range(d):
                w[j] -= s * g[j]
    else:
        p2, p3 = rule.p2, rule.p3
        c1 = 1.0 - p1 ** (t + 1.0)
        c2 = 1.0 - p2 ** (t + 1.0)
        for j in range(d):
            m[j] = p1 * m[j] + (1.0 - p1) * g[j]
            v[j] = p2 * v[j] + (1.0 - p2) * g[j] * g[j]
            w[j] -= eta * (m[j] / c1) / (np.sqrt(v[j] / c2) + p3)


@njit(inline="always")
def _batch_gradient(Z, loss_id, loss_param, w, g, idx, nb):
    """``g = grad sum_{k < nb} l(z_idx[k] . w)`` over rows of ``Z``."""
    d = w.size
    for j in range(d):
        g[j] = 0.0
    for k in range(nb):
        i = idx[k]
        u = 0.0
        for j in range(d):
            u += Z[i, j] * w[j]
        c = neg_dloss(u, loss_id, loss_param)
        for j in range(d):
            g[j] -= c * Z[i, j]


@njit(inline="always")
def _draw_batch(rule, perm, pos, idx, N):
    """Fill ``idx`` with the next minibatch; return its size."""
    if rule.replace:
        for i in range(rule.batch):
            idx[i] = np.random.randint(0, N)
        return rule.batch
    if pos[0] >= N:
        np.random.shuffle(perm)
        pos[0] = 0
    nb = min(rule.batch, N - pos[0])
    for i in range(nb):
        idx[i] = perm[pos[0] + i]
    pos[0] += nb
    return nb


@njit(inline="always")
def _finite(a):
    """Whether ``sum a`` is finite (every entry is)."""
    s = 0.0
    for j in range(a.size):
        s += a[j]
    return np.isfinite(s)


@njit(inline="always")
def _finite_norm(a):
    """Whether ``sum a^2`` is finite (also catches a norm that overflows)."""
    s = 0.0
    for j in range(a.size):
        s += a[j] * a[j]
    return np.isfinite(s)


# exp(x) = 2^n e^r with n = round(x / ln 2), |r| <= ln(2) / 2; e^r by its Taylor polynomial
# of degree 13 (remainder < 4e-18), evaluated in Estrin's scheme (depth 5 instead of 13)
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two, so that n * ln2_hi is exact
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2^52: x + _ROUND rounds x to an integer in its low bits
_EXP_LOW, _EXP_HIGH = -708.0, 709.0  # where 2^n stays a normal number
_C = tuple(1.0 / math.factorial(k) for k in range(14))

# The hot kernels fuse multiply-adds (one rounding instead of two: the exponential gets more
# accurate, and the bits of a run may differ between machines with and without FMA units)
# and divide without Python's zero-division check, which would keep the loops scalar.
_HOT = {"error_model": "numpy", "fastmath": {"contract"}}


@intrinsic
def _bits_of(typingctx, x):
    """The IEEE-754 bits of a float64 as an int64 (a register move, no memory)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _float_of(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits``."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(inline="always")
def _in_exp_range(x):
    """Whether :func:`_exp_in_range` is exact to 2 ulp at ``x`` (False for NaN)."""
    return _EXP_LOW <= x <= _EXP_HIGH


@njit(inline="always")
def _exp_in_range(x):
    """``exp(x)`` within 2 ulp for ``x`` in ``[-708, 709]``, in branch-free arithmetic.

    A scalar ``np.exp`` per element is the floor of a GD step on small data (the step is
    otherwise a few multiply-adds); this body has no call and no branch, so a loop over it
    compiles to SIMD code. Outside the range the value is meaningless: callers test
    :func:`_in_exp_range` and take ``np.exp`` there, so the edge cases are the library's.
    """
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = _C
    shifted = x * _LOG2E + _ROUND
    n = shifted - _ROUND
    r = (x - n * _LN2_HI) - n * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    low = (c0 + c1 * r + r2 * (c2 + c3 * r)) + r4 * (c4 + c5 * r + r2 * (c6 + c7 * r))
    high = (c8 + c9 * r + r2 * (c10 + c11 * r)) + r4 * (c12 + c13 * r)
    two_n = _float_of((_bits_of(shifted) + 1023) << 52)  # the low bits of `shifted` hold n
    return (low + (r4 * r4) * high) * two_n


@njit(inline="always")
def _logistic_weights(u, c, p):
    """``p[i] = c[i] / (1 + exp(u[i]))``: the logistic loss's ``-l'(u)`` times the counts.

    An ``exp`` that overflows gives the limit 0.
    """
    outside = 0  # arguments outside the range (NaN included), counted without a branch
    for i in range(u.size):
        x = u[i]
        outside += 0 if _in_exp_range(x) else 1
        p[i] = c[i] / (1.0 + _exp_in_range(x))
    if outside:
        for i in range(u.size):
            if not _in_exp_range(u[i]):
                p[i] = c[i] / (1.0 + np.exp(u[i]))


@njit(inline="always")
def _dot_rows(UT, j, p):
    """``sum_i UT[j, i] p[i]`` in four interleaved partial sums (one SIMD register).

    Four partial sums shorten the chain of dependent additions four times; their order is
    fixed, so the bits do not depend on the machine's vector width. (:func:`make_problem`
    pads ``K`` to a multiple of 4; a remainder would be added to the first sum.)
    """
    whole = p.size - p.size % _LANES
    a0 = a1 = a2 = a3 = 0.0
    for i in range(0, whole, _LANES):
        a0 += UT[j, i] * p[i]
        a1 += UT[j, i + 1] * p[i + 1]
        a2 += UT[j, i + 2] * p[i + 2]
        a3 += UT[j, i + 3] * p[i + 3]
    for i in range(whole, p.size):
        a0 += UT[j, i] * p[i]
    return (a0 + a1) + (a2 + a3)


@njit(**_HOT)
def exp_into(x, out):
    """``out[i] = exp(x[i])`` with the kernels' exponential (for tests)."""
    for i in range(x.size):
        out[i] = _exp_in_range(x[i])
    for i in range(x.size):
        if not _in_exp_range(x[i]):
            out[i] = np.exp(x[i])


@njit(cache=True, **_HOT)
def _full_batch_steps(problem, rule, state, t0, t1):
    """``run_steps`` for full-batch rules: the hot loop of GD, written out in one body.

    The gradient ``-sum_k c_k (-l'(u_k . w)) u_k`` over the distinct rows is inlined here
    (a helper taking arrays would pay reference counting on every step), and plain GD
    updates in place without dispatch.
    """
    UT, c, loss_id, loss_param = problem.UT, problem.counts, problem.loss_id, problem.loss_param
    w, m, v = state.w, state.m, state.v
    plain, eta = rule.kind == GD_KIND, rule.eta
    d, K = UT.shape
    u = np.empty(K)
    p = np.empty(K)
    g = np.empty(d)
    for t in range(t0, t1):
        for i in range(K):
            u[i] = 0.0
        for j in range(d):
            wj = w[j]
            for i in range(K):
                u[i] += UT[j, i] * wj
        if loss_id == 0:  # the logistic without dispatch
            _logistic_weights(u, c, p)
        else:
            for i in range(K):
                p[i] = c[i] * neg_dloss(u[i], loss_id, loss_param)
        s = 0.0
        for j in range(d):
            acc = _dot_rows(UT, j, p)
            g[j] = -acc
            s += acc
        if not np.isfinite(s):
            return t, 1
        if plain:
            for j in range(d):
                w[j] -= eta * g[j]
        else:
            apply_update(rule, w, g, m, v, t)
        if not _finite_norm(w):
            return t, 1
    return t1, 0


@njit(cache=True, **_HOT)
def _logistic_gd_steps(problem, w, eta, t0, t1):
    """``run_steps`` for plain GD on the logistic loss (the JMLR figures' case), alone.

    The same arithmetic as :func:`_full_batch_steps` with its branches removed, so that
    the compiler keeps the whole step in registers.
    """
    UT, c = problem.UT, problem.counts
    d, K = UT.shape
    u = np.empty(K)
    p = np.empty(K)
    g = np.empty(d)
    for t in range(t0, t1):
        w0 = w[0]
        for i in range(K):
            u[i] = UT[0, i] * w0
        for j in range(1, d):
            wj = w[j]
            for i in range(K):
                u[i] += UT[j, i] * wj
        _logistic_weights(u, c, p)
        s = 0.0
        for j in range(d):
            acc = _dot_rows(UT, j, p)
            g[j] = acc  # minus the gradient
            s += acc
        if not np.isfinite(s):  # stop before the update: the weights stay finite
            return t, 1
        s = 0.0
        for j in range(d):
            w[j] += eta * g[j]
            s += w[j] * w[j]
        if not np.isfinite(s):  # also a norm that overflows
            return t, 1
    return t1, 0


@njit(cache=True)
def _minibatch_steps(problem, rule, state, t0, t1, seed):
    """``run_steps`` for SGD: a minibatch drawn with numba's generator seeded by ``seed``."""
    Z, loss_id, loss_param = problem.Z, problem.loss_id, problem.loss_param
    w, m, v, perm, pos = state
    N = Z.shape[0]
    g = np.empty(w.size)
    idx = np.arange(N)
    np.random.seed(seed)
    for t in range(t0, t1):
        nb = _draw_batch(rule, perm, pos, idx, N)
        _batch_gradient(Z, loss_id, loss_param, w, g, idx, nb)
        if not _finite(g):
            return t, 1
        apply_update(rule, w, g, m, v, t)
        if not _finite_norm(w):
            return t, 1
    return t1, 0


@njit(cache=True)
def _run_schedule(problem, rule, state, schedule, seeds, snapshots):
    """:func:`run_schedule` in one compiled call."""
    t = 0
    for k in range(schedule.size):
        if rule.batch < problem.Z.shape[0]:
            t, status = _minibatch_steps(problem, rule, state, t, schedule[k], seeds[k])
        elif rule.kind == GD_KIND and problem.loss_id == 0:
            t, status = _logistic_gd_steps(problem, state.w, rule.eta, t, schedule[k])
        else:
            t, status = _full_batch_steps(problem, rule, state, t, schedule[k])
        if status:
            return k, status, t
        snapshots[k, :] = state.w
    return schedule.size, 0, t


def run_schedule(
    problem: Problem, rule: Rule, state: State, schedule: np.ndarray, seeds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Run to each recording time of ``schedule`` in one compiled call; keep the weights.

    The same steps as :func:`run_steps` called once per recording time (segment ``k`` seeds
    its minibatch sampler with ``seeds[k]``), without a return to Python between records.

    Returns
    -------
    times, weights : numpy.ndarray
        The recording times reached and the weights there, shape ``(n,)`` and ``(n, d)``.
    status : int
        1 when the run diverged (after the last recorded time), else 0.
    steps : int
        Steps reached.
    """
    schedule = np.ascontiguousarray(schedule, dtype=np.int64)
    seeds = np.ascontiguousarray(seeds, dtype=np.int64)
    snapshots = np.empty((schedule.size, state.w.size))
    n, status, t = _run_schedule(problem, rule, state, schedule, seeds, snapshots)
    return schedule[:n], snapshots[:n], int(status), int(t)


def run_steps(
    problem: Problem, rule: Rule, state: State, t0: int, t1: int, seed: int
) -> tuple[int, int]:
    """Run steps ``t0 .. t1-1`` in place; return ``(steps reached, status)`` (1 = diverged).

    ``seed`` seeds the minibatch sampler (unused for full-batch rules). A non-finite
    gradient stops before the update (the weights stay finite); non-finite weights stop
    after it.
    """
    if rule.batch < problem.Z.shape[0]:
        return _minibatch_steps(problem, rule, state, t0, t1, seed)
    if rule.kind == GD_KIND and problem.loss_id == 0:
        return _logistic_gd_steps(problem, state.w, rule.eta, t0, t1)
    return _full_batch_steps(problem, rule, state, t0, t1)
