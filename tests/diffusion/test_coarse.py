"""The renormalised (coarse-grained) walker: the zig-zag against the literal decimation, the
window extension, Kesten's law at t = 1e30 and the approach of the exponent to 2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from diffusion import theory
from diffusion.coarse import CoarseResult, coarse_walk, decimate, valley_bottom, zigzag
from diffusion.potentials import fbm_potential

GAMMA_1E30 = math.log(1e30)


def _interior(ext: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return ext[(ext >= lo) & (ext <= hi)]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.3, 12.0), st.sampled_from([0.3, 0.5, 0.8]))
def test_zigzag_equals_literal_decimation(seed, threshold, hurst):
    v = fbm_potential(3001, hurst, 1.0, seed=seed).values
    z = zigzag(v, threshold)
    d = decimate(v, threshold)
    assume(z.size >= 6)  # a skipped example is counted, not passed
    # away from the ends of the path the two constructions give the same extrema
    lo, hi = z[2], z[-3]
    np.testing.assert_array_equal(_interior(z, lo, hi), _interior(d, lo, hi))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.5, 8.0))
def test_zigzag_extrema_alternate_with_large_swings(seed, threshold):
    v = np.concatenate([[0.0], np.cumsum(np.random.default_rng(seed).normal(size=2000))])
    z = zigzag(v, threshold)
    assume(z.size >= 3)
    vals = v[z]
    steps = np.diff(vals)
    assert np.all(np.sign(steps[1:]) == -np.sign(steps[:-1]))  # alternation
    assert np.all(np.abs(steps[:-1]) >= threshold)  # all but the pending last swing
    for a, b in zip(z[:-1], z[1:], strict=True):  # the path between two extrema stays between them
        seg = v[a : b + 1]
        assert seg.min() == min(v[a], v[b]) and seg.max() == max(v[a], v[b])


def test_valley_bottom_on_a_drawn_landscape():
    knots = [
        (0, 20),
        (3, -3),
        (6, 8),
        (9, -1),
        (12, 9),
        (16, 2),
        (20, 10),
        (23, 0),
        (26, 12),
        (29, -2),
        (32, 13),
    ]
    xs, ys = zip(*knots, strict=True)
    v = np.interp(np.arange(33), xs, ys)
    disp, ok = valley_bottom(v, 14, [1.0, 7.5, 9.5])
    # Gamma = 1: the valley [12, 20] around the start 14, bottom 16.
    # Gamma = 7.5: the bond 12-16 (7) is decimated; valley [6, 20], bottom 9.
    # Gamma = 9.5: the bond 6-9 (9) goes too; the valley [0, 20] is bounded by the first
    # point of the path, which is not a confirmed maximum: undetermined.
    assert ok.tolist() == [True, True, False]
    assert disp[:2].tolist() == [2, -5]
    np.testing.assert_array_equal(zigzag(v, 7.5), [0, 3, 6, 9, 20, 23, 26, 29, 32])
    np.testing.assert_array_equal(decimate(v, 7.5), [0, 3, 6, 9, 20, 23, 26, 29, 32])


def test_brownian_window_extension_extends_the_same_landscape():
    gammas = [5.0, 20.0, 40.0]
    wide = coarse_walk(60, gammas, seed=4)
    narrow = coarse_walk(60, gammas, seed=4, half_width=200)
    assert narrow.n_extended > 0 and wide.n_extended == 0
    np.testing.assert_array_equal(narrow.positions, wide.positions)  # nothing conditioned away
    again = coarse_walk(60, gammas, seed=4, max_sites=50_000)  # batching does not matter
    np.testing.assert_array_equal(again.positions, wide.positions)


GAMMAS = [6.91, 8.5, 10.0, 12.0, 14.0, 16.0, 18.42, 25.0, 30.0, 38.0, 45.0, 55.0, GAMMA_1E30]


@pytest.fixture(scope="module")
def sinai_1e30() -> CoarseResult:
    # 1,000 environments, t from 1e3 to 1e30; the nested passes make the extra times free
    return coarse_walk(1000, GAMMAS, seed=2024)


def test_kesten_law_at_t_1e30(sinai_1e30):
    """Kesten's law at t = 1e30 at the overshoot-corrected scale, to sampling error alone.

    The positions are divided by Gamma_eff^2/sigma^2 with Gamma_eff = Gamma + 2 * 0.5826
    sigma (``theory.kesten_effective_gamma``); no allowance beyond 3 standard errors.
    Mutants run once: a sqrt(2) in the normalisation of b (Gamma_eff / 2^(1/4)) is caught;
    no correction and one overshoot instead of two are not (at Gamma = 69 the correction is
    3.4%, under 2 se with 1,000 environments): test_corrected_scale_at_gamma_30 catches them.
    """
    res = sinai_1e30
    g_eff = theory.kesten_effective_gamma(GAMMA_1E30, res.sigma_v)
    b = res.positions[:, -1].astype(float) * res.sigma_v**2 / g_eff**2
    n = b.size
    ks = stats.kstest(b, theory.kesten.cdf)
    assert ks.statistic < 1.63 / math.sqrt(n)  # 1% critical value of the KS statistic
    se1 = np.std(np.abs(b), ddof=1) / math.sqrt(n)
    se2 = np.std(b**2, ddof=1) / math.sqrt(n)
    assert abs(np.mean(np.abs(b)) - 5 / 6) < 3 * se1
    assert abs(np.mean(b**2) - 61 / 45) < 3 * se2
    assert np.mean(b > 0) == pytest.approx(0.5, abs=3 * 0.5 / math.sqrt(n))  # symmetric law


@pytest.mark.parametrize("sigma, n_envs", [(1.0, 3000), (2.0, 4000)])
def test_corrected_scale_at_gamma_30(sigma, n_envs):
    """At Gamma = 30 the overshoot-corrected E|b| and E b^2 match 5/6 and 61/45.

    The correction depends on sigma/Gamma only (sigma = 2 at Gamma = 30 is sigma = 1 at 15).
    Measured with 40,000 environments: corrected E|b| = 0.8302 +- 0.0041 (sigma = 1) and
    0.8331 +- 0.0041 (sigma = 2), within 0.01 of 5/6 (the raw values are 0.896 and 0.968).
    Here, with fewer environments, the assertion is 3 standard errors (0.04-0.05).
    Mutants caught (run once each): no correction, one overshoot instead of two, a sqrt(2)
    in the normalisation of b, a landscape whose variance lacks a factor 2.
    """
    gamma = 30.0
    res = coarse_walk(n_envs, [gamma], sigma=sigma, seed=909)
    b = (
        res.positions[:, -1].astype(float)
        * sigma**2
        / theory.kesten_effective_gamma(gamma, sigma) ** 2
    )
    for moment, target in ((np.abs(b), 5 / 6), (b**2, 61 / 45)):
        se = np.std(moment, ddof=1) / math.sqrt(n_envs)
        assert abs(moment.mean() - target) < 3 * se
    raw = np.abs(res.positions[:, -1]) * sigma**2 / gamma**2
    assert raw.mean() - 5 / 6 > 3 * np.std(raw, ddof=1) / math.sqrt(n_envs)  # it was needed
    assert stats.kstest(b, theory.kesten.cdf).pvalue > 0.001


def test_running_exponent_extrapolates_to_the_limit():
    """Sinai: E|x| = C (Gamma + c)^k with k = 2 and c = 2 * 0.5826 sigma = 1.165.

    The running exponent at Gamma <= 40 is below 2 (1.7-2.0); the extrapolation's bootstrap
    interval contains 2 and that of the shift contains 1.165 (seeds 100-103: k 1.94, 1.91,
    2.07, 1.93). Mutant caught: extrapolating with c fixed at 0 (a pure power, k = 1.83
    [1.78, 1.88]).
    """
    from diffusion.experiments import _running_exponent

    gammas = np.round(np.geomspace(3.0, 40.0, 20), 2)
    res = coarse_walk(600, gammas, seed=100)
    run = _running_exponent(res.positions.T, gammas, seed=0)
    lo, hi = run["k_extrapolated_interval"]
    assert lo < 2.0 < hi and hi - lo < 0.5
    assert run["shift_interval"][0] < 2 * theory.OVERSHOOT < run["shift_interval"][1]
    assert np.mean(run["k_eff"][-5:]) < 2.0


def test_moments_move_toward_kesten_as_t_grows(sinai_1e30):
    b = sinai_1e30.scaled()
    n = b.shape[0]
    i10 = GAMMAS.index(10.0)
    for moment, target in ((np.abs(b), 5 / 6), (b**2, 61 / 45)):
        means = moment.mean(axis=0)
        # same environments at every Gamma: the differences are measured precisely
        diff = moment[:, i10] - moment[:, -1]
        se = np.std(diff, ddof=1) / math.sqrt(n)
        assert diff.mean() > 3 * se  # t = e^10 overshoots the limit law...
        assert abs(means[-1] - target) < abs(means[i10] - target)  # ...and t = 1e30 is closer


def test_polylog_exponent_is_two_over_a_wide_window_and_approaches_it(sinai_1e30):
    res = sinai_1e30
    # the shared metrics' a + b (log t)^k over t in [1e3, 1e30]
    wide = res.exponent_interval(n_boot=40)
    assert abs(wide.k - 2.0) < 0.2 and wide.ci[0] < 2.0 < wide.ci[1]
    # E|x| = (5/6) Gamma^2 (1 + O(1/Gamma)): the pure power b (log t)^k fitted over
    # [1e3, 1e8] is held below 2 by the correction, over [e^25, 1e30] it is close to 2
    early = res.exponent_interval(6.9, 18.5, offset=False, n_boot=40)
    late = res.exponent_interval(25.0, 69.1, offset=False, n_boot=40)
    assert early.ci[1] < 2.0
    assert early.k < late.k
    assert late.ci[0] < 2.0 < late.ci[1]


def test_fbm_exponent_follows_one_over_hurst():
    """E|x| ~ (log t)^(1/H): the finite-Gamma exponent falls with H; its extrapolation hits 1/H.

    By self-similarity of fBm the law is exact once (Gamma/sigma)^(1/H) >> 1 site; at finite
    Gamma the lattice holds the fitted exponent below 1/H. Two-sided: for H = 0.5 and 0.7
    the extrapolation of E|x| = C (Gamma + c)^k (bootstrap 95% interval, measured
    [1.60, 2.39] and [1.16, 1.65]) contains 1/H and is narrower than 1; for H = 0.3 and 0.9
    120 environments leave it too wide to say more. Mutant run once: an fBm path of Hurst
    1 - H is caught, but by the window check (``n_extended`` 135 > 3), before the exponents;
    an extrapolation with c fixed at 0 is caught by
    test_running_exponent_extrapolates_to_the_limit.
    """
    from diffusion.experiments import _running_exponent

    ks, limits = {}, {}
    for hurst, g_max in ((0.3, 10.0), (0.5, 30.0), (0.7, 30.0), (0.9, 30.0)):
        gammas = np.round(np.geomspace(3.0, g_max, 12), 2)
        res = coarse_walk(120, gammas, kind="fbm", hurst=hurst, seed=31)
        assert res.n_extended <= 3
        ks[hurst] = res.exponent_interval(5.0, offset=False, statistic="mean_abs", n_boot=30)
        limits[hurst] = _running_exponent(res.positions.T, gammas, seed=0)
    k = [ks[h].k for h in (0.3, 0.5, 0.7, 0.9)]
    assert k[0] > k[1] > k[2] > k[3]  # the exponent falls with H...
    assert ks[0.9].ci[0] < 1 / 0.9 < ks[0.9].ci[1] and ks[0.9].k < 1.4  # ...toward the seed's 1
    for h, est in ks.items():
        assert est.ci[0] < 1 / h  # approached from below
    for h in (0.5, 0.7):
        lo, hi = limits[h]["k_extrapolated_interval"]
        assert lo < 1 / h < hi and hi - lo < 1.0


def test_log_time_trace_is_the_polylog_law():
    # the log-time axis turns a + b (log t)^k into the power_offset law with the same k
    gammas = np.arange(3.0, 60.0, 0.5)
    k = 1.7
    fake = CoarseResult(
        gammas,
        np.round(np.outer([1, -1], 3.0 * gammas**k)).astype(np.int64),
        "fbm",
        1 / k,
        1.0,
        1.0,
        np.array([10, 10]),
        0,
    )
    fit = fake.polylog_exponent()
    assert fit.params["nu"] == pytest.approx(k, abs=2e-3)
    trace = fake.log_time_trace()
    np.testing.assert_allclose(trace.extras["gamma"], gammas)
    np.testing.assert_allclose(
        trace.distance, np.sqrt(np.mean(fake.positions.astype(float) ** 2, axis=0))
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "fbm", "hurst": 1.0}, "hurst"),
        ({"kind": "fbm", "hurst": 0.0}, "hurst"),
        ({"sigma": -1.0}, "sigma"),
        ({"temperature": 0.0}, "temperature"),
        ({"kind": "levy"}, "kind"),
        ({"gammas": [5.0, 3.0]}, "increasing"),
        ({"gammas": [-1.0]}, "gammas"),
        ({"n_envs": 0}, "n_envs"),
        ({"n_envs": 2000, "kind": "fbm", "hurst": 0.3, "gammas": [69.0]}, "lower t_max"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"n_envs": 2, "gammas": [3.0]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        coarse_walk(args.pop("n_envs"), args.pop("gammas"), **args)
    with pytest.raises(ValueError, match="threshold"):
        zigzag([0.0, 1.0, 0.0], 0.0)
