"""Multiclass: the reduced SVM against a direct solve, and cross-entropy GD converging to it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from separable.data import random_multiclass
from separable.multiclass import multiclass_svm, reduce, softmax_gd
from separable.svm import NotSeparableError


def test_multiclass_svm_matches_a_direct_primal_solve():
    ds = random_multiclass(6, 3, 3, seed=2)
    K, d = 3, 3
    res = multiclass_svm(ds.X, ds.y)
    cons = []
    for n in range(ds.X.shape[0]):
        for k in range(K):
            if k != ds.y[n]:
                cons.append(
                    {
                        "type": "ineq",
                        "fun": lambda w, n=n, k=k: (
                            (w.reshape(K, d)[ds.y[n]] - w.reshape(K, d)[k]) @ ds.X[n] - 1
                        ),
                    }
                )
    direct = minimize(
        lambda w: 0.5 * w @ w,
        np.zeros(K * d),
        jac=lambda w: w,
        method="SLSQP",
        constraints=cons,
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    np.testing.assert_allclose(res.W.ravel(), direct.x, atol=1e-7)
    assert res.binary.kkt.max < 1e-9
    # duals live on the (n, k != y_n) constraints only
    assert np.all(res.alpha[np.arange(len(ds.y)), ds.y] == 0)
    mask = np.ones_like(res.alpha, dtype=bool)
    mask[np.arange(len(ds.y)), ds.y] = False
    # stationarity: vec(W) = sum_{n, k != y_n} alpha_{n,k} (e_{y_n} - e_k) (x) x_n
    np.testing.assert_allclose(reduce(ds.X, ds.y).T @ res.alpha[mask], res.W.ravel(), atol=1e-12)


def test_softmax_gd_converges_to_the_multiclass_max_margin():
    ds = random_multiclass(8, 3, 3, seed=0)
    res = softmax_gd(ds.X, ds.y, 3, t_max=1e6)
    assert res.status == "finished"
    t = res.trace.t
    gaps = [res.trace.extras["angle_gap"][np.searchsorted(t, 10**k)] for k in (4, 5, 6)]
    assert gaps[-1] < 1e-2
    assert np.all(np.diff(gaps) < 0)
    # the loss decays like 1/t: t L(t) levels off
    tl = [10**k * res.trace.extras["loss"][np.searchsorted(t, 10**k)] for k in (5, 6)]
    assert tl[1] == pytest.approx(tl[0], rel=0.1)


def test_multiclass_bad_input():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(NotSeparableError):
        multiclass_svm(X, [0, 1, 1])  # the same point in two classes
    with pytest.raises(ValueError, match="y must hold labels in 0..1"):
        softmax_gd(X, [0, 1, 2], 2)
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        multiclass_svm(X, [0, 1])
    with pytest.raises(ValueError, match="single class"):
        multiclass_svm(X, [1, 1, 1], 2)
