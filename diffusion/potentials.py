"""Seeded random potentials on a lattice: Brownian (Sinai), fBm(H), bounded, Gaussian fields.

Every generator returns a :class:`Potential`: the values on a finite box of lattice sites
and the index of the origin, the site where walkers start by default. 1D potentials are
zero at the origin unless stated otherwise, so ``values`` reads as "potential relative to
the start".

Models
------
``brownian_potential``   U a random walk, Gaussian increments of variance sigma^2 (Sinai).
``rwre_environment``     i.i.d. hop probabilities p_i (random walk in random environment);
                         ``rwre_potential`` gives its potential V(k) = sum log(q_i / p_i).
``fbm_potential``        fractional Brownian motion with Hurst H, exact (circulant embedding).
``bounded_potential``    i.i.d. uniform values, or a moving average of them (finite range).
``gaussian_field``       a stationary Gaussian field in d = 1, 2, 3 dimensions by the spectral
                         method: short-range (Gaussian covariance) or fractional (increments
                         with std ~ r^H).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from diffusion.validation import check_array, check_choice, check_int, check_real

__all__ = [
    "Potential",
    "brownian_potential",
    "rwre_environment",
    "rwre_potential",
    "fbm_potential",
    "fgn_autocovariance",
    "bounded_potential",
    "gaussian_field",
    "field_covariance",
    "field_variogram",
]

SeedLike = int | np.random.SeedSequence | np.random.Generator | None


def _rng(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, bool):
        raise TypeError(f"seed must be an int, SeedSequence or Generator, got {seed!r}")
    if isinstance(seed, (Integral, np.random.SeedSequence, np.random.Generator)) or seed is None:
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, SeedSequence or Generator, got {seed!r}")


# ----------------------------------------------------------------------------- Potential
@dataclass(frozen=True)
class Potential:
    """A potential on a finite box of lattice sites, with the walkers' start.

    Parameters
    ----------
    values : array_like of float, shape (n_1, ..., n_d), d in {1, 2, 3}
        Potential energy of each site. ``+inf`` marks a wall (a site no walker can enter);
        ``-inf`` and NaN are refused.
    origin : int or tuple of int, optional
        Index of the start site; the centre ``tuple(n // 2 for n in shape)`` by default.
    kind : str
        Free-form label of the model (``'brownian'``, ``'fbm'``...).
    params : tuple of (str, value) pairs
        The generator's parameters, for records.

    Attributes
    ----------
    ndim : int
        Number of lattice dimensions.
    shape : tuple of int
        Number of sites along each axis.
    """

    values: np.ndarray
    origin: tuple[int, ...] | None = None
    kind: str = "custom"
    params: tuple = ()

    def __post_init__(self) -> None:
        try:
            v = np.array(self.values, dtype=float)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"values must be an array of numbers, got {type(self.values).__name__}"
            ) from exc
        if v.ndim not in (1, 2, 3):
            raise ValueError(f"values must have 1, 2 or 3 dimensions, got shape {v.shape}")
        if min(v.shape) < 1:
            raise ValueError(f"values must not be empty, got shape {v.shape}")
        if np.isnan(v).any() or np.isneginf(v).any():
            raise ValueError("values must be finite or +inf (a wall); found NaN or -inf")
        origin = self.origin
        if origin is None:
            origin = tuple(n // 2 for n in v.shape)
        elif isinstance(origin, Integral) and not isinstance(origin, bool):
            origin = (int(origin),)
        try:
            origin = tuple(int(o) for o in origin)
        except TypeError as exc:
            raise TypeError(
                f"origin must be an int or a tuple of ints, got {self.origin!r}"
            ) from exc
        if len(origin) != v.ndim or any(
            not 0 <= o < n for o, n in zip(origin, v.shape, strict=False)
        ):
            raise ValueError(
                f"origin must index a site of a box of shape {v.shape}, got {self.origin!r}"
            )
        if not np.isfinite(v[origin]):
            raise ValueError(f"the origin {origin} is a wall (+inf); walkers cannot start there")
        v.setflags(write=False)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "params", tuple(self.params))

    @property
    def ndim(self) -> int:
        return int(self.values.ndim)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def coordinates(self, axis: int = 0) -> np.ndarray:
        """Lattice coordinates relative to the origin along ``axis`` (``-origin .. n-1-origin``)."""
        return np.arange(self.shape[axis]) - self.origin[axis]

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _relative_to_origin(u: np.ndarray, origin: int, centered: bool) -> np.ndarray:
    return u - u[origin] if centered else u


# ----------------------------------------------------------------------------- 1D models
def brownian_potential(
    n_sites: int,
    sigma: float = 1.0,
    seed: SeedLike = 0,
    centered: bool = True,
    origin: int | None = None,
) -> Potential:
    """A Brownian (Sinai) potential: a random walk with Gaussian increments.

    ``U[i+1] - U[i]`` are i.i.d. normal with mean 0 and variance ``sigma**2``.

    Parameters
    ----------
    n_sites : int
        Number of lattice sites (>= 2).
    sigma : float
        Standard deviation of one increment (>= 0; 0 gives a flat potential).
    seed : int, SeedSequence or Generator
        Source of randomness.
    centered : bool
        Shift so that ``U[origin] = 0`` (default); otherwise ``U[0] = 0``.
    origin : int, optional
        Start site; the centre ``n_sites // 2`` by default.

    Returns
    -------
    Potential
    """
    n = check_int("n_sites", n_sites, 2)
    s = check_real("sigma", sigma, 0.0)
    inc = _rng(seed).normal(0.0, 1.0, n - 1) * s
    u = np.concatenate([[0.0], np.cumsum(inc)])
    pot = Potential(u, origin, "brownian", (("sigma", s),))
    return Potential(
        _relative_to_origin(u, pot.origin[0], centered), pot.origin, pot.kind, pot.params
    )


def rwre_environment(
    n_sites: int, sigma: float, seed: SeedLike = 0, drift: float = 0.0
) -> np.ndarray:
    """Hop-right probabilities ``p_i`` of a random walk in a random environment.

    ``log(q_i / p_i)`` (with ``q_i = 1 - p_i``) are i.i.d. normal with mean ``drift`` and
    standard deviation ``sigma``; ``drift = 0`` is Sinai's recurrent regime. Walkers start at
    the centre site ``n_sites // 2`` (the convention of :func:`diffusion.walk.simulate_rwre`).

    Parameters
    ----------
    n_sites : int
        Number of sites (>= 2).
    sigma : float
        Standard deviation of ``log(q/p)`` (>= 0).
    seed : int, SeedSequence or Generator
        Source of randomness.
    drift : float
        Mean of ``log(q/p)``.

    Returns
    -------
    numpy.ndarray of float, shape (n_sites,)
        ``p_i`` in (0, 1).
    """
    n = check_int("n_sites", n_sites, 2)
    s = check_real("sigma", sigma, 0.0)
    m = check_real("drift", drift)
    log_ratio = m + s * _rng(seed).normal(0.0, 1.0, n)
    return 1.0 / (1.0 + np.exp(log_ratio))  # p = 1 / (1 + q/p)


def rwre_potential(p: Sequence[float] | np.ndarray, origin: int | None = None) -> Potential:
    """Sinai's potential of an RWRE: ``V(k) - V(k-1) = log(q_k / p_k)``, ``V(origin) = 0``.

    With this ``V`` the chain is reversible with respect to ``pi_k = exp(-V(k)) / p_k`` and
    its conductances are exactly ``c_k = pi_k p_k = exp(-V(k))``.

    Parameters
    ----------
    p : array_like of float in (0, 1)
        Hop-right probabilities (e.g. from :func:`rwre_environment`).
    origin : int, optional
        Start site; the centre by default.

    Returns
    -------
    Potential
    """
    arr = _check_probabilities("p", p)
    log_ratio = np.log1p(-arr) - np.log(arr)
    v = np.concatenate([[0.0], np.cumsum(log_ratio[1:])])  # V(k) - V(0) = sum_{i=1}^k log(q_i/p_i)
    pot = Potential(v, origin, "rwre", ())
    return Potential(v - v[pot.origin[0]], pot.origin, "rwre", ())


def _check_probabilities(name: str, p: object) -> np.ndarray:
    arr = check_array(name, p, ndim=1, min_size=2, finite=False)  # NaN fails the (0, 1) test
    if not np.all((arr > 0) & (arr < 1)):
        bad = arr[~((arr > 0) & (arr < 1))][0]
        raise ValueError(f"{name} must lie in (0, 1), found {bad!r}")
    return arr


def fgn_autocovariance(lags: np.ndarray | Sequence[int], hurst: float) -> np.ndarray:
    """Autocovariance of unit fractional Gaussian noise: ``(|k+1|^2H - 2|k|^2H + |k-1|^2H) / 2``."""
    h = check_real("hurst", hurst, 0.0, 1.0, low_open=True, high_open=True)
    k = np.abs(np.asarray(lags, dtype=float))
    return 0.5 * (np.abs(k + 1) ** (2 * h) - 2 * k ** (2 * h) + np.abs(k - 1) ** (2 * h))


def fbm_potential(
    n_sites: int, hurst: float, sigma: float = 1.0, seed: SeedLike = 0, origin: int | None = None
) -> Potential:
    """Fractional Brownian motion on the lattice, sampled exactly by circulant embedding.

    The increments ``U[i+1] - U[i]`` are fractional Gaussian noise: stationary, variance
    ``sigma**2``, autocovariance :func:`fgn_autocovariance` (times ``sigma**2``), so that
    ``E (U[i+r] - U[i])**2 = sigma**2 r**(2H)`` exactly. The noise is the first half of a
    stationary Gaussian sequence on a cycle of twice the length whose covariance matrix is
    circulant (Davies & Harte 1987); its eigenvalues are non-negative for every H in (0, 1)
    (Dietrich & Newsam 1997), so the sample is exact up to rounding.

    Parameters
    ----------
    n_sites : int
        Number of sites (>= 2).
    hurst : float
        Hurst exponent H in (0, 1); 0.5 is the Brownian potential.
    sigma : float
        Standard deviation of one increment (>= 0).
    seed : int, SeedSequence or Generator
        Source of randomness.
    origin : int, optional
        Start site (``U[origin] = 0``); the centre by default.

    Returns
    -------
    Potential
    """
    n = check_int("n_sites", n_sites, 2)
    h = check_real("hurst", hurst, 0.0, 1.0, low_open=True, high_open=True)
    s = check_real("sigma", sigma, 0.0)
    m = n - 1  # number of increments
    size = 2 * m
    row = fgn_autocovariance(np.concatenate([np.arange(m + 1), np.arange(m - 1, 0, -1)]), h)
    eig = np.fft.fft(row).real
    if eig.min() < -1e-9 * eig.max():  # pragma: no cover - excluded by Dietrich & Newsam
        raise ArithmeticError(f"circulant embedding not non-negative for hurst={hurst!r}")
    eig = np.clip(eig, 0.0, None)
    rng = _rng(seed)
    z = rng.normal(size=size) + 1j * rng.normal(size=size)
    noise = np.fft.fft(np.sqrt(eig / size) * z)[:m].real * s
    u = np.concatenate([[0.0], np.cumsum(noise)])
    pot = Potential(u, origin, "fbm", (("hurst", h), ("sigma", s)))
    return Potential(u - u[pot.origin[0]], pot.origin, pot.kind, pot.params)


def bounded_potential(
    n_sites: int,
    amplitude: float,
    correlation_length: int = 0,
    seed: SeedLike = 0,
    origin: int | None = None,
) -> Potential:
    """A bounded short-range random potential with values in ``[0, amplitude]``.

    ``correlation_length = 0``: i.i.d. uniform on ``[0, amplitude]``. ``correlation_length =
    l > 0``: the moving average of ``l + 1`` consecutive i.i.d. uniforms, still in ``[0,
    amplitude]``, with correlation exactly ``max(0, 1 - |r| / (l + 1))`` -- zero beyond ``l``.

    Parameters
    ----------
    n_sites : int
        Number of sites (>= 2).
    amplitude : float
        Upper bound of the values (>= 0).
    correlation_length : int
        Range ``l`` of the correlations (>= 0).
    seed : int, SeedSequence or Generator
        Source of randomness.
    origin : int, optional
        Start site; the centre by default.

    Returns
    -------
    Potential
        Values are not shifted: the potential stays in ``[0, amplitude]``.
    """
    n = check_int("n_sites", n_sites, 2)
    a = check_real("amplitude", amplitude, 0.0)
    ell = check_int("correlation_length", correlation_length, 0)
    xi = _rng(seed).uniform(0.0, a, n + ell)
    if ell:
        c = np.concatenate([[0.0], np.cumsum(xi)])
        u = (c[ell + 1 :] - c[: -ell - 1]) / (ell + 1)
    else:
        u = xi
    return Potential(
        np.clip(u, 0.0, a), origin, "bounded", (("amplitude", a), ("correlation_length", ell))
    )


# ----------------------------------------------------------------------------- d-dim fields
def _wavenumbers(shape: tuple[int, ...]) -> list[np.ndarray]:
    return [2 * np.pi * np.fft.fftfreq(n) for n in shape]


def _lattice_k2(shape: tuple[int, ...]) -> np.ndarray:
    """Eigenvalues of minus the lattice Laplacian on a torus: sum_i 4 sin^2(k_i / 2)."""
    grids = np.meshgrid(*_wavenumbers(shape), indexing="ij", sparse=True)
    return sum(4.0 * np.sin(k / 2) ** 2 for k in grids)


def _min_image_r2(shape: tuple[int, ...]) -> np.ndarray:
    grids = np.meshgrid(
        *[np.minimum(np.arange(n), n - np.arange(n)) for n in shape], indexing="ij", sparse=True
    )
    return sum(g.astype(float) ** 2 for g in grids)


def _spectrum(shape: tuple[int, ...], kind: str, ell: float, hurst: float) -> np.ndarray:
    """Non-negative spectral weights on a torus; the field is ifft(sqrt(weights) * fft(white))."""
    if kind == "short":
        cov = np.exp(-_min_image_r2(shape) / (2 * ell**2))
        spec = np.fft.fftn(cov).real  # circulant embedding of the Gaussian covariance
        return np.clip(spec, 0.0, None)
    k2 = _lattice_k2(shape)
    d = len(shape)
    with np.errstate(divide="ignore"):
        spec = k2 ** (-(d + 2 * hurst) / 2)
    spec.flat[0] = 0.0  # the mean is not defined for a field with stationary increments
    return spec


def _torus_shape(
    shape: tuple[int, ...], kind: str, ell: float, padding: int | None
) -> tuple[int, ...]:
    if kind == "short":
        pad = int(math.ceil(6 * ell)) + 1
        return tuple(n + pad for n in shape)
    if padding is None:
        padding = 4 if len(shape) <= 2 else 2
    return tuple(padding * n for n in shape)


def _check_padding(padding: object) -> int | None:
    return None if padding is None else check_int("padding", padding, 1)


def field_covariance(
    shape: tuple[int, ...],
    kind: str = "short",
    correlation_length: float = 1.0,
    hurst: float = 0.5,
    padding: int | None = None,
) -> np.ndarray:
    """Exact covariance ``Cov(U[0], U[r])`` of :func:`gaussian_field` on its generating torus.

    For ``kind='short'`` this equals ``exp(-|r|^2 / (2 l^2))`` (times ``sigma**2``) for every
    separation inside the requested box. Returned for unit ``sigma``, indexed by the
    separation ``r`` (non-negative components) over the requested ``shape``.
    """
    shp, kind, ell, h = _check_field_args(shape, kind, correlation_length, hurst)
    torus = _torus_shape(shp, kind, ell, _check_padding(padding))
    spec = _spectrum(torus, kind, ell, h)
    cov = np.fft.ifftn(spec).real
    cov = cov / _normaliser(cov, kind)
    return cov[tuple(slice(0, n) for n in shp)]


def field_variogram(
    shape: tuple[int, ...],
    kind: str = "fractional",
    correlation_length: float = 1.0,
    hurst: float = 0.5,
    padding: int | None = None,
) -> np.ndarray:
    """Exact ``E (U[x + r] - U[x])^2`` of :func:`gaussian_field` (unit ``sigma``), by ``r``."""
    cov = field_covariance(shape, kind, correlation_length, hurst, padding)
    return 2.0 * (cov.flat[0] - cov)


def _normaliser(cov: np.ndarray, kind: str) -> float:
    """Scale fixing the variance (short) or the nearest-neighbour variogram (fractional) to 1."""
    if kind == "short":
        return float(cov.flat[0])
    return float(2.0 * (cov.flat[0] - cov[(1,) + (0,) * (cov.ndim - 1)]))


def _check_field_args(shape, kind, correlation_length, hurst):
    if isinstance(shape, Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shp = tuple(check_int("shape", n, 2) for n in shape)
    except TypeError as exc:
        raise TypeError(f"shape must be a tuple of integers, got {shape!r}") from exc
    if len(shp) not in (1, 2, 3):
        raise ValueError(
            f"shape must have 1, 2 or 3 dimensions, got {shape!r} (dimension {len(shp)})"
        )
    check_choice("kind", kind, ("short", "fractional"))
    ell = check_real("correlation_length", correlation_length, 0.0, low_open=True)
    h = check_real("hurst", hurst, 0.0, 1.0, low_open=True, high_open=True)
    return shp, kind, ell, h


def gaussian_field(
    shape: int | tuple[int, ...],
    kind: str = "short",
    correlation_length: float = 1.0,
    hurst: float = 0.5,
    sigma: float = 1.0,
    seed: SeedLike = 0,
    origin: tuple[int, ...] | None = None,
    padding: int | None = None,
) -> Potential:
    """A stationary Gaussian random field on a d-dimensional box (d = 1, 2, 3), spectral method.

    White noise is filtered in Fourier space on a torus larger than the box, and the box is
    cut out of it (so the field is not periodic).

    ``kind='short'``: covariance ``sigma^2 exp(-|r|^2 / (2 l^2))`` with ``l =
    correlation_length`` -- exact for every separation in the box (the filter is the
    discrete Fourier transform of the covariance on a torus padded by ``6 l``, where the
    wrapped-around covariance is below ``exp(-18)``).

    ``kind='fractional'``: a field with stationary increments, spectral density
    ``(sum_i 4 sin^2(k_i/2))^{-(d + 2H)/2}`` (the lattice form of ``|k|^{-(d+2H)}``) on a torus
    ``padding`` times the box along each axis, normalised so that ``E (U[x + e_1] - U[x])^2 =
    sigma^2``; then ``E (U[x + r] - U[x])^2 ~ sigma^2 |r|^{2H}`` for ``1 << |r| << box``. The
    spectral method is approximate at both ends: the exponent fitted to the variogram at
    r = 2..16 in 2D (box 128, padding 4) is 0.29, 0.48, 0.70 for H = 0.25, 0.5, 0.75; it
    drifts below H at large r when the torus is small (3D, box 32, padding 2: 0.53-0.66
    for H = 0.75). The
    exact variogram of what is sampled is :func:`field_variogram`; for exact 1D fBm use
    :func:`fbm_potential`. The field is shifted to vanish at the origin.

    Parameters
    ----------
    shape : int or tuple of int
        Sites per axis (each >= 2); its length is the dimension, 1 to 3.
    kind : {'short', 'fractional'}
        Covariance model.
    correlation_length : float
        ``l`` of the short-range model (> 0).
    hurst : float
        H in (0, 1) of the fractional model.
    sigma : float
        Standard deviation (short) or nearest-neighbour increment std (fractional), >= 0.
    seed : int, SeedSequence or Generator
        Source of randomness.
    origin : tuple of int, optional
        Start site; the centre by default.
    padding : int, optional
        Fractional model: torus size / box size per axis (default 4 in d <= 2, 2 in 3D).

    Returns
    -------
    Potential
    """
    shp, kind, ell, h = _check_field_args(shape, kind, correlation_length, hurst)
    s = check_real("sigma", sigma, 0.0)
    torus = _torus_shape(shp, kind, ell, _check_padding(padding))
    spec = _spectrum(torus, kind, ell, h)
    cov0 = np.fft.ifftn(spec).real
    scale = s / math.sqrt(_normaliser(cov0, kind))
    white = _rng(seed).normal(size=torus)
    field = np.fft.ifftn(np.sqrt(spec) * np.fft.fftn(white)).real * scale
    # ifftn(sqrt(S) fftn(w)) has covariance ifftn(S) (w white, unit variance)
    box = field[tuple(slice(0, n) for n in shp)]
    params = (("kind", kind), ("correlation_length", ell), ("hurst", h), ("sigma", s))
    pot = Potential(box, origin, f"gaussian_{kind}", params)
    if kind == "fractional":
        pot = Potential(box - box[pot.origin], pot.origin, pot.kind, pot.params)
    return pot
