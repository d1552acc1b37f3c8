"""The shared ruler: traces, log-spaced schedules, growth-law fits and the gamma estimate.

Every layer of the package (walkers on random potentials, gradient descent on separable
data, deep networks) reports its motion as a :class:`Trace` -- integer times and the
distance travelled from the start -- and every claim of the form "it grows like log t" is
made by :func:`fit_growth`, which fits competing laws by least squares and selects among
them with an information criterion. Nothing here knows which layer produced a trace.

Laws
----
``log``          d = a + b log t
``polylog``      d = a + b (log t)^k           (k fitted, k > 0)
``power``        d = a t^nu
``power_offset`` d = a + b t^nu

All laws are fitted to the same response (the distance itself, additive errors), so their
residual sums of squares, and hence AIC/BIC, are directly comparable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

__all__ = [
    "Trace",
    "log_schedule",
    "LAWS",
    "LawFit",
    "GrowthFit",
    "fit_law",
    "fit_growth",
    "local_slope",
    "GammaEstimate",
    "estimate_gamma",
]


# ----------------------------------------------------------------------------- validation
def _as_1d_finite(name: str, values: object, dtype: type = float) -> np.ndarray:
    """Return ``values`` as a 1-D finite array or raise ``ValueError`` naming ``name``."""
    try:
        arr = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be array-like of numbers, got {type(values).__name__}"
        ) from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)][0]
        raise ValueError(f"{name} must be finite, found {bad!r}")
    return arr


# ----------------------------------------------------------------------------- Trace
@dataclass(frozen=True)
class Trace:
    """Distance from the start against integer time, with optional named extras.

    Parameters
    ----------
    t : array_like of int
        Strictly increasing non-negative integer times (steps, iterations, simulated time).
    distance : array_like of float
        ``||x_t - x_0||`` at each time; same length as ``t``.
    extras : mapping of str to array_like, optional
        Further per-time quantities (loss, accuracy, per-layer distances...). Each array's
        first axis has the length of ``t``; trailing axes are allowed (e.g. weights).

    Raises
    ------
    ValueError
        If ``t`` is empty, not strictly increasing, negative or non-integer; if ``distance``
        is non-finite or of another length; if an extra has the wrong length.
    """

    t: np.ndarray
    distance: np.ndarray
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t_float = _as_1d_finite("t", self.t)
        if np.any(t_float != np.round(t_float)):
            raise ValueError("t must hold integer times")
        t = t_float.astype(np.int64)
        if np.any(t < 0):
            raise ValueError(f"t must be non-negative, found {t.min()}")
        if t.size > 1 and np.any(np.diff(t) <= 0):
            i = int(np.argmax(np.diff(t) <= 0))
            raise ValueError(
                f"t must be strictly increasing, found t[{i}]={t[i]} >= t[{i + 1}]={t[i + 1]}"
            )
        d = _as_1d_finite("distance", self.distance)
        if d.shape != t.shape:
            raise ValueError(f"distance has length {d.size} but t has length {t.size}")
        extras: dict[str, np.ndarray] = {}
        for key, value in dict(self.extras).items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"extras keys must be non-empty strings, got {key!r}")
            arr = np.asarray(value)
            if arr.ndim == 0 or arr.shape[0] != t.size:
                raise ValueError(
                    f"extras[{key!r}] has shape {arr.shape}; "
                    f"its first axis must have length {t.size}"
                )
            extras[key] = arr
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "distance", d)
        object.__setattr__(self, "extras", extras)

    def __len__(self) -> int:
        return int(self.t.size)

    def window(self, t_min: float | None = None, t_max: float | None = None) -> Trace:
        """Return the sub-trace with ``t_min <= t <= t_max`` (either bound optional)."""
        mask = np.ones(self.t.size, dtype=bool)
        if t_min is not None:
            mask &= self.t >= t_min
        if t_max is not None:
            mask &= self.t <= t_max
        if not mask.any():
            raise ValueError(
                f"window [{t_min}, {t_max}] holds no point of a trace "
                f"spanning [{self.t[0]}, {self.t[-1]}]"
            )
        return Trace(
            self.t[mask], self.distance[mask], {k: v[mask] for k, v in self.extras.items()}
        )

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Flatten to arrays ``t``, ``distance``, ``extra.<name>`` (for ``.npz`` files)."""
        out = {f"{prefix}t": self.t, f"{prefix}distance": self.distance}
        for key, value in self.extras.items():
            out[f"{prefix}extra.{key}"] = value
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> Trace:
        """Inverse of :meth:`to_arrays`."""
        if f"{prefix}t" not in arrays or f"{prefix}distance" not in arrays:
            raise KeyError(
                f"arrays hold no trace with prefix {prefix!r}: keys are {sorted(arrays)}"
            )
        start = f"{prefix}extra."
        extras = {k[len(start) :]: np.asarray(v) for k, v in arrays.items() if k.startswith(start)}
        return cls(
            np.asarray(arrays[f"{prefix}t"]), np.asarray(arrays[f"{prefix}distance"]), extras
        )


