"""Exact results for walkers on 1D potentials: the ground truth the simulations are checked against.

Conventions
-----------
A lattice walker at temperature ``T`` on a potential ``U_i`` hops with Metropolis rates
``w(i -> i±1) = 1/2 min(1, exp(-(U_{i±1} - U_i)/T))`` (a free walker has ``MSD = t``, i.e.
``D = 1/2`` in the convention ``MSD = 2 D t``). Detailed balance holds with weights
``pi_i = exp(-U_i/T)`` and bond conductances ``c_i = pi_i w(i -> i+1)``.

Sinai normalisation
-------------------
Write ``V = U/T`` for the potential in units of the temperature and ``sigma^2`` for the
variance of one increment ``V_{i+1} - V_i`` (so ``sigma = s/T`` for a potential ``U`` whose
increments have standard deviation ``s``). Then ``sigma^2 x_t / (log t)^2`` converges in law
to Kesten's variable ``b`` (:data:`kesten`), whose density is
``p(b) = (2/pi) sum_k (-1)^k/(2k+1) exp(-(2k+1)^2 pi^2 |b|/8)``,
with ``E|b| = 5/6`` and ``E b^2 = 61/45``. In this normalisation ``p(b) = P(tau > |b|)/2``
where ``tau`` is the exit time of a standard Brownian motion from ``(-1, 1)``, so
``E|b| = E tau^2 / 2`` and ``E b^2 = E tau^3 / 3``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from diffusion.validation import check_array, check_int, check_real

__all__ = [
    "check_temperature",
    "check_sigma",
    "check_hurst",
    "check_dim",
    "KESTEN_MEAN_ABS",
    "KESTEN_SECOND_MOMENT",
    "metropolis_rates",
    "log_mfpt",
    "mfpt",
    "splitting_probability",
    "effective_diffusion",
    "effective_diffusion_rates",
    "zwanzig_diffusion",
    "wiener_bounds",
    "kesten",
    "kesten_pdf",
    "kesten_cdf",
    "kesten_abs_cdf",
    "OVERSHOOT",
    "kesten_effective_gamma",
    "kesten_mean_abs_finite",
    "kesten_second_moment_finite",
    "sinai_scale",
    "fbm_scale",
    "barrier_growth_distance",
    "KramersRate",
    "kramers_rate",
    "arrhenius_time",
]

KESTEN_MEAN_ABS = 5.0 / 6.0
"""``E|b|`` of Kesten's limit law, normalisation of the module docstring."""

KESTEN_SECOND_MOMENT = 61.0 / 45.0
"""``E b^2`` of Kesten's limit law, normalisation of the module docstring."""


# ----------------------------------------------------------------------------- validation
def check_temperature(temperature: float, name: str = "temperature") -> float:
    """Return ``temperature`` as a float: ``TypeError`` unless a real number, ``ValueError``
    unless finite and > 0 (the :mod:`diffusion.validation` contract)."""
    return check_real(name, temperature, 0.0, low_open=True)


def check_hurst(hurst: float, name: str = "hurst") -> float:
    """Return ``hurst`` as a float, raising ``ValueError`` unless in the open interval (0, 1)."""
    return check_real(name, hurst, 0.0, 1.0, low_open=True, high_open=True)


def check_sigma(sigma: float, name: str = "sigma", *, allow_zero: bool = True) -> float:
    """Return ``sigma`` as a float; ``ValueError`` if negative (or zero when not allowed)."""
    return check_real(name, sigma, 0.0, low_open=not allow_zero)


def check_dim(dim: int, name: str = "dim") -> int:
    """Return ``dim`` as an int: ``TypeError`` unless an integer, ``ValueError`` unless 1-3."""
    return check_int(name, dim, 1, 3)


