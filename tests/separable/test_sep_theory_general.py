"""General tail constants, non-spanning support vectors and non-unique duals: the
predictions of :mod:`separable.theory` against the gradient flow, GD and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from separable.data import random_separable
from separable.flow import gradient_flow
from separable.losses import TailForm, U, from_expression
from separable.optim import GD, optimize
from separable.theory import predict, w_tilde

ORTHO = np.array([[1.0, 0.0], [0.0, 2.0]])  # alpha_n = 1/||z_n||^2, lambda_min(H) = 1


def _w_tilde_orthogonal(Z, eta, c, a):
    """Independent: for orthogonal z_n, z_n . w_tilde = log(eta c a ||z_n||^2) / a."""
    r2 = np.sum(Z * Z, axis=1)
    return (np.log(eta * c * a * r2) / (a * r2)) @ Z


@pytest.mark.parametrize("c,a", [(3.0, 1.0), (2.0, 2.0), (1.0, 0.5)])
def test_flow_of_a_scaled_exp_loss_matches_its_closed_form_and_the_prediction(c, a):
    """l = (c/a) e^{-a u} on orthogonal points: u_n(t) = log(1 + a c ||z_n||^2 t) / a exactly.

    Catches: a tail rate ``a`` dropped from the asymptote (w_hat log t instead of
    w_hat log t / a), or ``c`` dropped from w_tilde (an offset log(c)/a per direction).
    """
    loss = from_expression(
        sp.Rational(1) * sp.nsimplify(c / a) * sp.exp(-sp.nsimplify(a) * U), tail=TailForm(c, a)
    )
    p = predict(ORTHO, eta=1.0, c=c, a=a)
    log_t = np.log([1e3, 1e20, 1e100])
    f = gradient_flow(ORTHO, loss=loss, log_t=log_t, drift=p.w_hat / a)
    r2 = np.sum(ORTHO * ORTHO, axis=1)
    u = np.log1p(a * c * r2[None, :] * np.exp(log_t)[:, None]) / a
    np.testing.assert_allclose(f.w, (u / r2) @ ORTHO, rtol=1e-9)
    np.testing.assert_allclose(p.w_tilde, _w_tilde_orthogonal(ORTHO, 1.0, c, a), rtol=1e-12)
    np.testing.assert_allclose(f.rho[-1], p.w_tilde, atol=1e-9)
    assert math.exp(log_t[-1]) * f.measures["loss"][-1] == pytest.approx(p.tL_limit, rel=1e-9)
    assert p.tL_limit == pytest.approx(float(p.w_hat @ p.w_hat) / a**2, rel=1e-12)


@pytest.mark.parametrize(
    "text,c,a,mu", [("2*log(1+exp(-u))", 2.0, 1.0, 1.0), ("log(1+exp(-2*u))", 2.0, 2.0, 2.0)]
)
def test_gd_and_flow_follow_the_general_tail_prediction(text, c, a, mu):
    """The issue's two losses: GD (eta = 0.1, 4000 steps) and the flow (t = e^230) reach
    w_tilde with eta c a e^{-a z_n . w_tilde} = alpha_n and t L -> ||w_hat||^2/(eta a^2).

    Catches: predictions that assume c = a = 1 (w_tilde off by log(2)/||z_n|| per direction,
    t L off by a^2).
    """
    expr = sp.log(1 + sp.exp(-U)) * 2 if a == 1.0 else sp.log(1 + sp.exp(-2 * U))
    loss = from_expression(expr, name=text, tail=TailForm(c, a))
    eta, T = 0.1, 4000
    p = predict(ORTHO, eta=eta, c=c, a=a, mu=mu)
    np.testing.assert_allclose(p.w_tilde, _w_tilde_orthogonal(ORTHO, eta, c, a), rtol=1e-12)
    run = optimize(ORTHO, rule=GD(eta), loss=loss, t_max=T, per_decade=5)
    rho = run.trace.extras["w"][-1] - p.w_hat / a * math.log(T)
    # transient: rate min(lambda_min(H) = 1, mu/a) >= 1 plus the O(log t / t) of the step
    assert np.linalg.norm(rho - p.w_tilde) <= 20 * math.log(T) / T
    assert T * run.trace.extras["loss"][-1] == pytest.approx(p.tL_limit, rel=20 * math.log(T) / T)
    pf = predict(ORTHO, eta=1.0, c=c, a=a, mu=mu)
    f = gradient_flow(ORTHO, loss=loss, t_max=math.exp(230), per_decade=1, drift=pf.w_hat / a)
    np.testing.assert_allclose(f.rho[-1], pf.w_tilde, atol=1e-9)
    assert math.exp(230) * f.measures["loss"][-1] == pytest.approx(pf.tL_limit, rel=1e-9)


def test_support_vectors_not_spanning_only_the_in_span_part_is_predicted():
    """The in-span part of rho converges to P_S w_tilde (from the construction's duals);
    the rest is pushed by the other points and is not the start's, so no w_tilde is given.

    Catches: the old rule 'out-of-span part of w_tilde = that of w0' (off by ~0.9 here).
    """
    ds = random_separable(30, 6, n_support=3, seed=2)
    Z, w0 = ds.Z, np.arange(6.0) - 2.5
    p = predict(Z, eta=1.0, w0=w0)
    assert p.theorem == "thm3" and p.w_tilde is None
    with pytest.raises(ValueError, match="do not span"):
        w_tilde(Z, w0=w0)
    S = np.flatnonzero(ds.alpha > 0)
    in_span = np.linalg.lstsq(Z[S], np.log(1.0 / ds.alpha[S]), rcond=None)[0]
    np.testing.assert_allclose(p.w_tilde_span, in_span, atol=1e-10)
    f = gradient_flow(Z, loss="logistic", w0=w0, log_t=np.log([1e2, 1e50, 1e100]), drift=p.w_hat)
    P = p.span_basis.T @ p.span_basis
    np.testing.assert_allclose(f.rho[-1] @ P, in_span, atol=1e-9)
    out_start, out_end = w0 - P @ w0, f.rho[-1] - P @ f.rho[-1]
    assert np.linalg.norm(out_end - out_start) > 0.1  # the old prediction is wrong
    assert np.linalg.norm(f.rho[-1] - f.rho[-2]) < 1e-9  # ... yet rho stays bounded


def test_asymmetric_ties_give_w_tilde_from_the_convex_minimisation():
    """Three support vectors in the plane (duals not unique): the flow converges to the
    minimiser of sum_S e^{-z_n . w} + w_hat . w / eta, not to the least-squares solution
    with the SVM's min-norm duals.

    Catches: the least-squares w_tilde (0.026 away here) and duals that do not satisfy
    eta e^{-z_n . w_tilde} = alpha_n with sum alpha_n z_n = w_hat.
    """
    Z = np.array([[1.0, 1.0], [1.0, -1.0], [1.0, -2.0], [2.0, 0.5]])
    p = predict(Z, eta=1.0)
    S = p.support
    assert p.theorem == "thm4" and S.tolist() == [0, 1, 2]
    np.testing.assert_allclose(p.alpha[S], np.exp(-Z[S] @ p.w_tilde), rtol=1e-10)
    np.testing.assert_allclose(p.alpha[S] @ Z[S], p.w_hat, atol=1e-10)
    f = gradient_flow(Z, loss="exp", log_t=np.log([1e10, 1e100]), drift=p.w_hat)
    np.testing.assert_allclose(f.rho[-1], p.w_tilde, atol=1e-9)
    ls = np.linalg.lstsq(Z[S], -np.log(np.array([4, 2, 1]) / 7.0), rcond=None)[0]
    assert np.linalg.norm(ls - p.w_tilde) > 0.02


def test_squared_logistic_flow_does_not_stall_on_underflow():
    """l = log(1+e^-u)^2 (c = 2, a = 2): a plain lambdify makes l' exactly 0 above u ~ 37 and
    the flow stalls; the stable forms carry it to t = e^230 onto the predicted w_tilde.

    Catches: double-precision forms used where they underflow (the issue's t L = 0).
    """
    loss = from_expression(sp.log(1 + sp.exp(-U)) ** 2, tail=TailForm(2.0, 2.0))
    u = np.array([40.0, 100.0])  # -l' = 2 e^{-2u} (1 - 3 e^{-u}/2 + ...): below 1e-30 here
    np.testing.assert_allclose(loss.log_neg_derivative(u), math.log(2.0) - 2.0 * u, rtol=1e-12)
    p = predict(ORTHO, eta=1.0, c=2.0, a=2.0, mu=1.0)
    f = gradient_flow(ORTHO, loss=loss, log_t=np.log([1e20, 1e100]), drift=p.w_hat / 2.0)
    np.testing.assert_allclose(f.rho[-1], p.w_tilde, atol=1e-9)
    assert 1e100 * f.measures["loss"][-1] == pytest.approx(p.tL_limit, rel=1e-9)
