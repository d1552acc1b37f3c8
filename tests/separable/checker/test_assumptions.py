"""Symbolic loss assumptions (JMLR A2, A3): verdicts, exact constants and counterexamples."""

from __future__ import annotations

import math
import time

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from separable.checker import Verdict, check_loss, loss_expression
from separable.checker.assumptions import check_decreasing
from separable.checker.symbolic import U, guarded
from separable.checker.tail import tail_constants

u = U


def _report(text: str):
    return check_loss(loss_expression(text)[1])


@pytest.fixture(scope="module")
def logistic():
    return _report("log(1+exp(-u))")


def test_logistic_holds_with_exact_beta_and_tail_constants(logistic):
    assert logistic.holds, [(i.name, i.verdict, i.evidence) for i in logistic.items]
    # beta = sup |l''| is exactly 1/4 (l'' = s(1-s) with s the sigmoid: max 1/4 at u = 0)
    assert logistic.beta_exact and logistic.beta == sp.Rational(1, 4)
    grid = np.linspace(-30, 30, 600001)
    s = 1 / (1 + np.exp(-grid))
    assert np.max(s * (1 - s)) == pytest.approx(0.25, abs=1e-12)
    tail = logistic.tail
    assert (tail.a, tail.c, tail.mu_minus, tail.mu_plus) == (1, 1, 1, sp.oo)
    assert tail.attained is True
    # mu- = 1 really is admissible: -l' >= (1 - e^-u) e^-u for u > 0, and no mu > 1 is
    with mpmath.workdps(60):
        for x in map(mpmath.mpf, np.linspace(0.5, 40, 80)):
            f = mpmath.exp(-x) / (1 + mpmath.exp(-x))
            assert f >= (1 - mpmath.exp(-x)) * mpmath.exp(-x)
        x = mpmath.mpf(20)
        assert mpmath.exp(-x) / (1 + mpmath.exp(-x)) < (1 - mpmath.exp(-1.1 * x)) * mpmath.exp(-x)


def test_exponential_holds_through_the_step_footnote():
    rep = _report("exp(-u)")
    assert rep.holds
    assert rep.beta is None and rep.footnote_K == 1
    item = rep.item("beta-smooth")
    assert "no global beta" in item.evidence and "1/L(w0)" in item.evidence
    assert rep.tail.mu_plus == sp.oo and rep.tail.mu_minus == sp.oo  # -l' = e^-u exactly


def test_hinge_fails_differentiability_with_one_sided_derivatives():
    rep = _report("max(0, 1-u)")
    item = rep.item("differentiable")
    assert item.verdict is Verdict.FAILS and "kink at u = 1" in item.evidence
    cx = item.counterexample
    assert cx.point == 1.0
    left, right = cx.value
    h = 1e-7  # independent one-sided difference quotients of max(0, 1 - u)
    assert left == pytest.approx((max(0, 1 - 1.0) - max(0, 1 - (1 - h))) / h, abs=1e-6)
    assert right == pytest.approx(0.0, abs=1e-12)
    assert rep.item("beta-smooth").verdict is Verdict.FAILS
    assert not rep.holds


def test_squared_loss_fails_monotonicity_at_a_checked_point():
    rep = _report("(1-u)^2")
    item = rep.item("decreasing")
    assert item.verdict is Verdict.FAILS
    x = item.counterexample.point
    assert -2 * (1 - x) >= 0  # l'(x) = -2(1 - x) is not negative there
    assert item.counterexample.value == pytest.approx(-2 * (1 - x))
    assert rep.item("vanishes").verdict is Verdict.FAILS  # (1-u)^2 -> oo


@pytest.mark.parametrize("text, k", [("sqrt(1+u^2) - u", 2), ("poly", 3)])
def test_polynomial_tail_fails_only_the_exponential_tail(text, k):
    rep = _report(text)
    failing = [i.name for i in rep.items if i.verdict is not Verdict.HOLDS]
    assert failing == ["A3 exp tail"]
    tail = rep.item("exp tail")
    assert "polynomial tail" in tail.evidence and tail.values["poly_rate"] == str(k)
    # the counterexample: -l'(40) e^40 exceeds the bound 2 of the normalised tail (a = c = 1)
    expr = loss_expression(text)[1]
    f = sp.lambdify(u, -sp.diff(expr, u), "mpmath")
    assert float(f(40) * sp.exp(40)) == pytest.approx(tail.counterexample.value, rel=1e-9)
    assert tail.counterexample.value > 2


