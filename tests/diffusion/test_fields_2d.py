"""Walkers on Gaussian random fields in d = 2.

Short-range field: diffusion is normal at long times, with a constant below the free one and
inside Wiener's bounds. Fractional field (increments ~ r^H): trapping; the growth law is
measured (the d >= 2 theory is not exact) and must be clearly slower than diffusion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from diffusion import theory
from diffusion.metrics import fit_growth, fit_law, log_schedule
from diffusion.potentials import gaussian_field
from diffusion.walk import simulate_walkers

HALF = 700
T_MAX = 30_000
N_WALKERS = 400


def _run(kind: str, half: int = HALF, **kwargs):
    pot = gaussian_field((2 * half + 1,) * 2, kind, sigma=1.0, seed=1, **kwargs)
    trace = simulate_walkers(pot, 1.0, T_MAX, N_WALKERS, times=log_schedule(T_MAX, 10), seed=2)
    return pot, trace


@pytest.fixture(scope="module")
def short_range():
    return _run("short", correlation_length=2.0)


@pytest.fixture(scope="module")
def fractional():
    return _run("fractional", half=350, hurst=0.5)  # trapped walkers stay within ~200 sites


def test_short_range_field_gives_normal_diffusion_with_reduced_constant(short_range):
    pot, trace = short_range
    t, msd = trace.t.astype(float), trace.extras["msd"]
    late = t >= 3000
    # D from the late slope of the MSD (MSD = 2 d D t, d = 2); the free walker has D = 1/4
    slope, _ = np.polyfit(t[late], msd[late], 1)
    d_eff = slope / 4
    lower, upper = theory.wiener_bounds(pot.values, 1.0)
    assert lower < d_eff < upper < 0.25
    # normal diffusion: rms ~ t^(1/2) at long times
    nu = fit_law(trace, "power", t_min=3000).params["nu"]
    assert nu == pytest.approx(0.5, abs=0.05)


def test_fractional_field_traps(fractional):
    _, trace = fractional
    growth = fit_growth(trace, t_min=100)
    assert growth.best.law != "log"  # barriers grow with distance like r^H, not bounded
    nu = fit_law(trace, "power", t_min=3000).params["nu"]
    assert nu < 0.4  # subdiffusive at long times
    assert np.all(
        np.diff(trace.distance[trace.t >= 100]) > -0.05 * trace.distance[-1]
    )  # still spreading


def test_wiener_bounds_flat_and_one_dimensional():
    for d in (1, 2, 3):
        lo, hi = theory.wiener_bounds(np.zeros((5,) * d))
        assert lo == pytest.approx(1 / (2 * d)) and hi == pytest.approx(1 / (2 * d))
    u = np.random.default_rng(0).uniform(0, 2, 5000)
    lo, _ = theory.wiener_bounds(u, 0.7)
    # in 1D the series bound is the exact D_eff (open chain vs ring: differs by O(1/n))
    assert lo == pytest.approx(theory.effective_diffusion(u, 0.7), rel=5e-3)
    with pytest.raises(ValueError, match="dim"):
        theory.wiener_bounds(np.zeros((2, 2, 2, 2)))
    assert math.isfinite(theory.wiener_bounds(np.full((3, 3), 500.0), 1.0)[0])  # no overflow
