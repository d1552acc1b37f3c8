"""Overdamped Langevin: exact discrete-time moments, Kramers escape, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from diffusion.langevin import langevin, langevin_first_passage
from diffusion.theory import kramers_rate


def test_free_langevin_msd_is_2_d_t_times_t():
    temperature, dt, n_steps, n = 0.7, 0.01, 200, 4000
    res = langevin(None, np.zeros_like, np.zeros((n, 2)), temperature, dt, n_steps, seed=1)
    trace = res.trace()
    sq = np.sum(res.positions[-1] ** 2, axis=1)
    exact = 2 * 2 * temperature * dt * n_steps  # 2 d T t, exact for Euler-Maruyama without force
    assert abs(sq.mean() - exact) < 3 * sq.std(ddof=1) / np.sqrt(n)
    assert trace.t[0] == 0 and trace.distance[0] == 0.0


def test_euler_maruyama_harmonic_variance_is_exact():
    # x' = (1 - k dt) x + sqrt(2 T dt) xi has stationary variance 2 T / (k (2 - k dt))
    k, temperature, dt, n = 4.0, 1.3, 0.05, 20_000
    res = langevin(
        lambda x: 0.5 * k * x**2,
        lambda x: k * x,
        np.zeros(n),
        temperature,
        dt,
        200,
        seed=2,
        times=[200],
    )
    x = res.positions[-1]
    exact = 2 * temperature / (k * (2 - k * dt))
    # variance of a sample variance of Gaussian data: 2 var^2 / n
    assert abs(x.var() - exact) < 3 * exact * np.sqrt(2 / n)
    np.testing.assert_allclose(res.energy[-1], 0.5 * k * x**2)


def _piecewise_harmonic(kappa: float, barrier: float):
    """A harmonic well at 0 and a harmonic (inverted) barrier at a, joined smoothly at a/2."""
    a = np.sqrt(4 * barrier / kappa)

    def u(x):
        return np.where(x < a / 2, 0.5 * kappa * x**2, barrier - 0.5 * kappa * (x - a) ** 2)

    def grad(x):
        return np.where(x < a / 2, kappa * x, -kappa * (x - a))

    return a, u, grad


def test_kramers_escape_over_a_barrier_of_5_t():
    temperature, barrier, kappa, dt = 1.0, 5.0, 20.0, 2e-3
    a, u, grad = _piecewise_harmonic(kappa, barrier)
    kramers = kramers_rate(barrier, kappa, -kappa, temperature).rate
    target = 1.5 * a  # past the top, where the walker does not come back
    fp = langevin_first_passage(
        grad, 0.0, target, temperature, dt, 2000, int(2 / kramers / dt), seed=3
    )
    rate, se = fp.rate()
    assert abs(rate / kramers - 1) < 0.10
    # the exact mean first-passage time (double quadrature) agrees with the escape rate
    inner = lambda y: integrate.quad(lambda z: np.exp(-u(z) / temperature), -3, y, points=[0.0])[0]  # noqa: E731
    exact_mfpt = (
        integrate.quad(
            lambda y: np.exp(u(y) / temperature) * inner(y),
            0.0,
            target,
            points=[a / 2, a],
            limit=200,
        )[0]
        / temperature
    )
    assert abs(1 / exact_mfpt - rate) < 3 * se + 0.02 * rate  # 2 %: time-step and transient bias


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"dt": 0.0}, "dt"),
        ({"n_steps": 0}, "n_steps"),
        ({"x0": [np.nan]}, "x0"),
        ({"times": [0, 20]}, "times"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = {
        "potential_fn": None,
        "grad_fn": np.zeros_like,
        "x0": np.zeros(3),
        "temperature": 1.0,
        "dt": 0.1,
        "n_steps": 10,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        langevin(**args)


def test_first_passage_bad_input():
    with pytest.raises(ValueError, match="target"):
        langevin_first_passage(np.zeros_like, 1.0, 1.0, 1.0, 0.1, 10, 10)
    with pytest.raises(ValueError, match="temperature"):
        langevin_first_passage(np.zeros_like, 0.0, 1.0, -1.0, 0.1, 10, 10)


def test_counts_follow_the_shared_validation_contract():
    """A float or bool count is a TypeError (a ValueError before the shared checks); a string
    start is no longer read as a number."""
    with pytest.raises(TypeError, match="n_steps must be an integer, got float"):
        langevin(None, np.zeros_like, np.zeros(3), 1.0, 0.1, 10.0)
    with pytest.raises(TypeError, match="chunk must be an integer, got bool"):
        langevin_first_passage(np.zeros_like, 0.0, 1.0, 1.0, 0.1, 10, 10, chunk=True)
    with pytest.raises(TypeError, match="x0 must be a real number, got str"):
        langevin_first_passage(np.zeros_like, "0", 1.0, 1.0, 0.1, 10, 10)