def test_non_tight_exponential_tail_fails_on_the_remainder():
    # -l' = e^-u (1 + r) with r ~ 1/u^2: a = c = 1, but r is not exponentially small
    loss = sp.exp(-u) * (1 + 1 / (1 + u**2))
    tail = tail_constants(sp.simplify(-sp.diff(loss, u)), 10.0)
    assert tail.verdict is Verdict.FAILS and "not exponentially small" in tail.evidence
    assert (tail.a, tail.c) == (1, 1)
    r20 = float(((-sp.diff(loss, u)) * sp.exp(u) - 1).subs(u, 20).evalf(30))
    assert tail.counterexample.value == pytest.approx(r20, rel=1e-9) and r20 > math.exp(-20)


def test_shifted_exponential_tail_constants():
    # l = 2 e^-u + e^-2u: -l' = 2 e^-u (1 + e^-u), so c = 2, a = 1, mu+ = 1 (attained), mu- free
    tail = tail_constants(sp.expand(-sp.diff(2 * sp.exp(-u) + sp.exp(-2 * u), u)), 10.0)
    assert tail.verdict is Verdict.HOLDS
    assert (tail.a, tail.c, tail.mu_plus, tail.mu_minus, tail.attained) == (1, 2, 1, sp.oo, True)


def test_a_singular_loss_fails_positivity_and_differentiability():
    rep = _report("1/u")
    assert rep.item("positive").verdict is Verdict.FAILS
    assert rep.item("positive").counterexample.value < 0
    assert rep.item("differentiable").verdict is Verdict.FAILS


def test_guard_turns_a_runaway_symbolic_step_into_a_reason():
    def runaway():
        while True:
            pass

    start = time.perf_counter()
    value, reason = guarded(runaway, 0.2)
    assert value is None and "timed out" in reason
    assert time.perf_counter() - start < 5


def test_loss_must_be_an_expression_in_u():
    with pytest.raises(ValueError, match="u only"):
        check_loss(sp.exp(-sp.Symbol("x")))
    with pytest.raises(TypeError, match="sympy expression"):
        check_loss("exp(-u)")


# ----------------------------------------------------------------------------- hypothesis
_BASES = [sp.exp(-u), sp.exp(-2 * u), sp.exp(-3 * u), sp.log(1 + sp.exp(-u)), u]
_coef = st.builds(sp.Rational, st.integers(-3, 3).filter(bool), st.integers(1, 2))
_piece = st.tuples(_coef, st.integers(0, len(_BASES) - 1))


@settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(_piece, min_size=1, max_size=3))
def test_monotonicity_verdict_agrees_with_dense_sampling(pieces):
    """Sums of monotone pieces with signed weights: decreasing or not, decided exactly.

    Every sign change of l' is a root z = e^-u of a polynomial with small rational
    coefficients, so it lies in |u| < 4 (Cauchy's bound), well inside the sampled [-10, 10].
    """
    expr = sum(c * _BASES[i] for c, i in pieces)
    grid = np.linspace(-10, 10, 40001)

    def sample(e):
        return np.broadcast_to(np.asarray(sp.lambdify(u, e, "numpy")(grid), float), grid.shape)

    d = sample(sp.diff(expr, u))
    size = sum(
        float(abs(c)) * np.abs(sample(sp.diff(_BASES[i], u))) for c, i in pieces
    )  # term scale
    top = float(np.max(d))
    rel = float(np.max(np.divide(d, size, out=np.zeros_like(d), where=size > 0)))
    assume(not (-1e-6 < rel < 0))  # l' nearly touches 0 from below: sampling cannot decide
    item = check_decreasing(expr, seconds=20)
    assert item.verdict is not Verdict.UNDETERMINED, item.evidence
    sampled_decreasing = top < 0
    event(f"decreasing: {sampled_decreasing}")
    assert (item.verdict is Verdict.HOLDS) == sampled_decreasing, (expr, item.evidence, top)
    if item.verdict is Verdict.FAILS:
        x = item.counterexample.point
        assert float(sp.diff(expr, u).subs(u, x).evalf(30)) >= -1e-12 * max(
            1.0, math.exp(3 * abs(x))
        )
