"""Random potentials: exact covariances, requested variances and correlations, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffusion.potentials import (
    Potential,
    bounded_potential,
    brownian_potential,
    fbm_potential,
    field_covariance,
    field_variogram,
    gaussian_field,
    rwre_environment,
    rwre_potential,
)


def _replicate_mean(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over replicates (axis 0) and its standard error."""
    return values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])


# ----------------------------------------------------------------------------- fBm
@pytest.mark.parametrize("hurst", [0.25, 0.5, 0.75])
def test_fbm_structure_function_exponent_is_2h(hurst):
    lags = np.array([1, 2, 4, 8, 16, 32, 64])
    s = np.array(
        [
            [np.mean((u[r:] - u[:-r]) ** 2) for r in lags]
            for u in (fbm_potential(4097, hurst, seed=k).values for k in range(60))
        ]
    )
    mean, _ = _replicate_mean(s)
    slope = np.polyfit(np.log(lags), np.log(mean), 1)[0]
    assert abs(slope - 2 * hurst) < 0.05
    # and the amplitude: E (U[i+r] - U[i])^2 = r^{2H} exactly
    np.testing.assert_allclose(mean, lags.astype(float) ** (2 * hurst), rtol=0.1)


@pytest.mark.parametrize("hurst", [0.25, 0.75])
def test_fbm_increments_have_the_exact_autocovariance(hurst):
    sigma = 1.7
    inc = np.stack([np.diff(fbm_potential(2049, hurst, sigma, seed=k).values) for k in range(200)])
    lags = np.arange(6)
    # per-replicate autocovariance estimates (known zero mean), then mean and standard error
    est = np.stack([[np.mean(x[: x.size - k] * x[k:]) for k in lags] for x in inc])
    mean, se = _replicate_mean(est)
    # fGn autocovariance written out independently: (|k+1|^2H - 2|k|^2H + |k-1|^2H) / 2
    k = lags.astype(float)
    exact = (
        sigma**2
        * 0.5
        * ((k + 1) ** (2 * hurst) - 2 * k ** (2 * hurst) + np.abs(k - 1) ** (2 * hurst))
    )
    assert np.all(np.abs(mean - exact) < 4 * se)


def test_fbm_is_zero_at_the_origin_and_seeded():
    a = fbm_potential(101, 0.3, seed=5)
    b = fbm_potential(101, 0.3, seed=5)
    assert a.origin == (50,) and a.values[50] == 0.0
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, fbm_potential(101, 0.3, seed=6).values)


# ----------------------------------------------------------------------------- Brownian, RWRE
def test_brownian_increments_are_iid_with_variance_sigma2():
    sigma = 0.6
    u = brownian_potential(200_001, sigma, seed=3)
    inc = np.diff(u.values)
    n = inc.size
    assert u.values[u.origin] == 0.0
    # variance within 4 standard errors (Var of s^2 for Gaussian data: 2 sigma^4 / n)
    assert abs(inc.var() - sigma**2) < 4 * sigma**2 * np.sqrt(2 / n)
    assert abs(np.corrcoef(inc[:-1], inc[1:])[0, 1]) < 4 / np.sqrt(n)


