"""Losses: sympy expressions against the stable numpy forms and the compiled derivative."""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp

from separable.losses import LOSSES, U, get_loss, neg_dloss, polynomial_tail

GRID = np.array([-40.0, -7.5, -1.0, -0.1, 0.0, 0.3, 2.0, 9.0, 35.0, 200.0])


def _mp(expr, u):
    """``expr(u)`` by mpmath at 300 digits (enough for log(1 + e^-200))."""
    f = sp.lambdify(U, expr, "mpmath")
    with mpmath.workdps(300):
        return float(f(mpmath.mpf(float(u))))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_numpy_forms_match_the_sympy_expression_at_300_digits(name):
    loss = LOSSES[name]
    d_expr = sp.diff(loss.expr, U)
    for u in GRID:
        v, d = _mp(loss.expr, u), _mp(d_expr, u)
        assert loss.value(u) == pytest.approx(v, rel=1e-12, abs=0)
        assert loss.derivative(u) == pytest.approx(d, rel=1e-12, abs=0)
        if d != 0:
            assert np.exp(loss.log_neg_derivative(u)) == pytest.approx(-d, rel=1e-12)
        assert -neg_dloss(float(u), loss.kernel_id, loss.param) == pytest.approx(
            d, rel=1e-12, abs=0
        )


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_assumption_a2_positive_decreasing_and_stable_far_out(name):
    loss = LOSSES[name]
    u = np.linspace(-20, 5, 2001)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, d = loss.value(u), loss.derivative(u)
        far = loss.log_neg_derivative(np.array([-1e4, 1e4]))
        right = loss.value(np.array([1e4]))
    assert np.all(v > 0) and np.all(d < 0) and np.all(np.diff(v) < 0)
    assert np.all(np.isfinite(far)) and np.all(np.isfinite(right)) and right[0] >= 0
    assert abs(d[0]) > 1e-3  # lim_{u -> -inf} l'(u) != 0
    if loss.name != "exp":  # exp(1e4) overflows by nature; the others grow at most like u^2
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert np.isfinite(loss.value(np.array([-1e4]))[0])


def test_tails():
    u = np.array([30.0, 60.0])
    # exponential: -l'(u) e^u -> 1
    np.testing.assert_allclose(-LOSSES["logistic"].derivative(u) * np.exp(u), 1.0, rtol=1e-12)
    # polynomial: l(u) (2u)^2 -> 1
    np.testing.assert_allclose(LOSSES["poly"].value(u) * (2 * u) ** 2, 1.0, rtol=1e-3)
    # super-exponential: log l(u) = -(u + softplus(u)^2) + O(l), i.e. ~ -(u + u^2)
    x = np.array([5.0, 20.0])
    np.testing.assert_allclose(
        np.log(LOSSES["superexp"].value(x)), -(x + np.log1p(np.exp(x)) ** 2), rtol=1e-12
    )


def test_smoothness_constants():
    l2 = sp.diff(LOSSES["logistic"].expr, U, 2)
    assert sp.simplify(l2.subs(U, 0)) == sp.Rational(1, 4)
    assert LOSSES["logistic"].beta == 0.25
    assert LOSSES["exp"].beta is None
    assert LOSSES["poly"].beta == pytest.approx(8.0, rel=1e-3)  # l'' -> 8 as u -> -inf
    assert 0 < LOSSES["superexp"].beta < 1


def test_get_loss_from_a_sympy_expression_and_errors():
    u = sp.Symbol("u")
    loss = get_loss(sp.log(1 + sp.exp(-u)), name="mylogistic")
    x = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(loss.value(x), LOSSES["logistic"].value(x), rtol=1e-13)
    np.testing.assert_allclose(loss.derivative(x), LOSSES["logistic"].derivative(x), rtol=1e-13)
    assert loss.kernel_id == -1 and loss.name == "mylogistic"
    assert get_loss("exp") is LOSSES["exp"]
    with pytest.raises(ValueError, match="'hinge' is not a known loss"):
        get_loss("hinge")
    with pytest.raises(ValueError, match="single symbol u"):
        get_loss(sp.exp(-sp.Symbol("v")) + sp.Symbol("u"))
    with pytest.raises(TypeError, match="name_or_expr"):
        get_loss(3)
    with pytest.raises(ValueError, match="k must be"):
        polynomial_tail(3.0)
