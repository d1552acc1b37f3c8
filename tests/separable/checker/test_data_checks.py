"""Data and step checks, and the choice of the applicable result."""

from __future__ import annotations

import numpy as np
import pytest

from separable.checker import Regime, Verdict, check
from separable.data import fig1


def test_non_separable_data_fail_a1_with_a_gordan_certificate():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    rep = check("logistic", X, None, eta=0.1)  # folded samples: z1 + z2 = 0
    item = rep.item("A1 separable")
    assert item.verdict is Verdict.FAILS
    lam = np.asarray(item.values["lam"])
    assert np.all(lam >= 0) and lam.sum() == pytest.approx(1.0)
    assert np.abs(X.T @ lam).max() < 1e-9  # a convex combination of the folded samples is zero
    assert rep.regime is Regime.NONE and rep.conclusions == () and rep.exit_code == 3


def test_step_bound_is_two_over_beta_sigma_max_squared():
    ds = fig1()
    smax2 = np.linalg.svd(ds.X, compute_uv=False)[0] ** 2
    limit = 2.0 / (0.25 * smax2)
    below = check("logistic", ds.X, ds.y, eta=0.99 * limit, t_max=1e4)
    above = check("logistic", ds.X, ds.y, eta=1.01 * limit, t_max=1e4)
    assert below.data_checks.step_limit == pytest.approx(limit, rel=1e-12)
    assert below.item("step bound").verdict is Verdict.HOLDS and below.regime is Regime.THM4
    assert above.item("step bound").verdict is Verdict.FAILS and above.regime is Regime.NONE
    # the flow needs no step condition
    assert above.data_checks.flow_regime is Regime.THM4
    assert all(not it.guaranteed for it in above.conclusions if not it.name.endswith("[flow]"))


def test_exp_loss_step_follows_the_footnote():
    ds = fig1()
    w0 = np.array([0.3, -0.1])
    L0 = np.exp(-ds.Z @ w0).sum()
    limit = 1.0 / (L0 * np.max(np.sum(ds.X**2, axis=1)))
    rep = check("exp", ds.X, ds.y, eta=0.5 * limit, w0=w0, t_max=1e4)
    item = rep.item("step bound")
    assert item.verdict is Verdict.HOLDS and "footnote" in item.evidence
    assert rep.data_checks.step_limit == pytest.approx(limit, rel=1e-12)


def test_support_vectors_not_spanning_give_theorem_3_bounded():
    # w_hat = (1, 0, 0), support z1, z2 with alpha = 1/2 each, spanning only the first two axes
    Z = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [2.0, 0.0, 1.0], [2.5, 0.5, -1.0]])
    rep = check("logistic", Z, None, eta=0.1, t_max=1e5)
    assert rep.item("duals non-degenerate").verdict is Verdict.HOLDS
    assert rep.item("SVs span data").verdict is Verdict.FAILS
    assert rep.regime is Regime.THM3_BOUNDED and rep.ok, rep.table()
    assert not any(it.name.startswith("Thm 4") for it in rep.conclusions)  # no full w_tilde
    assert rep.item("P_S rho -> P_S w_tilde (derived; SVs do not span) [gd").guaranteed is False
    assert rep.item("Thm 3: ||w - w_hat log t|| = O(log log t) [gd").guaranteed is True


def test_a_loss_that_fails_a2_guarantees_nothing():
    ds = fig1()
    rep = check("max(0, 1-u)", ds.X, ds.y, eta=0.01, t_max=1e4)
    assert rep.regime is Regime.NONE and rep.data_checks.flow_regime is Regime.NONE
    assert all(not it.guaranteed for it in rep.conclusions)
    assert rep.exit_code == 3  # nothing guaranteed: not a vacuous pass


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"eta": 0.0}, ValueError, "eta"),
        ({"eta": -1.0}, ValueError, "eta"),
        ({"eta": True}, TypeError, "eta"),
        ({"eta": 0.1, "w0": [1.0]}, ValueError, "w0"),
        ({"eta": 0.1, "t_max": 10}, ValueError, "t_max"),
    ],
)
def test_bad_arguments_are_named(kwargs, exc, match):
    ds = fig1()
    with pytest.raises(exc, match=match):
        check("logistic", ds.X, ds.y, **kwargs)


def test_bad_losses_and_data_are_named():
    ds = fig1()
    with pytest.raises(ValueError, match="could not be parsed"):
        check("log(1+exp(-u)", ds.X, ds.y, eta=0.1)
    with pytest.raises(ValueError, match=r"the name 'x'"):
        check("log(1+exp(-x))", ds.X, ds.y, eta=0.1)
    X = ds.X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"X must be finite"):
        check("logistic", X, ds.y, eta=0.1)
