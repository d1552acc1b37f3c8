"""Method "stream" of the renormalised Sinai walk: exponentially long times, bounded memory.

Checked against the window method's zig-zag pass on the very same landscapes (exact), against
the window method on its own landscapes (in distribution, tolerances from the sample size),
and against itself: the valley at ``Gamma`` does not depend on how far beyond it the trace goes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from diffusion.coarse import _child, _env_seeds, _stream_bottoms, coarse_walk, valley_bottom

G30, G100, G300 = math.log(1e30), math.log(1e100), math.log(1e300)


def _generators(seed: int):
    env = _env_seeds(seed, 1)[0]
    return [np.random.Generator(np.random.PCG64(_child(env, k))) for k in (0, 1)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_stream_equals_the_window_pass_on_the_same_landscape(seed):
    """Same streams, the landscape rebuilt with numpy's cumsum: identical bottoms.

    The initial window (200 sites a side) is short for Gamma = 40, so the doubling path is
    exercised. Mutants caught: a half assembled one site off (``v[half + k] = right[k + 1]``),
    a stream that restarts instead of continuing when the window doubles, the scale applied
    twice.
    """
    gammas = np.array([5.0, 12.0, 25.0, 40.0])
    sigma_v = 0.7
    res, half, doublings = _stream_bottoms(_generators(seed), 200, sigma_v, gammas, 10**8)
    left, right = (gen.standard_normal(half) for gen in _generators(seed))
    path = sigma_v * np.concatenate([np.cumsum(left)[::-1], [0.0], np.cumsum(right)])
    expected, determined = valley_bottom(path, half, gammas)
    assert determined.all()
    np.testing.assert_array_equal(res, expected)
    assert half == 200 * 2**doublings


def test_valley_at_1e30_does_not_depend_on_a_trace_to_1e100():
    """Where both run, the trace to 1e100 gives exactly the 1e30 positions (same seeds).

    The 1e100 run uses windows 11 times wider; a confirmed valley is a property of the
    landscape, so its bottom must not move. Mutant caught: a bottom taken from the pending
    (unconfirmed) last extremum of the pass.
    """
    short = coarse_walk(60, [G30], seed=11, method="stream")
    long = coarse_walk(60, [G30, G100], seed=11, method="stream")
    np.testing.assert_array_equal(long.positions[:, 0], short.positions[:, 0])
    assert np.all(long.half_width > short.half_width)


def test_stream_and_window_agree_in_distribution_at_1e30():
    """Kesten's scaled position ``b = sigma^2 x/(log t)^2`` at t = 1e30, 1,000 environments each.

    E|b| and E b^2 of the two methods (independent landscapes) differ by less than 4
    standard errors of the difference; E|b| lies near the notes' 0.87 at Gamma = 69 (5/6
    asymptotically, O(1/Gamma) above it). Mutants caught: the landscape scaled by sqrt(2)
    (positions, set by barriers of Gamma, shrink by 2), sigma_V taken as sigma*T.
    """
    n = 1000
    sigma, temperature = 1.3, 0.8
    a = coarse_walk(n, [G30], seed=21, method="stream", sigma=sigma, temperature=temperature)
    b = coarse_walk(n, [G30], seed=22, method="window", sigma=sigma, temperature=temperature)
    for stat in (np.abs, np.square):
        xa, xb = stat(a.scaled()[:, 0]), stat(b.scaled()[:, 0])
        se = math.sqrt(xa.var(ddof=1) / n + xb.var(ddof=1) / n)
        assert abs(xa.mean() - xb.mean()) < 4 * se, (stat.__name__, xa.mean(), xb.mean(), se)
    assert 0.75 < np.mean(np.abs(a.scaled())) < 1.0


def test_t_1e300_runs_in_bounded_memory():
    """Three environments to t = 1e300: windows of millions of sites, one at a time.

    The window method refuses this (more than 5e9 sites); the stream method needs
    ``3 Gamma^2`` sites a side to start (1.4 million) and finds valleys of the scale
    ``(log t)^2 = 4.8e5``; every window stays within ``max_env_sites``.
    """
    gammas = [G30, G100, G300]
    with pytest.raises(ValueError, match="limit"):
        coarse_walk(1000, gammas, seed=0)
    r = coarse_walk(3, gammas, seed=0, method="stream", max_env_sites=60_000_000)
    scaled = np.abs(r.scaled())
    assert np.all(scaled[:, -1] < 10) and np.any(scaled[:, -1] > 0.01)
    assert np.all(2 * r.half_width + 1 <= 60_000_000)


def test_stream_rejects_what_it_cannot_do():
    """Bad method, fBm with "stream", and a window cap too small: errors name the argument."""
    with pytest.raises(ValueError, match="method"):
        coarse_walk(2, [5.0], method="fast")
    with pytest.raises(ValueError, match="kind='brownian'"):
        coarse_walk(2, [5.0], kind="fbm", hurst=0.3, method="stream")
    with pytest.raises(ValueError, match="max_env_sites"):
        coarse_walk(2, [G30], method="stream", max_env_sites=1000)
    with pytest.raises(ValueError, match="max_env_sites"):
        coarse_walk(2, [G30], method="stream", max_env_sites=2.5)