def _rates(right: object, left: object) -> tuple[np.ndarray, np.ndarray]:
    r = check_array("right", right, ndim=1, min_size=2)
    lft = check_array("left", left, ndim=1, min_size=2)
    if r.shape != lft.shape:
        raise ValueError(f"right has length {r.size} but left has length {lft.size}")
    if np.any(r <= 0) or np.any(lft <= 0):
        bad = r[r <= 0] if np.any(r <= 0) else lft[lft <= 0]
        raise ValueError(f"rates must be > 0 (the chain must be irreducible), found {bad[0]!r}")
    return r, lft


# ----------------------------------------------------------------------------- chains
def metropolis_rates(potential: object, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Metropolis hop rates of a walker on ``potential`` at ``temperature``.

    Parameters
    ----------
    potential : array_like, shape (n,)
        Site energies ``U_0 .. U_{n-1}``.
    temperature : float
        ``T > 0``.

    Returns
    -------
    right, left : numpy.ndarray, shape (n,)
        ``right[i] = w(i -> i+1)``, ``left[i] = w(i -> i-1)``; the rates across the ends
        use the periodic neighbour (``U_n = U_0``), as :func:`effective_diffusion` needs.
    """
    T = check_temperature(temperature)
    u = check_array("potential", potential, ndim=1, min_size=2)
    up = np.roll(u, -1) - u
    down = np.roll(u, 1) - u
    return 0.5 * np.exp(-np.clip(up, 0, None) / T), 0.5 * np.exp(-np.clip(down, 0, None) / T)


def _log_weights(right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """log pi_i of the chain on 0..N from detailed balance, pi_0 = 1."""
    return np.concatenate([[0.0], np.cumsum(np.log(right[:-1]) - np.log(left[1:]))])


def log_mfpt(right: object, left: object) -> np.ndarray:
    """Logarithm of the mean first-passage time to site ``N`` of a birth-death chain.

    The chain lives on ``0..N`` (``N = len(right) - 1``), reflects at 0 (``left[0]`` is not
    used) and is absorbed at ``N`` (``right[N]``, ``left[N]`` are not used). The exact sum is
    ``T_i = sum_{k=i}^{N-1} (1/c_k) sum_{j<=k} pi_j`` with ``c_k = pi_k right[k]``; it is
    evaluated in log space so that barriers of hundreds of ``T`` do not overflow.

    Parameters
    ----------
    right, left : array_like, shape (N+1,)
        Positive hop rates ``w(i -> i+1)`` and ``w(i -> i-1)``.

    Returns
    -------
    numpy.ndarray, shape (N,)
        ``log T_i`` for starts ``i = 0 .. N-1`` (``T_N = 0`` is left out).
    """
    r, lft = _rates(right, left)
    log_pi = _log_weights(r, lft)
    log_cum_pi = np.logaddexp.accumulate(log_pi[:-1])
    terms = log_cum_pi - (log_pi[:-1] + np.log(r[:-1]))
    # reverse cumulative log-sum-exp: T_i sums the terms k >= i
    return np.logaddexp.accumulate(terms[::-1])[::-1]


def mfpt(right: object, left: object) -> np.ndarray:
    """Mean first-passage times to site ``N``; ``exp`` of :func:`log_mfpt` (same arguments)."""
    return np.exp(log_mfpt(right, left))


def splitting_probability(right: object, left: object) -> np.ndarray:
    """Probability to reach ``N`` before ``0`` from each site of a birth-death chain on ``0..N``.

    ``P_i = sum_{k<i} 1/c_k / sum_{k<N} 1/c_k`` with ``c_k = pi_k right[k]``.

    Parameters
    ----------
    right, left : array_like, shape (N+1,)
        Positive hop rates; the end rates are not used.

    Returns
    -------
    numpy.ndarray, shape (N+1,)
        ``P_0 = 0``, ``P_N = 1``.
    """
    r, lft = _rates(right, left)
    log_pi = _log_weights(r, lft)
    log_resist = -(log_pi[:-1] + np.log(r[:-1]))
    log_cum = np.logaddexp.accumulate(log_resist)
    return np.concatenate([[0.0], np.exp(log_cum - log_cum[-1])])


def effective_diffusion_rates(right: object, left: object) -> float:
    """Exact long-time diffusion constant of a periodic reversible nearest-neighbour chain.

    One period holds sites ``0..L-1``; ``right[i]`` is the rate ``i -> i+1`` and ``left[i]``
    the rate ``i -> i-1`` (indices mod ``L``). With ``pi`` from detailed balance and
    ``c_i = pi_i right[i]``, ``D = 1 / (<1/c> <pi>)`` (averages over one period), in the
    convention ``Var x_t ~ 2 D t``. The same expression with sample averages is the
    effective constant of a stationary ergodic (e.g. i.i.d. bounded) environment.

    Raises
    ------
    ValueError
        If the rates are not reversible around the ring (``prod right = prod left``):
        such a chain drifts and has no diffusive limit of this form.
    """
    r, lft = _rates(right, left)
    loop = float(np.sum(np.log(r)) - np.sum(np.log(lft)))
    if abs(loop) > 1e-9 * max(1.0, float(np.sum(np.abs(np.log(r))))):
        raise ValueError(
            f"rates are not reversible around the period (log prod right/left = {loop:.3g}): "
            "the chain drifts"
        )
    log_pi = _log_weights(r, lft)
    shift = log_pi.max()
    pi = np.exp(log_pi - shift)
    inv_c = np.exp(-(log_pi - shift)) / r
    return float(1.0 / (np.mean(inv_c) * np.mean(pi)))


def effective_diffusion(potential: object, temperature: float = 1.0) -> float:
    """Exact ``D_eff`` of a Metropolis walker on a periodic (or stationary bounded) potential.

    ``potential`` is one period ``U_0..U_{L-1}`` (or a long sample of an i.i.d. bounded
    potential, whose sample averages then estimate the ergodic ones). Uses
    ``D = 1/(<1/c><pi>)`` with ``c_i = 1/2 exp(-max(U_i, U_{i+1})/T)`` and
    ``pi_i = exp(-U_i/T)``; a flat potential gives ``1/2``.
    """
    right, left = metropolis_rates(potential, temperature)
    return effective_diffusion_rates(right, left)


def wiener_bounds(potential: object, temperature: float = 1.0) -> tuple[float, float]:
    """Bounds on ``D_eff`` of a Metropolis walker on a potential in d = 1, 2, 3 dimensions.

    The walker picks one of the ``2d`` neighbours with probability ``1/(2d)`` and accepts
    with ``min(1, exp(-dU/T))``; bond conductances are ``c = exp(-max(U_i, U_j)/T)/(2d)`` and
    site weights ``pi = exp(-U/T)``. The effective conductivity of the bond network lies
    between the harmonic and the arithmetic mean of the conductances along one axis (Wiener's
    series/parallel bounds), so ``1/(<1/c> <pi>) <= D_eff <= <c>/<pi>`` in the convention
    ``MSD = 2 d D t`` (a flat potential gives ``1/(2d)`` for both). In 1D the lower bound is
    exact (:func:`effective_diffusion`).

    Parameters
    ----------
    potential : array_like, 1 to 3 dimensions
        A sample of a stationary potential (bonds inside the array are used, axis 0).
    temperature : float
        ``T > 0``.

    Returns
    -------
    (lower, upper) : tuple of float
    """
    T = check_temperature(temperature)
    try:
        u = np.asarray(potential, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"potential must be array-like of numbers, got {type(potential).__name__}"
        ) from exc
    check_dim(u.ndim, "potential.ndim")
    if u.shape[0] < 2 or not np.all(np.isfinite(u)):
        raise ValueError(
            f"potential must be finite with at least 2 sites along axis 0, got shape {u.shape}"
        )
    v = u / T
    shift = v.min()
    barrier = np.maximum(v[1:], v[:-1]) - shift
    c = np.exp(-barrier) / (2 * u.ndim)
    pi = np.exp(-(v - shift))
    lower = 1.0 / (np.mean(1.0 / c) * np.mean(pi))
    upper = np.mean(c) / np.mean(pi)
    return float(lower), float(upper)


def zwanzig_diffusion(
    potential_samples: object, temperature: float = 1.0, d0: float = 1.0
) -> float:
    """Lifson--Jackson/Zwanzig constant ``D0 / (<exp(U/T)> <exp(-U/T)>)`` of a 1D continuum.

    Parameters
    ----------
    potential_samples : array_like
        ``U`` sampled uniformly over one period (or over a long stretch of a stationary
        potential).
    temperature : float
        ``T > 0``.
    d0 : float
        Bare diffusion constant, ``> 0``.
    """
    T = check_temperature(temperature)
    d0 = check_real("d0", d0, 0.0, low_open=True)
    u = check_array("potential_samples", potential_samples, ndim=1) / T
    shift = u.mean()
    return float(d0 / (np.mean(np.exp(u - shift)) * np.mean(np.exp(shift - u))))


# ----------------------------------------------------------------------------- Kesten's law
_K = np.arange(60)
_ODD = 2 * _K + 1
_SIGN = np.where(_K % 2 == 0, 1.0, -1.0)
_N_IMAGES = np.arange(-8, 9)


def _exit_survival_series(x: np.ndarray) -> np.ndarray:
    """P(tau > x) for Brownian exit from (-1, 1): eigenfunction series (good for x >~ 0.1)."""
    x = np.asarray(x, float)[..., None]
    return (4 / np.pi) * np.sum(_SIGN / _ODD * np.exp(-(_ODD**2) * np.pi**2 * x / 8), axis=-1)


def _exit_survival_images(x: np.ndarray) -> np.ndarray:
    """P(tau > x) by the method of images (good for small x)."""
    x = np.asarray(x, float)[..., None]
    s = np.sqrt(np.maximum(x, 1e-300))
    n = _N_IMAGES
    sign = np.where(n % 2 == 0, 1.0, -1.0)
    return np.sum(sign * (special.ndtr((1 - 2 * n) / s) - special.ndtr((-1 - 2 * n) / s)), axis=-1)


def _exit_survival(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, float)
    return np.where(
        x < 0.2,
        _exit_survival_images(np.minimum(x, 0.2)),
        _exit_survival_series(np.maximum(x, 0.2)),
    )


def _exit_survival_integral(x: np.ndarray) -> np.ndarray:
    """int_0^x P(tau > u) du = P(|b| <= x)."""
    x = np.asarray(x, float)
    xs = np.maximum(x, 0.005)[..., None]
    series = 1 - (32 / np.pi**3) * np.sum(
        _SIGN / _ODD**3 * np.exp(-(_ODD**2) * np.pi**2 * xs / 8), axis=-1
    )
    # below 0.005, 1 - P(tau > u) < 4 Phi(-14) ~ 1e-44: the integral is x to double precision
    return np.where(x < 0.005, x, series)


def kesten_pdf(b: object) -> np.ndarray:
    """Density of Kesten's limit law of ``sigma^2 x_t / (log t)^2`` (see the module docstring)."""
    b = np.asarray(b, float)
    return 0.5 * _exit_survival(np.abs(b))


def kesten_abs_cdf(x: object) -> np.ndarray:
    """``P(|b| <= x)`` for Kesten's variable ``b``; 0 for ``x <= 0``."""
    x = np.asarray(x, float)
    return np.where(x <= 0, 0.0, _exit_survival_integral(np.maximum(x, 0.0)))


def kesten_cdf(b: object) -> np.ndarray:
    """``P(b' <= b)`` for Kesten's variable (symmetric about 0); usable by ``kstest``."""
    b = np.asarray(b, float)
    return 0.5 + 0.5 * np.sign(b) * _exit_survival_integral(np.abs(b))


class _KestenGen(stats.rv_continuous):
    """Kesten's limit law of ``sigma^2 x_t / (log t)^2`` for Sinai's walk.

    Normalisation: ``sigma^2`` is the variance of one increment of ``V = U/T`` and ``t`` is
    measured in units of the inverse attempt rate; ``E|b| = 5/6``, ``E b^2 = 61/45``.
    """

    def _pdf(self, x: np.ndarray) -> np.ndarray:
        return kesten_pdf(x)

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return kesten_cdf(x)


kesten = _KestenGen(name="kesten")
"""Kesten's law as a ``scipy.stats`` distribution: ``kstest(samples, kesten.cdf)``."""


# ----------------------------------------------------------------------------- finite Gamma
OVERSHOOT = float(-special.zeta(0.5) / math.sqrt(2.0 * math.pi))
"""``-zeta(1/2)/sqrt(2 pi) = 0.5826``: the mean overshoot, in units of the step's standard
deviation, of a Gaussian random walk over a distant level (Siegmund's constant); equally how
far the maximum of a Brownian path sampled at unit steps falls below the continuous one
(Asmussen, Glynn & Pitman 1995)."""


def kesten_effective_gamma(gamma: object, sigma: float) -> np.ndarray:
    """The renormalisation scale that a lattice landscape at threshold ``gamma`` stands for.

    A lattice potential with Gaussian increments of standard deviation ``sigma`` is a
    Brownian path seen at integer sites, and its extrema fall short of the path's by
    :data:`OVERSHOOT` ``* sigma`` on average. A swing of at least ``Gamma`` between lattice
    extrema (a maximum and a minimum) is therefore a swing of about
    ``Gamma + 2 OVERSHOOT sigma`` of the continuous path, whose valleys obey Kesten's law
    exactly at every scale. So the renormalised walker at ``Gamma = log t`` sits where the
    continuum one sits at ``Gamma_eff = Gamma + 2 OVERSHOOT sigma``, and
    ``sigma^2 x / Gamma_eff^2`` follows Kesten's law up to ``O((sigma/Gamma)^2)``.

    Parameters
    ----------
    gamma : array_like
        ``log t``, ``> 0``.
    sigma : float
        Increment standard deviation of ``V = U/T``, ``> 0``.
    """
    s = check_sigma(sigma, allow_zero=False)
    g = check_array("gamma", gamma, min_size=0)
    if np.any(g <= 0):
        raise ValueError(f"gamma must be > 0, got {gamma!r}")
    return g + 2.0 * OVERSHOOT * s


def _overshoot_factor(gamma: object, sigma: float) -> np.ndarray:
    return kesten_effective_gamma(gamma, sigma) / np.asarray(gamma, float)


def kesten_mean_abs_finite(gamma: object, sigma: float) -> np.ndarray:
    """``E sigma^2 |x| / Gamma^2`` of the renormalised lattice walker at finite ``Gamma``.

    ``(5/6) (1 + 2 OVERSHOOT sigma/Gamma)^2`` (see :func:`kesten_effective_gamma`).
    """
    return KESTEN_MEAN_ABS * _overshoot_factor(gamma, sigma) ** 2


def kesten_second_moment_finite(gamma: object, sigma: float) -> np.ndarray:
    """``E (sigma^2 x / Gamma^2)^2`` at finite ``Gamma``.

    ``(61/45) (1 + 2 OVERSHOOT sigma/Gamma)^4`` (see :func:`kesten_effective_gamma`).
    """
    return KESTEN_SECOND_MOMENT * _overshoot_factor(gamma, sigma) ** 4


# ----------------------------------------------------------------------------- scaling laws
def _log_times(t: object) -> np.ndarray:
    arr = check_array("t", t, min_size=0)
    if np.any(arr <= 1):
        raise ValueError(f"t must be finite and > 1, got {t!r}")
    return np.log(arr)


def barrier_growth_distance(
    t: object, gamma: float, temperature: float = 1.0, scale: float = 1.0
) -> np.ndarray:
    """Distance reached when the largest barrier within distance ``d`` grows like ``scale d^gamma``.

    Escaping to distance ``d`` takes ``t ~ exp(scale d^gamma / T)``, so
    ``d ~ (T log t / scale)^(1/gamma)``. Brownian potential: ``gamma = 1/2`` gives Sinai's
    ``(log t)^2``; ``gamma = 1`` gives the ``log t`` of the seed.

    Parameters
    ----------
    t : array_like
        Times ``> 1``.
    gamma : float
        Barrier exponent ``> 0``.
    temperature : float
        ``T > 0``.
    scale : float
        Barrier prefactor ``> 0``.
    """
    g = check_real("gamma", gamma, 0.0, low_open=True)
    T = check_temperature(temperature)
    c = check_real("scale", scale, 0.0, low_open=True)
    return (T * _log_times(t) / c) ** (1.0 / g)


def sinai_scale(t: object, sigma: float) -> np.ndarray:
    """Sinai's length ``(log t)^2 / sigma^2`` (``sigma`` as in the module docstring, ``> 0``).

    ``x_t`` divided by this converges to Kesten's ``b``; ``E|x_t| ~ (5/6) (log t)^2/sigma^2``.
    """
    s = check_sigma(sigma, allow_zero=False)
    return _log_times(t) ** 2 / s**2


def fbm_scale(t: object, hurst: float, sigma: float = 1.0, temperature: float = 1.0) -> np.ndarray:
    """Scaling length ``(T log t / sigma)^(1/H)`` of a walker on an fBm potential.

    ``std(U(x) - U(y)) = sigma |x - y|^H``; barriers within ``d`` grow like ``sigma d^H``.
    The exponent ``1/H`` follows from scaling; the prefactor of order one is not given here
    (it is measured). ``H = 1/2`` recovers :func:`sinai_scale` with ``sigma -> sigma/T``.
    """
    h = check_hurst(hurst)
    s = check_sigma(sigma, allow_zero=False)
    return barrier_growth_distance(t, h, temperature, s)


# ----------------------------------------------------------------------------- escape times
@dataclass(frozen=True)
class KramersRate:
    """Kramers' escape over one barrier (overdamped, unit mobility).

    Attributes
    ----------
    rate : float
        ``sqrt(U''(min) |U''(max)|) / (2 pi) exp(-barrier/T)``.
    time : float
        ``1 / rate``: the mean time to cross the barrier and settle on the far side.
    barrier, curvature_min, curvature_max, temperature : float
        The inputs.
    """

    rate: float
    time: float
    barrier: float
    curvature_min: float
    curvature_max: float
    temperature: float


def kramers_rate(
    barrier: float, curvature_min: float, curvature_max: float, temperature: float = 1.0
) -> KramersRate:
    """Kramers' rate of escape from a well of an overdamped Langevin dynamics.

    ``dx = -U'(x) dt + sqrt(2T) dW``; accurate when ``barrier >> T``.

    Parameters
    ----------
    barrier : float
        ``U(max) - U(min) >= 0``.
    curvature_min : float
        ``U''`` at the well bottom, ``> 0``.
    curvature_max : float
        ``U''`` at the barrier top (its absolute value is used; must be non-zero).
    temperature : float
        ``T > 0``.
    """
    dU = check_real("barrier", barrier, 0.0)
    k_min = check_real("curvature_min", curvature_min, 0.0, low_open=True)
    k_max = abs(check_real("curvature_max", curvature_max))
    if k_max == 0:
        raise ValueError(f"curvature_max must be non-zero, got {curvature_max!r}")
    T = check_temperature(temperature)
    rate = math.sqrt(k_min * k_max) / (2 * math.pi) * math.exp(-dU / T)
    return KramersRate(
        rate, 1.0 / rate if rate > 0 else math.inf, dU, k_min, float(curvature_max), T
    )


def arrhenius_time(
    barrier: object, temperature: float = 1.0, attempt_rate: float = 1.0
) -> np.ndarray:
    """Arrhenius escape time ``exp(barrier / T) / attempt_rate``."""
    T = check_temperature(temperature)
    nu = check_real("attempt_rate", attempt_rate, 0.0, low_open=True)
    dU = check_array("barrier", barrier, min_size=0)
    return np.exp(dU / T) / nu
