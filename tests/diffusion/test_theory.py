"""Exact theory against independent computations (linear algebra, quadrature, sympy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, linalg, sparse
from scipy.sparse import linalg as splinalg

from diffusion import theory

chains = st.tuples(
    st.integers(2, 40),  # N
    st.integers(0, 2**32 - 1),  # seed
    st.floats(0.75, 5.0),  # temperature: disorder/T <= 4 keeps the reference solve accurate
    st.floats(0.0, 3.0),  # disorder amplitude
)


def _chain(n, seed, temperature, amp):
    u = amp * np.random.default_rng(seed).normal(size=n + 1)
    return u, theory.metropolis_rates(u, temperature)


def _generator(right, left):
    """Generator matrix Q of the chain on 0..N with reflection at 0 (no wrap-around)."""
    n = right.size
    q = np.zeros((n, n))
    for i in range(n):
        if i + 1 < n:
            q[i, i + 1] = right[i]
        if i - 1 >= 0:
            q[i, i - 1] = left[i]
        q[i, i] = -q[i].sum()
    return q


@settings(max_examples=60, deadline=None)
@given(chains)
def test_mfpt_sum_equals_linear_system(args):
    u, (right, left) = _chain(*args)
    q = _generator(right, left)
    n = right.size - 1
    # E T_i solves Q T = -1 on the transient sites 0..N-1 with T_N = 0
    exact = linalg.solve(q[:n, :n], -np.ones(n))
    rtol = max(1e-9, 100 * np.finfo(float).eps * np.linalg.cond(q[:n, :n]))
    np.testing.assert_allclose(theory.mfpt(right, left), exact, rtol=rtol)


@settings(max_examples=60, deadline=None)
@given(chains)
def test_splitting_probability_equals_linear_system(args):
    u, (right, left) = _chain(*args)
    q = sparse.csr_matrix(_generator(right, left))
    n = right.size - 1
    inner = q[1:n, 1:n]
    rhs = -q[1:n, n].toarray().ravel()  # P_N = 1, P_0 = 0
    exact = np.concatenate(
        [[0.0], np.atleast_1d(splinalg.spsolve(inner.tocsc(), rhs)) if n > 1 else [], [1.0]]
    )
    # the linear solve loses digits as the rates spread (exp(amplitude/T)): bound by cond(Q)
    cond = np.linalg.cond(inner.toarray()) if n > 1 else 1.0
    rtol = max(1e-9, 100 * np.finfo(float).eps * cond)
    np.testing.assert_allclose(
        theory.splitting_probability(right, left), exact, rtol=rtol, atol=1e-12
    )


def test_log_mfpt_holds_huge_barriers_and_arrhenius_slope():
    import mpmath

    # triangular barrier of height B (in units of T) over 20 sites: T ~ A exp(B)
    heights = np.array([50.0, 100.0, 200.0, 400.0])
    logs = []
    for b in heights:
        u = np.concatenate([np.linspace(0, b, 11), np.linspace(b, 0, 11)[1:]])
        right, left = theory.metropolis_rates(u, 1.0)
        logs.append(theory.log_mfpt(right, left)[0])
    # independent: the linear system in 400-digit arithmetic (rates span e^-400), largest barrier
    mpmath.mp.dps = 400
    n = right.size - 1
    uq = [mpmath.mpf(float(x)) for x in u]
    a = mpmath.zeros(n, n)
    for i in range(n):
        r = mpmath.mpf(1) / 2 * mpmath.exp(-max(uq[i + 1] - uq[i], 0))
        lft = mpmath.mpf(1) / 2 * mpmath.exp(-max(uq[i - 1] - uq[i], 0)) if i > 0 else 0
        if i + 1 < n:
            a[i, i + 1] = r
        if i > 0:
            a[i, i - 1] = lft
        a[i, i] = -(r + lft)
    exact = mpmath.lu_solve(a, mpmath.matrix([-1] * n))[0]
    assert logs[-1] == pytest.approx(float(mpmath.log(exact)), rel=1e-12)
    # Arrhenius: d log T / d B -> 1 (corrections ~ exp(-B/10) from the 10-site slopes)
    slopes = np.diff(logs) / np.diff(heights)
    np.testing.assert_allclose(slopes, 1.0, atol=2 * math.exp(-5.0) / 10)
    attempt = math.exp(-(logs[-1] - heights[-1]))
    assert theory.arrhenius_time(heights[-1], 1.0, attempt) == pytest.approx(
        math.exp(logs[-1] - 400) * math.exp(400), rel=1e-9
    )


def test_free_walk_mfpt_is_n_squared():
    # flat potential, rates 1/2: T_0 = sum_k 2 (k + 1) = N (N + 1)
    right, left = theory.metropolis_rates(np.zeros(11), 1.0)
    assert theory.mfpt(right, left)[0] == pytest.approx(110.0, rel=1e-12)


def _tilted_diffusion(right, left, s=1e-3):
    """D from the tilted generator: log E e^{s X_t} ~ t lambda(s), lambda(s) ~ D s^2."""
    L = right.size

    def lam(tilt):
        m = np.zeros((L, L))
        for i in range(L):
            m[i, (i + 1) % L] += right[i] * math.exp(tilt)
            m[i, (i - 1) % L] += left[i] * math.exp(-tilt)
            m[i, i] -= right[i] + left[i]
        return float(np.max(np.linalg.eigvals(m).real))

    return (lam(s) + lam(-s)) / (2 * s * s)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 25), st.integers(0, 2**32 - 1), st.floats(0.3, 3.0), st.floats(0.0, 3.0))
def test_effective_diffusion_equals_tilted_generator(n, seed, temperature, amp):
    u = amp * np.random.default_rng(seed).uniform(size=n)
    right, left = theory.metropolis_rates(u, temperature)
    assert theory.effective_diffusion(u, temperature) == pytest.approx(
        _tilted_diffusion(right, left), rel=1e-4
    )


def test_effective_diffusion_free_and_refuses_drift():
    assert theory.effective_diffusion(np.zeros(7)) == pytest.approx(0.5, rel=1e-14)
    with pytest.raises(ValueError, match="not reversible"):
        theory.effective_diffusion_rates([0.5, 0.5, 0.5], [0.2, 0.2, 0.2])


def test_smooth_lattice_potential_reaches_zwanzig_limit():
    # a slowly varying periodic potential on the lattice is the continuum with D0 = 1/2
    L = 4000
    x = np.arange(L) / L
    u = 1.5 * np.cos(2 * np.pi * x) + 0.5 * np.sin(6 * np.pi * x)
    lattice = theory.effective_diffusion(u, 1.0)
    continuum = theory.zwanzig_diffusion(u, 1.0, d0=0.5)
    assert lattice == pytest.approx(continuum, rel=2e-3)
    assert continuum < 0.5


# ----------------------------------------------------------------------------- Kesten's law
def test_kesten_density_normalised_and_moments_by_quadrature():
    pdf = theory.kesten_pdf
    total = 2 * integrate.quad(pdf, 0, np.inf, limit=200)[0]
    m1 = 2 * integrate.quad(lambda b: b * pdf(b), 0, np.inf, limit=200)[0]
    m2 = 2 * integrate.quad(lambda b: b * b * pdf(b), 0, np.inf, limit=200)[0]
    assert total == pytest.approx(1.0, abs=1e-10)
    assert m1 == pytest.approx(5 / 6, abs=1e-9) and theory.KESTEN_MEAN_ABS == 5 / 6
    assert m2 == pytest.approx(61 / 45, abs=1e-9) and theory.KESTEN_SECOND_MOMENT == 61 / 45


def test_kesten_moments_from_brownian_exit_time_sympy():
    # p(b) = P(tau > |b|)/2, tau the exit time of a standard BM from (-1, 1): E|b| = E tau^2/2
    # and E b^2 = E tau^3/3. Moments u_n(x) = E_x tau^n solve u_n''/2 = -n u_{n-1}, u_n(+-1) = 0.
    x, c1, c2 = sp.symbols("x c1 c2")
    u = sp.Integer(1)
    moments = []
    for n in (1, 2, 3):
        f = sp.integrate(sp.integrate(-2 * n * u, x), x) + c1 * x + c2
        sol = sp.solve([f.subs(x, 1), f.subs(x, -1)], [c1, c2])
        u = sp.expand(f.subs(sol))
        moments.append(u.subs(x, 0))
    assert moments[0] == 1
    assert moments[1] / 2 == sp.Rational(5, 6)
    assert moments[2] / 3 == sp.Rational(61, 45)


def test_kesten_series_and_images_agree_and_cdf_is_integral_of_pdf():
    x = np.linspace(0.05, 1.5, 40)
    np.testing.assert_allclose(
        theory._exit_survival_series(x), theory._exit_survival_images(x), rtol=1e-12, atol=1e-14
    )
    b = np.linspace(-4, 4, 81)
    numeric = np.array([integrate.quad(theory.kesten_pdf, -np.inf, v, limit=200)[0] for v in b])
    np.testing.assert_allclose(theory.kesten_cdf(b), numeric, atol=1e-9)
    assert theory.kesten.cdf(0.0) == pytest.approx(0.5)
    assert theory.kesten_pdf(0.0) == pytest.approx(0.5, abs=1e-12)  # (2/pi) * pi/4
    np.testing.assert_allclose(
        theory.kesten_abs_cdf(np.abs(b)), 2 * theory.kesten_cdf(np.abs(b)) - 1, atol=1e-14
    )


def test_kesten_usable_by_kstest():
    from scipy import stats

    rng = np.random.default_rng(3)
    # inverse-CDF samples of the law pass; a normal with the same variance is rejected
    u = rng.uniform(size=4000)
    grid = np.linspace(-25, 25, 50001)
    samples = np.interp(u, theory.kesten_cdf(grid), grid)
    assert stats.kstest(samples, theory.kesten.cdf).pvalue > 0.01
    normal = rng.normal(0, math.sqrt(61 / 45), 4000)
    assert stats.kstest(normal, theory.kesten.cdf).pvalue < 1e-6
    assert theory.kesten.ppf(0.5) == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- scaling laws
def test_scaling_laws():
    t = np.array([1e3, 1e10, 1e30])
    np.testing.assert_allclose(theory.sinai_scale(t, 0.5), np.log(t) ** 2 / 0.25)
    # fBm at H = 1/2 is Sinai with sigma -> sigma/T
    np.testing.assert_allclose(
        theory.fbm_scale(t, 0.5, sigma=2.0, temperature=4.0), theory.sinai_scale(t, 0.5)
    )
    np.testing.assert_allclose(
        theory.barrier_growth_distance(t, 1.0), np.log(t)
    )  # the seed's log t
    np.testing.assert_allclose(theory.fbm_scale(t, 0.25), np.log(t) ** 4)


# ----------------------------------------------------------------------------- Kramers
def _langevin_mfpt(u, a, b, temperature):
    """Exact MFPT a -> b of dx = -U'dt + sqrt(2T) dW (reflecting far left).

    T = (1/T) int_a^b dy e^{U(y)/T} int_{-inf}^y dz e^{-U(z)/T}.
    """

    def inner(y):
        return integrate.quad(lambda z: math.exp(-u(z) / temperature), -3.0, y, limit=200)[0]

    return (
        integrate.quad(
            lambda y: math.exp(u(y) / temperature) * inner(y), a, b, limit=200, points=[0.0]
        )[0]
        / temperature
    )


@pytest.mark.parametrize("barrier_over_t", [6.0, 12.0])
def test_kramers_matches_exact_langevin_mfpt(barrier_over_t):
    # double well dU (x^2 - 1)^2: U''(-1) = 8 dU, U''(0) = -4 dU. Crossing to the far bottom
    # takes 1/k; the error of Kramers' formula is O(T/dU).
    dU, T = 1.0, 1.0 / barrier_over_t
    exact = _langevin_mfpt(lambda x: dU * (x * x - 1) ** 2, -1.0, 1.0, T)
    k = theory.kramers_rate(dU, 8 * dU, -4 * dU, T)
    rel = abs(exact * k.rate - 1)
    assert rel < 1.5 / barrier_over_t
    assert k.time == pytest.approx(1 / k.rate)


def test_kramers_error_shrinks_with_barrier():
    errs = []
    for ratio in (4.0, 8.0, 16.0):
        T = 1.0 / ratio
        exact = _langevin_mfpt(lambda x: (x * x - 1) ** 2, -1.0, 1.0, T)
        errs.append(abs(exact * theory.kramers_rate(1.0, 8.0, -4.0, T).rate - 1))
    assert errs[0] > errs[1] > errs[2]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: theory.metropolis_rates([0, 1], 0.0), "temperature"),
        (lambda: theory.metropolis_rates([0, 1], -1.0), "temperature"),
        (lambda: theory.sinai_scale(10.0, -1.0), "sigma"),
        (lambda: theory.fbm_scale(10.0, 1.0), "hurst"),
        (lambda: theory.fbm_scale(10.0, 0.0), "hurst"),
        (lambda: theory.check_dim(4), "dim"),
        (lambda: theory.check_dim(0), "dim"),
        (lambda: theory.kramers_rate(-1.0, 1.0, 1.0), "barrier"),
        (lambda: theory.kramers_rate(1.0, 1.0, 1.0, temperature=0), "temperature"),
        (lambda: theory.mfpt([1, 0], [1, 1]), "rates"),
        (lambda: theory.mfpt([1, 1], [1, 1, 1]), "length"),
        (lambda: theory.sinai_scale(0.5, 1.0), "t must"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_type_errors():
    with pytest.raises(TypeError, match="dim"):
        theory.check_dim(2.0)
    with pytest.raises(TypeError, match="temperature"):
        theory.check_temperature("hot")
    # the shared contract (diffusion.validation): strings are no longer read as numbers,
    # numpy scalars are the Python numbers they hold
    with pytest.raises(TypeError, match="temperature must be a real number, got str"):
        theory.check_temperature("1.0")
    with pytest.raises(TypeError, match="dim must be an integer, got bool"):
        theory.check_dim(True)
    assert theory.check_dim(np.int64(2)) == 2 and type(theory.check_dim(np.int64(2))) is int
    assert type(theory.check_sigma(np.float32(0.5))) is float


def test_overshoot_constant_is_the_discrete_maximum_deficit():
    """OVERSHOOT = lim (E max of Brownian motion on [0, n] - E max of its unit-step samples).

    Independent computation: Spitzer's identity gives E max_{k<=n} S_k = sum_k E S_k^+ / k
    = sum_k k^-1/2 / sqrt(2 pi) for Gaussian steps, and E max_{[0,n]} B = sqrt(2 n / pi);
    the difference at n = 1e7 (error O(n^-1/2) ~ 1e-4). Mutant caught: zeta(1/2) without the
    minus sign or the 1/sqrt(2 pi), or a 1/sqrt(pi) (0.824).
    """
    n = 10**7
    k = np.arange(1, n + 1, dtype=float)
    deficit = math.sqrt(2 * n / math.pi) - np.sum(k**-0.5) / math.sqrt(2 * math.pi)
    assert theory.OVERSHOOT == pytest.approx(deficit, abs=3e-4)
    assert theory.OVERSHOOT == pytest.approx(0.5825971579390107, rel=1e-12)


def test_finite_gamma_kesten_moments():
    """The shift Gamma -> Gamma + 2 OVERSHOOT sigma scales E|b| by its square, E b^2 by its 4th.

    Mutant caught: one overshoot instead of two (the maximum's and the minimum's).
    """
    g, s = np.array([13.8, 30.0, 69.08]), 2.0
    f = 1 + 2 * 0.5825971579390107 * s / g
    np.testing.assert_allclose(theory.kesten_effective_gamma(g, s), g * f, rtol=1e-14)
    np.testing.assert_allclose(theory.kesten_mean_abs_finite(g, s), 5 / 6 * f**2, rtol=1e-14)
    np.testing.assert_allclose(theory.kesten_second_moment_finite(g, s), 61 / 45 * f**4, rtol=1e-14)
    with pytest.raises(ValueError, match="gamma"):
        theory.kesten_effective_gamma(float("nan"), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        theory.kesten_mean_abs_finite(30.0, 0.0)