# ----------------------------------------------------------------------------- schedules
def log_schedule(t_max: float, per_decade: int = 10, start: int = 1) -> np.ndarray:
    """Unique increasing integer times from ``start`` to ``t_max``, log-spaced.

    Parameters
    ----------
    t_max : float
        Last time (included, rounded down to an integer); at least ``max(start, 1)``.
    per_decade : int
        Points per decade of t before rounding; every integer is kept where the spacing
        would be below one.
    start : {0, 1}
        First time. ``0`` prepends the initial point to the log-spaced times from 1.

    Returns
    -------
    numpy.ndarray of int64
        Strictly increasing, ``out[0] == start`` and ``out[-1] == floor(t_max)``.
    """
    if (
        isinstance(per_decade, bool)
        or not isinstance(per_decade, (int, np.integer))
        or per_decade < 1
    ):
        raise ValueError(f"per_decade must be a positive integer, got {per_decade!r}")
    if start not in (0, 1):
        raise ValueError(f"start must be 0 or 1, got {start!r}")
    try:
        t_max_f = float(t_max)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"t_max must be a number, got {t_max!r}") from exc
    if not math.isfinite(t_max_f) or t_max_f < 1:
        raise ValueError(f"t_max must be a finite number >= 1, got {t_max!r}")
    if t_max_f >= 2**62:
        raise ValueError(f"t_max must be below 2**62 to be held as int64, got {t_max!r}")
    last = int(math.floor(t_max_f))
    n = max(int(math.ceil(math.log10(last) * per_decade)) + 1, 2)
    grid = np.floor(np.logspace(0.0, math.log10(last), n)).astype(np.int64)
    # below t = 1/(r - 1), with r the ratio between grid points, the spacing is under one:
    # keep every integer there
    dense = np.arange(1, min(last, int(math.ceil(1.0 / (10 ** (1.0 / per_decade) - 1.0)))) + 1)
    grid = np.unique(np.concatenate([dense, grid, [last]]))
    grid = grid[(grid >= 1) & (grid <= last)]
    if start == 0:
        grid = np.concatenate([[0], grid])
    return grid.astype(np.int64)


# ----------------------------------------------------------------------------- laws
@dataclass(frozen=True)
class _Law:
    name: str
    params: tuple[str, ...]
    formula: str
    func: Callable[..., np.ndarray]


def _log_law(t, a, b):
    return a + b * np.log(t)


def _polylog_law(t, a, b, k):
    return a + b * np.log(t) ** k


def _power_law(t, a, nu):
    return a * t**nu


def _power_offset_law(t, a, b, nu):
    return a + b * t**nu


LAWS: dict[str, _Law] = {
    "log": _Law("log", ("a", "b"), "a + b log t", _log_law),
    "polylog": _Law("polylog", ("a", "b", "k"), "a + b (log t)^k", _polylog_law),
    "power": _Law("power", ("a", "nu"), "a t^nu", _power_law),
    "power_offset": _Law("power_offset", ("a", "b", "nu"), "a + b t^nu", _power_offset_law),
}


