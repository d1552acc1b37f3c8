"""Hard-margin SVM: KKT to 1e-9, agreement with two independent solvers, certificates."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from sklearn.svm import LinearSVC

from separable.data import fig1, random_separable
from separable.svm import (
    NotSeparableError,
    hard_margin_svm,
    kkt_residuals,
    separability_certificate,
)
from separable.theory import which_theorem


@pytest.mark.parametrize(
    "seed,n,d,k", [(0, 40, 5, 5), (1, 40, 5, 3), (2, 60, 10, 10), (3, 25, 2, 2), (4, 30, 8, 1)]
)
def test_kkt_holds_and_matches_the_constructed_solution(seed, n, d, k):
    ds = random_separable(n, d, n_support=k, margin=0.5 + seed, seed=seed)
    res = hard_margin_svm(ds.X, ds.y)
    assert res.kkt.max <= 1e-9
    # independent check of the KKT conditions from the raw data
    Z = ds.y[:, None] * ds.X
    assert kkt_residuals(Z, res.w, res.alpha).max <= 1e-9
    np.testing.assert_allclose(res.w, ds.w_hat, rtol=0, atol=1e-9 * np.linalg.norm(ds.w_hat))
    np.testing.assert_allclose(res.alpha, ds.alpha, rtol=0, atol=1e-9 * ds.alpha.max())
    assert sorted(res.support) == sorted(np.flatnonzero(ds.alpha > 0))
    assert res.theta > 1 and res.degenerate.size == 0
    np.testing.assert_allclose(res.margin, 0.5 + seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_the_primal_solved_by_slsqp(seed):
    ds = random_separable(40, 5, n_support=4, seed=seed)
    Z = ds.Z
    res = hard_margin_svm(Z)
    primal = minimize(
        lambda w: 0.5 * w @ w,
        np.zeros(5),
        jac=lambda w: w,
        method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda w: Z @ w - 1, "jac": lambda w: Z}],
        options={"ftol": 1e-15, "maxiter": 500},
    )
    assert np.min(Z @ primal.x) >= 1 - 1e-9
    np.testing.assert_allclose(res.w, primal.x, rtol=0, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 5])
def test_agrees_with_sklearn_linear_svc(seed):
    ds = random_separable(40, 5, seed=seed)
    res = hard_margin_svm(ds.X, ds.y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svc = LinearSVC(loss="hinge", fit_intercept=False, C=1e4, tol=1e-8, max_iter=200_000).fit(
            ds.X, ds.y
        )
    np.testing.assert_allclose(svc.coef_[0], res.w, rtol=0, atol=1e-3)


def test_fig1_solution():
    res = hard_margin_svm(fig1().X, fig1().y)
    np.testing.assert_allclose(res.w, [0.5, 0.5], atol=1e-14)
    np.testing.assert_allclose(res.margin, np.sqrt(2))
    # identical folded support points share their dual equally: 1/8 each
    np.testing.assert_allclose(res.alpha[:4], 0.125, atol=1e-14)
    np.testing.assert_array_equal(res.support, [0, 1, 2, 3])


@st.composite
def separable_sets(draw):
    d = draw(st.integers(2, 6))
    n = draw(st.integers(d, 25))
    gamma = draw(st.floats(0.1, 5.0))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    V = rng.normal(0, draw(st.floats(0.1, 10.0)), (n, d))
    # every point has margin at least gamma along u: separable with margin >= gamma
    heights = gamma + rng.exponential(1.0, n)
    Z = V - np.outer(V @ u, u) + np.outer(heights, u)
    return Z, gamma, u


@settings(max_examples=40, deadline=None)
@given(separable_sets())
def test_hypothesis_kkt_on_sets_with_a_guaranteed_margin(data):
    Z, gamma, u = data
    res = hard_margin_svm(Z)
    assert res.kkt.primal <= 1e-9 and res.kkt.dual <= 1e-9
    assert res.kkt.stationarity <= 1e-9 * np.linalg.norm(res.w) + 1e-12
    assert res.kkt.complementarity <= 1e-9
    assert res.margin >= gamma * (1 - 1e-9)  # u itself separates with margin gamma
    cert = separability_certificate(Z)
    assert cert.separable and np.min(Z @ cert.w) >= 1 - 1e-7


def test_not_separable_raises_with_a_gordan_certificate():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = rng.choice([-1.0, 1.0], 30)
    with pytest.raises(NotSeparableError) as info:
        hard_margin_svm(X, y)
    cert = info.value.certificate
    assert not cert.separable and cert.w is None
    Z = y[:, None] * X
    assert cert.lam.min() >= 0 and abs(cert.lam.sum() - 1) < 1e-12
    assert np.max(np.abs(Z.T @ cert.lam)) < 1e-9  # a convex combination equal to zero
    assert isinstance(info.value, ValueError)


def test_xor_is_not_separable_and_a_zero_point_is_not_either():
    X = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    y = np.array([1, 1, -1, -1])
    with pytest.raises(NotSeparableError):
        hard_margin_svm(X, y)
    with pytest.raises(NotSeparableError):
        hard_margin_svm(np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_degenerate_support_vector_is_detected():
    # z2 lies on the margin of w_hat = (1, 0) but carries no dual weight
    Z = np.array([[1.0, 0.0], [1.0, 1.0], [3.0, -1.0]])
    res = hard_margin_svm(Z)
    np.testing.assert_allclose(res.w, [1.0, 0.0], atol=1e-12)
    np.testing.assert_array_equal(res.support, [0, 1])
    np.testing.assert_array_equal(res.degenerate, [1])
    assert which_theorem(Z) == "degenerate"


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="X must be finite"):
        hard_margin_svm(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        hard_margin_svm(np.ones((2, 2)), [1, -1, 1])
    with pytest.raises(ValueError, match="single class"):
        hard_margin_svm(np.ones((2, 2)), [1, 1])
    with pytest.raises(ValueError, match="tol must be"):
        hard_margin_svm(np.ones((2, 2)), tol=0.5)
