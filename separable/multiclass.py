"""K-class separable data: softmax cross-entropy GD and the multiclass max margin (JMLR Thm 7).

The multiclass hard-margin problem ``argmin sum_k ||w_k||^2  s.t.
(w_{y_n} - w_k) . x_n >= 1  (k != y_n)`` is the binary homogeneous problem on the reduced
points ``x~_{n,k} = (e_{y_n} - e_k) (x) x_n`` in ``R^{K d}``, solved by
:func:`separable.svm.hard_margin_svm`; the weights are ``vec(W)`` with ``W`` of shape
``(K, d)``. GD on the cross-entropy runs in a compiled loop; its trace carries the same
measures as the binary runs, taken on ``vec(W)`` and the reduced points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from diffusion.metrics import Trace, log_schedule
from separable.data import MulticlassDataset
from separable.measures import gap_measures
from separable.svm import SVMResult, hard_margin_svm

__all__ = ["reduce", "MulticlassSVMResult", "multiclass_svm", "MulticlassResult", "softmax_gd"]


def _dataset(X: object, y: object, n_classes: int | None) -> MulticlassDataset:
    y_arr = np.asarray(y)
    K = int(np.max(y_arr)) + 1 if n_classes is None and y_arr.size else n_classes
    return MulticlassDataset(X, y_arr, K if K is not None else 0)


def reduce(X: object, y: object, n_classes: int | None = None) -> np.ndarray:
    """The reduced points ``x~_{n,k}``, shape ``(N (K-1), K d)``, ordered by n then k."""
    ds = _dataset(X, y, n_classes)
    N, d = ds.X.shape
    K = ds.n_classes
    rows = []
    for n in range(N):
        for k in range(K):
            if k == ds.y[n]:
                continue
            r = np.zeros((K, d))
            r[ds.y[n]] = ds.X[n]
            r[k] = -ds.X[n]
            rows.append(r.ravel())
    return np.asarray(rows)


@dataclass(frozen=True)
class MulticlassSVMResult:
    """The multiclass max-margin solution.

    Attributes
    ----------
    W : numpy.ndarray, shape (K, d)
    alpha : numpy.ndarray, shape (N, K)
        Duals of the constraints ``(n, k)``; zero at ``k = y_n``.
    margin : float
        ``1 / ||W||_F``.
    binary : SVMResult
        The reduced binary problem's solution.
    """

    W: np.ndarray
    alpha: np.ndarray
    margin: float
    binary: SVMResult


def multiclass_svm(X: object, y: object, n_classes: int | None = None) -> MulticlassSVMResult:
    """Solve the multiclass hard-margin problem of JMLR Theorem 7.

    Raises
    ------
    NotSeparableError
        If no ``W`` separates the classes through the origin.
    """
    ds = _dataset(X, y, n_classes)
    N, d = ds.X.shape
    K = ds.n_classes
    res = hard_margin_svm(reduce(ds.X, ds.y, K))
    alpha = np.zeros((N, K))
    mask = np.ones((N, K), dtype=bool)
    mask[np.arange(N), ds.y] = False
    alpha[mask] = res.alpha
    return MulticlassSVMResult(res.w.reshape(K, d), alpha, res.margin, res)


@numba.njit(cache=True)
def _softmax_steps(X, y, W, t0, t1, eta):
    """Cross-entropy GD steps ``t0 .. t1-1`` in place; returns (steps, status)."""
    N, d = X.shape
    K = W.shape[0]
    G = np.zeros((K, d))
    s = np.zeros(K)
    for t in range(t0, t1):
        G[:, :] = 0.0
        for n in range(N):
            smax = -np.inf
            for k in range(K):
                acc = 0.0
                for j in range(d):
                    acc += W[k, j] * X[n, j]
                s[k] = acc
                if acc > smax:
                    smax = acc
            tot = 0.0
            for k in range(K):
                s[k] = np.exp(s[k] - smax)
                tot += s[k]
            for k in range(K):
                c = s[k] / tot - (1.0 if k == y[n] else 0.0)
                for j in range(d):
                    G[k, j] += c * X[n, j]
        chk = 0.0
        for k in range(K):
            for j in range(d):
                W[k, j] -= eta * G[k, j]
                chk += W[k, j] * W[k, j]
        if not np.isfinite(chk):
            return t, 1
    return t1, 0


def _cross_entropy(X: np.ndarray, y: np.ndarray, Ws: np.ndarray) -> np.ndarray:
    logits = np.einsum("tkd,nd->tnk", Ws, X)
    m = logits.max(axis=2, keepdims=True)
    lse = m[..., 0] + np.log(np.exp(logits - m).sum(axis=2))
    correct = np.take_along_axis(logits, y[None, :, None], axis=2)[..., 0]
    return (lse - correct).sum(axis=1)


@dataclass(frozen=True)
class MulticlassResult:
    """A traced softmax cross-entropy GD run.

    Attributes
    ----------
    trace : diffusion.metrics.Trace
        ``distance = ||W(t) - W(0)||_F``; extras ``W`` (T, K, d), ``loss``, and the
        measures of :mod:`separable.measures` on ``vec(W)`` (``norm``, ``angle_gap``,
        ``direction_gap``, ``margin_gap``, ``rho``).
    W : numpy.ndarray, shape (K, d)
    eta : float
    svm : MulticlassSVMResult
    status : str
        ``"finished"`` or ``"diverged"``.
    """

    trace: Trace
    W: np.ndarray
    eta: float
    svm: MulticlassSVMResult
    status: str


def softmax_gd(
    X: object,
    y: object,
    n_classes: int | None = None,
    *,
    eta: float | None = None,
    t_max: float = 1e5,
    W0: object | None = None,
    per_decade: int = 20,
) -> MulticlassResult:
    """GD on the summed softmax cross-entropy, traced against the multiclass max margin.

    Parameters
    ----------
    X : array_like, shape (N, d)
    y : array_like of int, shape (N,)
        Classes ``0 .. K-1``.
    n_classes : int, optional
        ``K`` (default ``max(y) + 1``).
    eta : float, optional
        Step; default ``1 / sigma_max(X)^2`` (the cross-entropy is
        ``sigma_max^2 / 2``-smooth, so anything below ``4 / sigma_max^2`` is stable).
    t_max : float
        Steps.
    W0 : array_like, shape (K, d), optional
    per_decade : int

    Raises
    ------
    NotSeparableError
        If the classes are not separable through the origin.
    """
    ds = _dataset(X, y, n_classes)
    Xa, ya, K = ds.X, ds.y, ds.n_classes
    d = Xa.shape[1]
    svm = multiclass_svm(Xa, ya, K)
    if eta is None:
        eta = 1.0 / float(np.linalg.norm(Xa, 2)) ** 2
    if not (isinstance(eta, (int, float, np.floating)) and math.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be a positive finite number, got {eta!r}")
    W = np.zeros((K, d)) if W0 is None else np.array(W0, dtype=float).reshape(K, d)
    if not np.all(np.isfinite(W)):
        raise ValueError("W0 must be finite")
    W_start = W.copy()
    ts, Ws = [], []
    t, status = 0, 0
    for target in log_schedule(t_max, per_decade, start=1):
        t, status = _softmax_steps(Xa, ya, W, t, int(target), float(eta))
        if status:
            break
        ts.append(t)
        Ws.append(W.copy())
    T = np.asarray(ts, dtype=np.int64)
    Wt = np.asarray(Ws)
    flat = Wt.reshape(len(T), -1)
    extras = gap_measures(reduce(Xa, ya, K), flat, svm.W.ravel(), np.log(T.astype(float)))
    extras["loss"] = _cross_entropy(Xa, ya, Wt)
    extras["W"] = Wt
    trace = Trace(T, np.linalg.norm(flat - W_start.ravel(), axis=1), extras)
    return MulticlassResult(trace, W.copy(), float(eta), svm, "diverged" if status else "finished")
