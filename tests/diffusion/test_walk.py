"""Lattice walkers against exact results: free diffusion, equilibrium, MFPT, D_eff, RWRE, edges."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from diffusion.potentials import Potential, bounded_potential, brownian_potential, rwre_environment
from diffusion.theory import effective_diffusion, metropolis_rates, mfpt, splitting_probability
from diffusion.walk import (
    EdgeReachedError,
    estimate_walk_seconds,
    final_positions,
    first_passage_times,
    metropolis_lattice,
    sample_equilibrium,
    simulate_rwre,
    simulate_walkers,
)
from diffusion.walk import _probabilities_to_thresholds as to_thresholds

TWO64 = 2**64


# ----------------------------------------------------------------------------- thresholds
@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6))
def test_thresholds_are_the_cumulative_probabilities_to_2_to_the_minus_64(raw):
    p = np.asarray(raw)
    if p.sum() > 1:
        p = p / p.sum()
    thr = [int(v) for v in to_thresholds(p[None, :])[0]]
    exact = 0
    for j, pj in enumerate(p):  # exact integer arithmetic, independent of numpy's uint64
        exact = min(
            exact + min(int(np.floor(pj * 2.0**64)) if pj < 1 else TWO64 - 1, TWO64 - 1), TWO64 - 1
        )
        assert abs(thr[j] - exact) <= j + 1
    assert all(a <= b for a, b in zip(thr[:-1], thr[1:], strict=True))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-8.0, 8.0), min_size=3, max_size=12), st.floats(0.2, 5.0))
def test_metropolis_hops_obey_detailed_balance(u, temperature):
    u = np.asarray(u)
    thr = metropolis_lattice(Potential(u), temperature).thresholds[0][1:-1]
    right = thr[:, 0].astype(float) / 2.0**64
    left = (thr[:, 1] - thr[:, 0]).astype(float) / 2.0**64  # difference in exact integers
    pi = np.exp(-(u - u.min()) / temperature)
    np.testing.assert_allclose(pi[:-1] * right[:-1], pi[1:] * left[1:], rtol=1e-9, atol=1e-18)
    np.testing.assert_allclose(
        right[:-1],
        0.5 * np.minimum(1.0, np.exp(-(u[1:] - u[:-1]) / temperature)),
        rtol=1e-12,
        atol=1e-18,
    )


# ----------------------------------------------------------------------------- free walkers
@pytest.mark.parametrize("shape", [(4001,), (301, 301), (61, 61, 61)])
def test_free_walker_msd_equals_t(shape):
    t_max = 100 if len(shape) == 3 else 1000
    n = 6000
    trace = simulate_walkers(Potential(np.zeros(shape)), 1.0, t_max, n, seed=7)
    pos = trace.extras["positions"]
    assert pos.shape == ((len(trace), n) if len(shape) == 1 else (len(trace), n, len(shape)))
    sq = (pos[-1].astype(float) ** 2).reshape(n, -1).sum(axis=1)
    # E x_t^2 = t exactly (one unit move per step); standard error from the sample
    assert abs(sq.mean() - t_max) < 3 * sq.std(ddof=1) / np.sqrt(n)
    assert trace.distance[-1] == pytest.approx(np.sqrt(sq.mean()))


# ----------------------------------------------------------------------------- equilibrium
@pytest.mark.parametrize("inner, t", [((10,), 10_000), ((6, 6), 4000), ((4, 4, 4), 3000)])
def test_walkers_relax_to_the_boltzmann_distribution(inner, t):
    temperature = 0.8
    rng = np.random.default_rng(11)
    values = np.full(tuple(n + 2 for n in inner), np.inf)  # a box of walls
    box = tuple(slice(1, -1) for _ in inner)
    values[box] = rng.uniform(0, 2.0, inner)
    pot = Potential(values, origin=tuple(1 for _ in inner))
    n = 20_000
    x = final_positions(pot, temperature, t, n, seed=3).reshape(n, -1)
    cells = np.ravel_multi_index(tuple(x.T), inner)
    observed = np.bincount(cells, minlength=int(np.prod(inner)))
    weights = np.exp(-values[box].ravel() / temperature)
    expected = n * weights / weights.sum()
    assert stats.chisquare(observed, expected).pvalue > 1e-3


# ----------------------------------------------------------------------------- exact chain results
def test_mean_first_passage_time_matches_the_exact_sum():
    temperature = 1.0
    u = np.random.default_rng(3).uniform(0, 3.0, 9)  # sites 0..8, reflecting at 0, absorbing at 8
    pot = Potential(np.concatenate([[np.inf], u]), origin=1)
    fp = first_passage_times(pot, temperature, 20_000, upper=8, seed=1)
    mean, se = fp.mean()
    exact = mfpt(*metropolis_rates(u, temperature))[0]
    assert abs(mean - exact) < 3 * se


def test_hop_probabilities_below_16_bits_are_exact():
    # one barrier of 10 T: hop probability exp(-10)/2 = 2.3e-5, between 2^-16 and 2^-15
    temperature, barrier = 1.0, 10.0
    pot = Potential([np.inf, 0.0, barrier], origin=1)
    fp = first_passage_times(pot, temperature, 3000, upper=1, seed=2)
    mean, se = fp.mean()
    exact = 2 * np.exp(barrier / temperature)  # geometric waiting time
    assert abs(mean - exact) < 3 * se  # a 16-bit threshold would give 65536 (+49 %)


def test_splitting_probability_matches_the_exact_formula():
    temperature = 1.0
    u = np.random.default_rng(5).uniform(0, 2.0, 9)
    start = 4
    fp = first_passage_times(
        Potential(u, origin=0), temperature, 20_000, upper=8, lower=0, start=start, seed=4
    )
    assert fp.n_censored == 0
    exact = splitting_probability(*metropolis_rates(u, temperature))[start]
    assert abs(fp.fraction_upper() - exact) < 3 * np.sqrt(exact * (1 - exact) / 20_000)


def test_effective_diffusion_on_a_bounded_random_potential():
    # one period of an i.i.d. bounded potential, tiled: the exact D_eff of the periodic chain
    temperature, period, tiles = 1.0, 40, 120
    cell = bounded_potential(period, 2.5, seed=8).values
    pot = Potential(np.tile(cell, tiles), origin=period * (tiles // 2))
    starts = sample_equilibrium(
        pot, temperature, 6000, seed=1, region=slice(pot.origin[0], pot.origin[0] + period)
    )
    t = 100_000
    trace = simulate_walkers(pot, temperature, t, starts.size, times=[t], start=starts, seed=9)
    sq = (trace.extras["positions"][0] - starts).astype(float) ** 2
    d_hat, se = sq.mean() / (2 * t), sq.std(ddof=1) / np.sqrt(sq.size) / (2 * t)
    exact = effective_diffusion(cell, temperature)
    assert abs(d_hat - exact) < 3 * se
    assert abs(exact - 0.5) > 10 * se  # the potential matters: a free walker would fail


# ----------------------------------------------------------------------------- RWRE
def test_rwre_two_step_distribution_is_exact():
    p = rwre_environment(101, 1.0, seed=6)
    o = 50
    n = 200_000
    trace = simulate_rwre(p, 2, n, times=[1, 2], seed=5)
    one, two = trace.extras["positions"]
    assert abs(np.mean(one == 1) - p[o]) < 4 * np.sqrt(p[o] * (1 - p[o]) / n)
    q = 1 - p
    probs = [q[o] * q[o - 1], q[o] * p[o - 1] + p[o] * q[o + 1], p[o] * p[o + 1]]  # x = -2, 0, +2
    observed = [np.sum(two == -2), np.sum(two == 0), np.sum(two == 2)]
    assert sum(observed) == n
    assert stats.chisquare(observed, n * np.asarray(probs)).pvalue > 1e-3


# ----------------------------------------------------------------------------- environments
def test_each_walker_group_uses_its_own_environment():
    right_wall = np.zeros(201)
    right_wall[101] = np.inf
    blocked_right = Potential(right_wall, origin=100)  # wall at +1
    blocked_left = Potential(right_wall[::-1].copy(), origin=100)  # wall at -1
    trace = simulate_walkers([blocked_right, blocked_left], 1.0, 50, 200, seed=1)
    pos = trace.extras["positions"]
    assert pos[:, :100].max() == 0 and pos[:, :100].min() < 0
    assert pos[:, 100:].min() == 0 and pos[:, 100:].max() > 0


def test_factory_draws_one_environment_per_walker_or_one_shared():
    seen = []

    def factory(seq):
        pot = brownian_potential(201, 1.0, seed=seq)
        seen.append(pot.values[-1])
        return pot

    simulate_walkers(factory, 1.0, 20, 8, seed=0, shared_environment=False)
    assert len(seen) == 8 and len(set(seen)) == 8
    seen.clear()
    simulate_walkers(factory, 1.0, 20, 8, seed=0)
    assert len(seen) == 1


def test_results_are_seeded_and_independent_of_the_thread_count():
    pot = brownian_potential(2001, 1.0, seed=2)
    a = simulate_walkers(pot, 1.0, 3000, 100, seed=4)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        b = simulate_walkers(pot, 1.0, 3000, 100, seed=4)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(a.extras["positions"], b.extras["positions"])
    c = simulate_walkers(pot, 1.0, 3000, 100, seed=5)
    assert not np.array_equal(a.extras["positions"], c.extras["positions"])


# ----------------------------------------------------------------------------- edges
def test_a_walker_never_meets_the_edge_silently():
    pot = Potential(np.zeros(41))
    with pytest.raises(EdgeReachedError, match="t_max"):
        simulate_walkers(pot, 1.0, 10_000, 50, seed=0)
    with pytest.raises(ValueError, match="t_max"):
        simulate_walkers(pot, 1.0, 30, 50, seed=0, edge="strict")
    trace = simulate_walkers(pot, 1.0, 19, 50, seed=0, edge="strict")  # 20 steps to the edge
    assert np.abs(trace.extras["positions"]).max() <= 19
    with pytest.raises(EdgeReachedError, match="edge"):
        first_passage_times(pot, 1.0, 50, upper=20, start=0, seed=0)  # reaches -21 first


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"n_walkers": 0}, "n_walkers"),
        ({"t_max": 0}, "t_max"),
        ({"times": [5, 3]}, "times"),
        ({"times": [1, 200]}, "t_max"),
        ({"start": [500]}, "start"),
        ({"edge": "ignore"}, "edge"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = {"potential": Potential(np.zeros(101)), "temperature": 1.0, "t_max": 100, "n_walkers": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate_walkers(**args)


def test_bad_environments_are_refused():
    with pytest.raises(ValueError, match="dimensions"):
        simulate_walkers(Potential(np.zeros((3, 3, 3, 3))), 1.0, 10, 4)
    with pytest.raises(ValueError, match="shape and origin"):
        simulate_walkers([Potential(np.zeros(11)), Potential(np.zeros(13))], 1.0, 2, 4)
    with pytest.raises(ValueError, match="multiple"):
        simulate_walkers([Potential(np.zeros(11))] * 3, 1.0, 2, 4)
    with pytest.raises(ValueError, match="p must"):
        simulate_rwre([0.5, 1.5, 0.5], 2, 4)
    with pytest.raises(TypeError, match="potential"):
        simulate_walkers("flat", 1.0, 2, 4)
    with pytest.raises(ValueError, match="wall"):
        simulate_walkers(Potential([0.0, 0.0, np.inf, 0.0], origin=1), 1.0, 2, 4, start=[1])


def test_arguments_follow_the_shared_validation_contract():
    """diffusion.validation: a wrong type is a TypeError, numpy scalars are the numbers they hold.

    Before the shared checks boolean ``times`` were a ValueError and a string ``rate`` was
    read as a number.
    """
    pot = Potential(np.zeros(101))
    with pytest.raises(TypeError, match="times must be an array of integers, got dtype bool"):
        simulate_walkers(pot, 1.0, 10, 4, times=[False, True])
    with pytest.raises(ValueError, match=r"n_walkers must be an integer in \[1, "):
        simulate_walkers(pot, 1.0, 10, 2**62)
    with pytest.raises(TypeError, match="rate must be a real number, got str"):
        estimate_walk_seconds(4, 100, rate="3")
    assert estimate_walk_seconds(np.int64(4), np.float32(100), rate=np.int64(400)) == 1.0
