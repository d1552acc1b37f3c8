"""The shared ruler: schedules, traces, growth-law selection and the gamma estimate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffusion.metrics import Trace, estimate_gamma, fit_growth, fit_law, local_slope, log_schedule

T = log_schedule(1e8, 10)
TF = T.astype(float)


def _noisy(d: np.ndarray, rel: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return d + rng.normal(0.0, rel * np.abs(d).mean(), d.size)


# ------------------------------------------------------------------------ log_schedule
def test_log_schedule_bounds_and_density():
    t = log_schedule(1e6, 10)
    assert t[0] == 1 and t[-1] == 10**6
    assert np.all(np.diff(t) > 0)
    # about 10 points per decade once the integers are sparse enough
    assert 50 <= t.size <= 70
    assert log_schedule(5, 10).tolist() == [1, 2, 3, 4, 5]
    assert log_schedule(1)[0] == 1 and log_schedule(1).size == 1
    assert log_schedule(100, 5, start=0)[0] == 0


@given(st.floats(1, 1e15, allow_nan=False), st.integers(1, 60), st.sampled_from([0, 1]))
def test_log_schedule_property(t_max, per_decade, start):
    t = log_schedule(t_max, per_decade, start)
    assert t.dtype == np.int64
    assert np.all(np.diff(t) > 0)
    assert t[0] == start and t[-1] == int(np.floor(t_max))


@pytest.mark.parametrize(
    "bad, arg", [(0.5, "t_max"), (float("nan"), "t_max"), (float("inf"), "t_max")]
)
def test_log_schedule_rejects_bad_t_max(bad, arg):
    with pytest.raises(ValueError, match=arg):
        log_schedule(bad)


def test_log_schedule_rejects_bad_per_decade_and_start():
    with pytest.raises(ValueError, match="per_decade"):
        log_schedule(100, 0)
    with pytest.raises(ValueError, match="start"):
        log_schedule(100, 10, start=2)
    with pytest.raises(TypeError, match="t_max"):
        log_schedule("big")


# ------------------------------------------------------------------------ Trace
def test_trace_validation_names_the_argument():
    with pytest.raises(ValueError, match="t must not be empty"):
        Trace([], [])
    with pytest.raises(ValueError, match="strictly increasing"):
        Trace([1, 3, 2], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="distance must be finite"):
        Trace([1, 2], [0.0, np.nan])
    with pytest.raises(ValueError, match="t must be finite"):
        Trace([1, np.inf], [0.0, 1.0])
    with pytest.raises(ValueError, match="integer"):
        Trace([1.5, 2], [0.0, 1.0])
    with pytest.raises(ValueError, match="length"):
        Trace([1, 2, 3], [0.0, 1.0])
    with pytest.raises(ValueError, match="extras"):
        Trace([1, 2], [0.0, 1.0], {"loss": [1.0]})


def test_trace_roundtrip_and_window():
    tr = Trace(T, np.log(TF), {"loss": 1 / TF, "w": np.ones((T.size, 3))})
    back = Trace.from_arrays(tr.to_arrays("x."), "x.")
    np.testing.assert_array_equal(back.t, tr.t)
    np.testing.assert_array_equal(back.extras["w"], tr.extras["w"])
    win = tr.window(100, 1e4)
    assert win.t[0] >= 100 and win.t[-1] <= 1e4 and win.extras["loss"].size == win.t.size
    with pytest.raises(ValueError, match="window"):
        tr.window(1e9, 1e10)


# ------------------------------------------------------------------------ growth laws
def test_log_data_selects_log_with_b_within_2_percent():
    d = _noisy(3 + 2 * np.log(TF), 0.01, seed=1)
    g = fit_growth((T, d))
    assert g.best.law == "log"
    assert g.best.params["b"] == pytest.approx(2.0, rel=0.02)
    # the power law is rejected by both criteria
    assert g.beats("log", "power")
    assert g.fits["power"].aic > g.fits["log"].aic and g.fits["power"].bic > g.fits["log"].bic


def test_log_squared_data_selects_polylog_with_k_2():
    d = _noisy(np.log(TF) ** 2, 0.01, seed=2)
    g = fit_growth((T, d))
    assert g.best.law == "polylog"
    assert g.best.params["k"] == pytest.approx(2.0, abs=0.1)


def test_sqrt_data_selects_power_with_nu_half():
    d = _noisy(TF**0.5, 0.01, seed=3)
    g = fit_growth((T, d))
    assert g.best.law == "power"
    assert g.best.params["nu"] == pytest.approx(0.5, abs=0.02)


def test_power_offset_recovers_its_parameters():
    d = _noisy(5 + 0.3 * TF**0.25, 0.002, seed=4)
    f = fit_law((T, d), "power_offset")
    assert f.params["nu"] == pytest.approx(0.25, abs=0.01)
    assert f.params["b"] == pytest.approx(0.3, rel=0.05)


def test_log_fit_matches_independent_least_squares_and_stderr():
    """The closed-form log fit equals numpy.polyfit and its standard error the textbook one."""
    d = _noisy(1 + 0.7 * np.log(TF), 0.05, seed=5)
    f = fit_law((T, d), "log")
    (b, a), cov = np.polyfit(np.log(TF), d, 1, cov=True)
    assert f.params["a"] == pytest.approx(a, rel=1e-10)
    assert f.params["b"] == pytest.approx(b, rel=1e-10)
    assert f.stderr["b"] == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-6)


def test_window_restricts_the_fit():
    # log growth to 1e4 then a power law: only the initial window is log
    d = np.where(TF <= 1e4, np.log(TF), np.log(1e4) * (TF / 1e4) ** 0.5)
    d = d + np.random.default_rng(8).normal(0.0, 0.02, d.size)
    early = fit_growth((T, d), t_max=1e4)
    assert (
        early.beats("log", "power")
        and early.beats("log", "power_offset")
        or early.best.law == "log"
    )
    assert early.fits["polylog"].params["k"] == pytest.approx(1.0, abs=0.02)
    assert early.fits["log"].t_range[1] <= 1e4
    assert fit_growth((T, d), t_min=1e5).best.law in ("power", "power_offset")


def test_local_slope_of_log_and_log_squared():
    _, s = local_slope((T, 3 + 2 * np.log(TF)))
    np.testing.assert_allclose(s, 2.0, rtol=1e-9)
    _, s2 = local_slope((T, np.log(TF) ** 2), smooth=2)
    interior = (TF >= 100) & (TF <= 1e6)  # away from the ends and the integer-rounded start
    np.testing.assert_allclose(s2[interior], 2 * np.log(TF[interior]), rtol=0.05)


@given(st.randoms(use_true_random=False))
def test_fits_invariant_to_point_order(rnd):
    d = _noisy(3 + 2 * np.log(TF), 0.01, seed=6)
    order = list(range(T.size))
    rnd.shuffle(order)
    order = np.array(order)
    # a Trace must be increasing, so the permuted points are sorted back by the caller:
    # the fit depends on the set of (t, d) points only
    perm_t, perm_d = T[order], d[order]
    srt = np.argsort(perm_t)
    a, b = fit_law((T, d), "log"), fit_law((perm_t[srt], perm_d[srt]), "log")
    assert a.params == pytest.approx(b.params, rel=1e-12)
    # the least-squares problem itself is order-free: shuffling rows leaves the solution
    design = np.column_stack([np.ones(T.size), np.log(TF)])
    sol = np.linalg.lstsq(design[order], d[order], rcond=None)[0]
    assert sol == pytest.approx([a.params["a"], a.params["b"]], rel=1e-9)


@given(st.floats(0.01, 100.0))
def test_scaling_distance_scales_a_and_b(c):
    d = _noisy(3 + 2 * np.log(TF), 0.01, seed=7)
    f1, fc = fit_law((T, d), "log"), fit_law((T, c * d), "log")
    assert fc.params["a"] == pytest.approx(c * f1.params["a"], rel=1e-8)
    assert fc.params["b"] == pytest.approx(c * f1.params["b"], rel=1e-8)
    p1, pc = fit_law((T, d), "polylog"), fit_law((T, c * d), "polylog")
    assert pc.params["k"] == pytest.approx(p1.params["k"], rel=1e-4)
    assert pc.params["b"] == pytest.approx(c * p1.params["b"], rel=1e-3)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="law must be one of"):
        fit_law((T, np.log(TF)), "cubic")
    with pytest.raises(ValueError, match="criterion"):
        fit_growth((T, np.log(TF)), criterion="r2")
    with pytest.raises(ValueError, match="needs at least"):
        fit_law(([1, 2], [0.0, 1.0]), "polylog")
    with pytest.raises(TypeError, match="trace"):
        fit_growth([1, 2, 3])
    with pytest.raises(ValueError, match="distance must be finite"):
        fit_growth((T, np.full(T.size, np.inf)))


# ------------------------------------------------------------------------ gamma
def test_gamma_of_brownian_path_is_one_half():
    rng = np.random.default_rng(11)
    path = np.cumsum(rng.normal(size=200_000))
    lags = np.unique(np.geomspace(1, 5000, 30).astype(int))
    d, inc = [], []
    for lag in lags:
        start = rng.integers(0, path.size - lag, 400)
        d.append(np.full(start.size, lag, float))
        inc.append(path[start + lag] - path[start])
    est = estimate_gamma(np.concatenate(d), np.concatenate(inc))
    assert est.gamma == pytest.approx(0.5, abs=0.05)
    assert est.ci[0] < 0.5 < est.ci[1]


def test_gamma_of_linear_function_is_one():
    rng = np.random.default_rng(12)
    x = rng.uniform(0, 1000, 20_000)
    y = rng.uniform(0, 1000, 20_000)
    f = lambda z: 0.3 * z + rng.normal(0, 1e-3, z.size)  # noqa: E731
    est = estimate_gamma(np.abs(x - y), f(x) - f(y))
    assert est.gamma == pytest.approx(1.0, abs=0.02)


def test_gamma_rejects_bad_input():
    with pytest.raises(ValueError, match="increments has length"):
        estimate_gamma([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="distance_pairs must be positive"):
        estimate_gamma([0.0, 2.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="increments must be finite"):
        estimate_gamma([1.0, 2.0], [1.0, np.nan])
    with pytest.raises(ValueError, match="distance bins"):
        estimate_gamma(np.arange(1, 20.0), np.ones(19))