def test_rwre_environment_and_its_potential_obey_detailed_balance():
    p = rwre_environment(5001, 0.8, seed=2)
    log_ratio = np.log((1 - p) / p)
    assert abs(log_ratio.mean()) < 4 * 0.8 / np.sqrt(p.size)
    assert abs(log_ratio.std() - 0.8) < 4 * 0.8 / np.sqrt(2 * p.size)
    v = rwre_potential(p).values
    assert v[p.size // 2] == 0.0
    np.testing.assert_allclose(np.diff(v), log_ratio[1:], atol=1e-12)
    # pi_k = exp(-V_k)/p_k is reversible: pi_k p_k = pi_{k+1} q_{k+1}
    pi = np.exp(-(v - v.min())) / p
    np.testing.assert_allclose(pi[:-1] * p[:-1], pi[1:] * (1 - p[1:]), rtol=1e-9)


# ----------------------------------------------------------------------------- bounded
@pytest.mark.parametrize("ell", [0, 3])
def test_bounded_potential_range_and_correlation(ell):
    a = 2.5
    u = bounded_potential(400_000, a, ell, seed=1).values
    assert u.min() >= 0.0 and u.max() <= a
    x = u - u.mean()
    var = x.var()
    n = x.size
    for r in range(1, ell + 4):
        rho = np.mean(x[:-r] * x[r:]) / var
        expected = max(0.0, 1 - r / (ell + 1))
        # an estimated correlation of a finitely correlated sequence: se <~ sqrt((2 ell + 1) / n)
        assert abs(rho - expected) < 4 * np.sqrt((2 * ell + 1) / n)


# ----------------------------------------------------------------------------- d-dim fields
def test_short_range_field_covariance_is_exactly_gaussian_on_the_box():
    ell = 2.5
    cov = field_covariance((30, 30), "short", ell)
    r2 = np.add.outer(np.arange(30.0) ** 2, np.arange(30.0) ** 2)
    np.testing.assert_allclose(cov, np.exp(-r2 / (2 * ell**2)), atol=1e-8)


@pytest.mark.parametrize("shape", [(96, 96), (24, 24, 24)])
def test_short_range_field_has_requested_variance_and_correlation(shape):
    sigma, ell = 1.5, 2.0
    lags = [0, 1, 2, 4]
    est = []
    for k in range(24):
        f = gaussian_field(shape, "short", correlation_length=ell, sigma=sigma, seed=k).values
        row = []
        for r in lags:  # covariance along every axis, known zero mean
            row.append(
                np.mean(
                    [
                        np.mean(
                            np.take(f, range(f.shape[a] - r), a)
                            * np.take(f, range(r, f.shape[a]), a)
                        )
                        for a in range(f.ndim)
                    ]
                )
            )
        est.append(row)
    mean, se = _replicate_mean(np.array(est))
    exact = sigma**2 * np.exp(-(np.array(lags, float) ** 2) / (2 * ell**2))
    assert np.all(np.abs(mean - exact) < 4 * se), (mean, exact, se)


@pytest.mark.parametrize("shape", [(64, 64), (16, 16, 16)])
def test_fractional_field_variogram_matches_its_exact_form(shape):
    hurst, sigma = 0.7, 0.8
    lags = [1, 2, 4, 8]
    est = []
    for k in range(30):
        f = gaussian_field(shape, "fractional", hurst=hurst, sigma=sigma, seed=k).values
        est.append(
            [
                np.mean(
                    (np.take(f, range(r, f.shape[0]), 0) - np.take(f, range(f.shape[0] - r), 0))
                    ** 2
                )
                for r in lags
            ]
        )
    mean, se = _replicate_mean(np.array(est))
    exact = sigma**2 * np.array(
        [
            field_variogram(shape, "fractional", hurst=hurst)[(r,) + (0,) * (len(shape) - 1)]
            for r in lags
        ]
    )
    assert exact[0] == pytest.approx(sigma**2)
    assert np.all(np.abs(mean - exact) < 4 * se), (mean, exact, se)


@pytest.mark.parametrize("hurst", [0.25, 0.5, 0.75])
def test_fractional_field_increments_grow_like_r_to_the_h_in_2d(hurst):
    v = field_variogram((128, 128), "fractional", hurst=hurst)
    lags = np.array([2, 4, 8, 16])
    slope = np.polyfit(np.log(lags), np.log([v[r, 0] for r in lags]), 1)[0]
    # the spectral method is approximate at small and large r (documented bound: 0.06)
    assert abs(slope / 2 - hurst) < 0.06
    # isotropy: the diagonal at the same distance agrees with the axis to a few per cent
    assert v[12, 0] == pytest.approx(
        v[int(round(12 / np.sqrt(2))), int(round(12 / np.sqrt(2)))], rel=0.1
    )


# ----------------------------------------------------------------------------- Potential
@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), data=st.data())
def test_potential_origin_defaults_to_centre_and_is_validated(shape, data):
    values = np.zeros(shape)
    p = Potential(values)
    assert p.origin == tuple(n // 2 for n in shape) and p.ndim == len(shape)
    origin = tuple(data.draw(st.integers(-2, n + 2)) for n in shape)
    if all(0 <= o < n for o, n in zip(origin, shape, strict=True)):
        assert Potential(values, origin).origin == origin
    else:
        with pytest.raises(ValueError, match="origin"):
            Potential(values, origin)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fbm_potential(100, 0.0), "hurst"),
        (lambda: fbm_potential(100, 1.0), "hurst"),
        (lambda: fbm_potential(100, -0.2), "hurst"),
        (lambda: fbm_potential(100, 0.5, sigma=-1.0), "sigma"),
        (lambda: brownian_potential(100, sigma=-0.1), "sigma"),
        (lambda: brownian_potential(1), "n_sites"),
        (lambda: rwre_environment(100, sigma=-1.0), "sigma"),
        (lambda: bounded_potential(100, -1.0), "amplitude"),
        (lambda: bounded_potential(100, 1.0, correlation_length=-2), "correlation_length"),
        (lambda: gaussian_field((8, 8, 8, 8)), "dimension"),
        (lambda: gaussian_field((8, 8), kind="long"), "kind"),
        (lambda: gaussian_field((8, 8), "fractional", hurst=1.2), "hurst"),
        (lambda: gaussian_field((8, 8), "short", correlation_length=0.0), "correlation_length"),
        (lambda: gaussian_field((8, 8), sigma=-1.0), "sigma"),
        (lambda: Potential(np.zeros((2, 2, 2, 2))), "dimensions"),
        (lambda: Potential([0.0, np.nan]), "NaN"),
        (lambda: Potential([np.inf, 0.0], origin=0), "wall"),
        (lambda: rwre_potential([0.5, 1.0]), "p must lie"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="n_sites"):
        brownian_potential(10.5)
    with pytest.raises(TypeError, match="seed"):
        brownian_potential(10, seed="abc")


def test_arguments_follow_the_shared_validation_contract():
    """diffusion.validation: a wrong type is a TypeError, numpy scalars are the numbers they hold.

    Before the shared checks a bool ``padding`` was a ValueError.
    """
    with pytest.raises(TypeError, match="padding must be an integer, got bool"):
        field_covariance((8,), padding=True)
    with pytest.raises(ValueError, match="padding must be an integer >= 1, got 0"):
        field_covariance((8,), padding=0)
    with pytest.raises(TypeError, match="sigma must be a real number, got bool"):
        brownian_potential(10, sigma=True)
    a = brownian_potential(np.int64(50), sigma=np.float32(0.5), seed=3)
    np.testing.assert_array_equal(a.values, brownian_potential(50, sigma=0.5, seed=3).values)