@dataclass(frozen=True)
class LawFit:
    """One growth law fitted by least squares.

    Attributes
    ----------
    law : str
        Key in :data:`LAWS`.
    formula : str
        Human-readable form of the law.
    params, stderr : dict of str to float
        Best-fit parameters and their standard errors (from the Jacobian at the optimum).
    rss : float
        Residual sum of squares.
    n : int
        Number of points fitted.
    aic, bic : float
        Gaussian-likelihood information criteria, ``n log(rss/n) + 2p`` and ``... + p log n``.
    t_range : tuple of int
        First and last time fitted.
    """

    law: str
    formula: str
    params: dict[str, float]
    stderr: dict[str, float]
    rss: float
    n: int
    aic: float
    bic: float
    t_range: tuple[int, int]

    def predict(self, t: Sequence[float] | np.ndarray) -> np.ndarray:
        """Evaluate the fitted law at times ``t``."""
        return LAWS[self.law].func(np.asarray(t, dtype=float), *self.params.values())

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "law": self.law,
            "formula": self.formula,
            "params": dict(self.params),
            "stderr": dict(self.stderr),
            "rss": self.rss,
            "n": self.n,
            "aic": self.aic,
            "bic": self.bic,
            "t_range": list(self.t_range),
        }

    def __str__(self) -> str:
        parts = ", ".join(f"{k}={v:.4g}±{self.stderr[k]:.2g}" for k, v in self.params.items())
        return f"{self.formula}: {parts} (AIC {self.aic:.1f}, BIC {self.bic:.1f})"


@dataclass(frozen=True)
class GrowthFit:
    """Model selection among growth laws.

    Attributes
    ----------
    best : LawFit
        The law with the smallest criterion.
    fits : dict of str to LawFit
        Every law that could be fitted.
    criterion : {'aic', 'bic'}
        The criterion used for selection.
    failed : dict of str to str
        Laws whose fit failed, with the reason.
    """

    best: LawFit
    fits: dict[str, LawFit]
    criterion: str
    failed: dict[str, str] = field(default_factory=dict)

    def delta(self, law: str) -> float:
        """Criterion of ``law`` minus that of the best law (0 for the best; larger is worse)."""
        return getattr(self.fits[law], self.criterion) - getattr(self.best, self.criterion)

    def beats(self, law: str, other: str) -> bool:
        """Whether ``law`` has a strictly smaller criterion than ``other``."""
        return getattr(self.fits[law], self.criterion) < getattr(self.fits[other], self.criterion)

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "best": self.best.law,
            "criterion": self.criterion,
            "fits": {k: v.as_dict() for k, v in self.fits.items()},
            "failed": dict(self.failed),
        }

    def table(self) -> str:
        """A plain-text table of all fits, best first."""
        rows = sorted(self.fits.values(), key=lambda f: getattr(f, self.criterion))
        lines = [f"{'law':<13} {'Δ' + self.criterion.upper():>8}  fit"]
        lines += [f"{f.law:<13} {self.delta(f.law):8.1f}  {f}" for f in rows]
        return "\n".join(lines)


