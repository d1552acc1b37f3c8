"""Log-time gradient flow against exact solutions; Theorem 4 predictions against the flow."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from separable.data import fig1, random_separable
from separable.flow import gradient_flow
from separable.theory import (
    exp_flow_orthogonal,
    logistic_flow_single,
    predict,
    solve_u_plus_exp_u,
    w_tilde,
)

LOG_T = np.log([1.0, 1e3, 1e10, 1e25, 1e50])


def _rel(a, b):
    return np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1))


def test_exp_single_point_closed_form_solves_the_ode():
    t, a, b, c, d = sp.symbols("t a b c d", positive=True)
    x = sp.Matrix([a, b])
    w0 = sp.Matrix([c, d])
    r2 = a**2 + b**2
    w = w0 + x / r2 * sp.log(1 + r2 * sp.exp(-(x.T * w0)[0]) * t)
    margin = sp.simplify((x.T * w)[0])  # log(||x||^2 t + e^{x.w0})
    residual = (w.diff(t) - x * sp.exp(-margin)).applyfunc(sp.simplify)
    assert residual == sp.zeros(2, 1)


@pytest.mark.parametrize(
    "Z,w0",
    [
        (np.array([[0.7, -1.3]]), np.array([0.3, 0.5])),
        (np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.5]]), np.array([0.3, -0.5, 1.2])),
        (np.array([[3.0, 4.0, 0.0], [-4.0, 3.0, 0.0]]), np.array([-1.0, 2.0, 0.7])),
    ],
)
def test_exp_flow_matches_the_exact_orthogonal_solution(Z, w0):
    f = gradient_flow(Z, loss="exp", w0=w0, log_t=LOG_T, svm=False)
    assert _rel(f.w, exp_flow_orthogonal(Z, w0, np.exp(LOG_T))) <= 1e-8


@pytest.mark.parametrize("x,w0", [([0.7, -1.3], [0.3, 0.5]), ([2.0, 1.0], [-3.0, 0.0])])
def test_logistic_flow_matches_the_lambert_w_solution(x, w0):
    f = gradient_flow(np.array([x]), loss="logistic", w0=w0, log_t=LOG_T, svm=False)
    assert _rel(f.w, logistic_flow_single(x, w0, np.exp(LOG_T))) <= 1e-8


def test_lambert_w_root_by_independent_bisection():
    K = np.array([0.5, 3.0, 80.0, 699.0, 701.0, 1e6, 1e40])
    u = solve_u_plus_exp_u(K)
    lo, hi = np.full(K.size, -5.0), np.log(K) + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        low = mid + np.exp(mid) < K
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    np.testing.assert_allclose(u, 0.5 * (lo + hi), rtol=1e-14)


def test_fig1_predictions():
    ds = fig1()
    eta = 0.01
    p = predict(ds.X, ds.y, eta=eta)
    # w_tilde = (1/2) log(8 eta) (1, 1): parallel to w_hat
    np.testing.assert_allclose(p.w_tilde, 0.5 * np.log(8 * eta) * np.ones(2), rtol=1e-12)
    assert p.direction_const == pytest.approx(0.0, abs=1e-12)
    assert p.margin_const == pytest.approx(0.0, abs=1e-12)  # equal duals
    assert p.rate_support == pytest.approx(0.25, rel=1e-12)  # H has eigenvalues 1 and 1/4
    assert p.tL_limit == pytest.approx(0.5 / eta)
    assert p.theorem == "thm4"


def test_two_point_constants_from_the_notes():
    # x1 = (1, 0), x2 = (0, 2): margin and direction constants 0.2480 and 0.5545
    p = predict(np.array([[1.0, 0.0], [0.0, 2.0]]), eta=1.0)
    assert p.margin_const == pytest.approx(0.2480, abs=1e-4)
    assert p.direction_const == pytest.approx(0.5545, abs=1e-4)


def test_flow_to_1e100_reaches_theorem_4_constants_on_a_random_set():
    """At t = 1e100 the O(1/log t) corrections are below 2%: the constants are reached."""
    ds = random_separable(40, 5, seed=0)
    f = gradient_flow(ds.X, ds.y, loss="logistic", t_max=1e100)
    p = predict(ds.X, ds.y, eta=1.0)  # the flow is GD with eta -> 0 in time t = eta * steps
    L = f.log_t[-1]
    m = {k: v[-1] for k, v in f.measures.items()}
    np.testing.assert_allclose(m["rho"], p.w_tilde, atol=1e-8)
    assert np.exp(L) * m["loss"] == pytest.approx(p.tL_limit, rel=1e-8)
    assert L * m["direction_gap"] == pytest.approx(p.direction_const, rel=0.05)
    assert L * m["margin_gap"] == pytest.approx(p.margin_const, rel=0.05)
    assert L**2 * m["angle_gap"] == pytest.approx(p.angle_const, rel=0.05)
    # and the finite-t asymptote w_hat log t + w_tilde is exact to all orders
    asym = p.gaps_at(L)
    assert m["direction_gap"] == pytest.approx(asym["direction_gap"][0], rel=1e-6)
    assert m["margin_gap"] == pytest.approx(asym["margin_gap"][0], rel=1e-6)


def test_polynomial_tail_flow_settles_away_from_the_max_margin():
    ds = fig1()
    poly = gradient_flow(ds.X, ds.y, loss="poly", log_t=np.log([1e6, 1e50, 1e100]))
    logi = gradient_flow(ds.X, ds.y, loss="logistic", log_t=np.log([1e6, 1e50, 1e100]))
    a_poly, a_logi = poly.measures["angle_gap"], logi.measures["angle_gap"]
    assert a_logi[-1] < 1e-6  # exponential tail: converges to the max margin
    assert a_poly[-1] > 1e-3  # polynomial tail: a different limit direction ...
    assert a_poly[-1] == pytest.approx(a_poly[-2], rel=1e-3)  # ... already reached


def test_degenerate_data_has_no_w_tilde():
    Z = np.array([[1.0, 0.0], [1.0, 1.0], [3.0, -1.0]])
    with pytest.raises(ValueError, match="degenerate"):
        w_tilde(Z)
    p = predict(Z)
    assert p.theorem == "degenerate" and p.w_tilde is None
    assert p.as_dict()["direction_const"] is None


def test_flow_input_validation():
    with pytest.raises(ValueError, match="t_max must be a finite number > 1"):
        gradient_flow(np.eye(2), t_max=0.5)
    with pytest.raises(ValueError, match="log_t must be"):
        gradient_flow(np.eye(2), log_t=[3.0, 1.0])
    with pytest.raises(ValueError, match="w0 must be"):
        gradient_flow(np.eye(2), w0=[1.0, 2.0, 3.0])