def _coerce_trace(
    trace: Trace | tuple, t_min: float | None, t_max: float | None
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(trace, Trace):
        tr = trace
    elif isinstance(trace, tuple) and len(trace) == 2:
        tr = Trace(*trace)
    else:
        raise TypeError(
            f"trace must be a Trace or a (t, distance) tuple, got {type(trace).__name__}"
        )
    if t_min is not None or t_max is not None:
        tr = tr.window(t_min, t_max)
    t = tr.t.astype(float)
    if np.any(t < 1):
        t, d = t[t >= 1], tr.distance[t >= 1]  # the laws are defined for t >= 1
    else:
        d = tr.distance
    return t, d


def _criteria(rss: float, n: int, p: int) -> tuple[float, float]:
    rss = max(rss, np.finfo(float).tiny * n)
    base = n * math.log(rss / n)
    return base + 2 * p, base + p * math.log(n)


def _linear_fit(columns: list[np.ndarray], d: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    design = np.column_stack(columns)
    coef, *_ = np.linalg.lstsq(design, d, rcond=None)
    resid = d - design @ coef
    rss = float(resid @ resid)
    dof = max(d.size - design.shape[1], 1)
    cov = np.linalg.pinv(design.T @ design) * (rss / dof)
    return coef, np.sqrt(np.clip(np.diag(cov), 0, None)), rss


def _nonlinear_fit(
    law: _Law, t: np.ndarray, d: np.ndarray, p0: Sequence[float], bounds
) -> tuple[np.ndarray, np.ndarray, float]:
    func = law.func

    def resid(p: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            r = func(t, *p) - d
        return np.where(np.isfinite(r), r, 1e150)

    sol = optimize.least_squares(
        resid,
        np.asarray(p0, float),
        bounds=bounds,
        method="trf",
        x_scale="jac",
        xtol=1e-12,
        ftol=1e-12,
        gtol=1e-12,
        max_nfev=5000,
    )
    rss = float(sol.fun @ sol.fun)
    dof = max(d.size - len(p0), 1)
    jac = sol.jac
    cov = np.linalg.pinv(jac.T @ jac) * (rss / dof)
    return sol.x, np.sqrt(np.clip(np.diag(cov), 0, None)), rss


def fit_law(
    trace: Trace | tuple, law: str, *, t_min: float | None = None, t_max: float | None = None
) -> LawFit:
    """Fit one growth law to a trace by least squares on the distance.

    Parameters
    ----------
    trace : Trace or (t, distance)
        Points to fit; times below 1 are dropped (the laws are defined for t >= 1).
    law : {'log', 'polylog', 'power', 'power_offset'}
        Which law.
    t_min, t_max : float, optional
        Fit only ``t_min <= t <= t_max``.

    Returns
    -------
    LawFit
    """
    if law not in LAWS:
        raise ValueError(f"law must be one of {sorted(LAWS)}, got {law!r}")
    t, d = _coerce_trace(trace, t_min, t_max)
    spec = LAWS[law]
    n_par = len(spec.params)
    if t.size < n_par + 1:
        raise ValueError(
            f"trace has {t.size} points with t >= 1 in the window; "
            f"law {law!r} needs at least {n_par + 1}"
        )
    logt = np.log(t)
    if law == "log":
        coef, err, rss = _linear_fit([np.ones_like(t), logt], d)
    elif law == "polylog":
        if logt.max() <= 0:
            raise ValueError("polylog needs some t > 1")
        best = None
        for k in np.geomspace(0.1, 8.0, 41):  # profile over k: exact linear fit for each
            c, _, r = _linear_fit([np.ones_like(t), logt**k], d)
            if best is None or r < best[0]:
                best = (r, c[0], c[1], k)
        _, a0, b0, k0 = best
        coef, err, rss = _nonlinear_fit(
            spec, t, d, (a0, b0, k0), ([-np.inf, -np.inf, 1e-3], [np.inf, np.inf, 50.0])
        )
    elif law == "power":
        pos = d > 0
        if pos.sum() >= 2 and np.ptp(logt[pos]) > 0:
            nu0, loga0 = np.polyfit(logt[pos], np.log(d[pos]), 1)
            p0 = (math.exp(loga0), nu0)
        else:
            p0 = (float(np.mean(d)) or 1.0, 0.5)
        coef, err, rss = _nonlinear_fit(spec, t, d, p0, ([-np.inf, -20.0], [np.inf, 20.0]))
    else:  # power_offset: profile over nu for a start, then refine
        best = None
        for nu in np.concatenate([-np.geomspace(2.0, 1e-3, 20), np.geomspace(1e-3, 3.0, 30)]):
            c, _, r = _linear_fit([np.ones_like(t), t**nu], d)
            if best is None or r < best[0]:
                best = (r, c[0], c[1], nu)
        _, a0, b0, nu0 = best
        coef, err, rss = _nonlinear_fit(
            spec, t, d, (a0, b0, nu0), ([-np.inf, -np.inf, -20.0], [np.inf, np.inf, 20.0])
        )
    aic, bic = _criteria(rss, t.size, n_par)
    return LawFit(
        law=law,
        formula=spec.formula,
        params={k: float(v) for k, v in zip(spec.params, coef, strict=True)},
        stderr={k: float(v) for k, v in zip(spec.params, err, strict=True)},
        rss=rss,
        n=int(t.size),
        aic=aic,
        bic=bic,
        t_range=(int(t[0]), int(t[-1])),
    )


def fit_growth(
    trace: Trace | tuple,
    laws: Iterable[str] = ("log", "polylog", "power", "power_offset"),
    *,
    t_min: float | None = None,
    t_max: float | None = None,
    criterion: str = "bic",
) -> GrowthFit:
    """Fit several growth laws and select one by an information criterion.

    Parameters
    ----------
    trace : Trace or (t, distance)
        The trace; see :func:`fit_law`.
    laws : iterable of str
        Candidate laws (keys of :data:`LAWS`).
    t_min, t_max : float, optional
        Window of t to fit (e.g. the initial phase of training).
    criterion : {'bic', 'aic'}
        Selection criterion; BIC (the default) penalises the extra exponent of ``polylog``
        and ``power_offset`` more firmly, so nested laws are not chosen on noise.

    Returns
    -------
    GrowthFit

    Examples
    --------
    >>> t = log_schedule(1e6, 20)
    >>> fit_growth((t, 3 + 2 * np.log(t))).best.law
    'log'
    """
    if criterion not in ("aic", "bic"):
        raise ValueError(f"criterion must be 'aic' or 'bic', got {criterion!r}")
    laws = list(laws)
    if not laws:
        raise ValueError("laws must name at least one law")
    for law in laws:
        if law not in LAWS:
            raise ValueError(f"laws must be drawn from {sorted(LAWS)}, got {law!r}")
    _coerce_trace(trace, t_min, t_max)  # validate once, with the caller's argument names
    fits: dict[str, LawFit] = {}
    failed: dict[str, str] = {}
    for law in laws:
        try:
            fits[law] = fit_law(trace, law, t_min=t_min, t_max=t_max)
        except (ValueError, np.linalg.LinAlgError, RuntimeError) as exc:
            failed[law] = str(exc)
    if not fits:
        raise ValueError(f"no law could be fitted: {failed}")
    best = min(fits.values(), key=lambda f: getattr(f, criterion))
    return GrowthFit(best=best, fits=fits, criterion=criterion, failed=failed)


def local_slope(trace: Trace | tuple, smooth: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Local slope ``d distance / d log t`` along a trace.

    Parameters
    ----------
    trace : Trace or (t, distance)
        Times below 1 are dropped.
    smooth : int
        Half-width (in points) of a centred finite difference; 1 is ``numpy.gradient``.
        Wider stencils trade resolution for noise.

    Returns
    -------
    t, slope : numpy.ndarray
        A constant slope means logarithmic growth; a slope growing like (log t)^(k-1)
        means polylogarithmic growth with exponent k.
    """
    if isinstance(smooth, bool) or not isinstance(smooth, (int, np.integer)) or smooth < 1:
        raise ValueError(f"smooth must be a positive integer, got {smooth!r}")
    t, d = _coerce_trace(trace, None, None)
    if t.size < 2:
        raise ValueError(f"trace needs at least 2 points with t >= 1 for a slope, got {t.size}")
    x = np.log(t)
    if smooth == 1:
        return t, np.gradient(d, x)
    slope = np.empty_like(d)
    for i in range(t.size):
        lo, hi = max(i - smooth, 0), min(i + smooth, t.size - 1)
        slope[i] = (d[hi] - d[lo]) / (x[hi] - x[lo])
    return t, slope


# ----------------------------------------------------------------------------- gamma
@dataclass(frozen=True)
class GammaEstimate:
    """Result of :func:`estimate_gamma`: spread(increment) ~ prefactor * distance^gamma.

    Attributes
    ----------
    gamma, gamma_stderr : float
        Exponent and its standard error (weighted log-log regression).
    ci : tuple of float
        Confidence interval for gamma at level ``level`` (Student t).
    prefactor : float
        ``exp(intercept)``.
    bin_distance, bin_spread, bin_count : numpy.ndarray
        The binned points that were regressed.
    level : float
        Confidence level of ``ci``.
    """

    gamma: float
    gamma_stderr: float
    ci: tuple[float, float]
    prefactor: float
    bin_distance: np.ndarray
    bin_spread: np.ndarray
    bin_count: np.ndarray
    level: float

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "gamma": self.gamma,
            "gamma_stderr": self.gamma_stderr,
            "ci": list(self.ci),
            "prefactor": self.prefactor,
            "level": self.level,
            "bin_distance": self.bin_distance.tolist(),
            "bin_spread": self.bin_spread.tolist(),
            "bin_count": self.bin_count.tolist(),
        }


def estimate_gamma(
    distance_pairs: Sequence[float] | np.ndarray,
    increments: Sequence[float] | np.ndarray,
    *,
    n_bins: int = 12,
    min_count: int = 10,
    center: bool = False,
    level: float = 0.95,
) -> GammaEstimate:
    """Estimate gamma in spread(increment) ~ distance^gamma.

    Each pair of points (in weight space, on a lattice...) separated by ``distance_pairs[i]``
    has a potential/loss difference ``increments[i]``. Pairs are grouped into log-spaced
    distance bins; in each bin the spread of the increments is computed, and
    ``log spread`` is regressed on ``log distance`` by weighted least squares. The weight of
    a bin is its count: the standard error of a log-spread from m samples is about
    ``1/sqrt(2(m-1))``.

    Parameters
    ----------
    distance_pairs : array_like
        Positive distances of the pairs.
    increments : array_like
        Increment for each pair, same length.
    n_bins : int
        Number of log-spaced distance bins.
    min_count : int
        Bins with fewer pairs are dropped.
    center : bool
        ``False`` (default): spread is the root mean square of the increments -- the std of
        a zero-mean increment, as for a potential with stationary increments, and what makes
        a linear function give gamma = 1. ``True``: the standard deviation about the bin mean.
    level : float
        Confidence level of the interval.

    Returns
    -------
    GammaEstimate
    """
    d = _as_1d_finite("distance_pairs", distance_pairs)
    inc = _as_1d_finite("increments", increments)
    if d.size != inc.size:
        raise ValueError(f"distance_pairs has length {d.size} but increments has length {inc.size}")
    if np.any(d <= 0):
        raise ValueError(f"distance_pairs must be positive, found {d[d <= 0][0]!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if d.min() == d.max():
        raise ValueError("distance_pairs must span more than one distance")
    edges = np.geomspace(d.min(), d.max() * (1 + 1e-12), n_bins + 1)
    idx = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, n_bins - 1)
    xs, ys, ns = [], [], []
    for b in range(n_bins):
        sel = idx == b
        m = int(sel.sum())
        if m < max(min_count, 2):
            continue
        v = inc[sel]
        spread = float(np.std(v, ddof=1)) if center else float(np.sqrt(np.mean(v**2)))
        if spread <= 0:
            continue
        xs.append(float(np.exp(np.mean(np.log(d[sel])))))
        ys.append(spread)
        ns.append(m)
    if len(xs) < 3:
        raise ValueError(
            f"only {len(xs)} distance bins hold >= {min_count} pairs; "
            "need 3 (pass more pairs or fewer bins)"
        )
    x, y, w = np.log(xs), np.log(ys), 2.0 * (np.asarray(ns) - 1.0)
    design = np.column_stack([np.ones_like(x), x])
    wd = design * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(wd, y * np.sqrt(w), rcond=None)
    resid = y - design @ coef
    dof = len(xs) - 2
    # scale by the observed scatter when it exceeds the sampling model (conservative)
    chi2_per_dof = float(np.sum(w * resid**2) / dof) if dof > 0 else 1.0
    cov = np.linalg.inv(wd.T @ wd) * max(chi2_per_dof, 1.0)
    se = float(math.sqrt(cov[1, 1]))
    q = float(stats.t.ppf(0.5 + level / 2, max(dof, 1)))
    return GammaEstimate(
        gamma=float(coef[1]),
        gamma_stderr=se,
        ci=(float(coef[1] - q * se), float(coef[1] + q * se)),
        prefactor=float(math.exp(coef[0])),
        bin_distance=np.asarray(xs),
        bin_spread=np.asarray(ys),
        bin_count=np.asarray(ns),
        level=level,
    )
