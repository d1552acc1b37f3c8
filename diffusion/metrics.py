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

Selection respects nesting
--------------------------
``log`` is nested in ``polylog`` (k = 1) and is the nu -> 0 limit of ``power_offset``
(a + b t^nu = (a + b) + b nu log t + O(nu^2)); ``power`` is ``power_offset`` with a = 0. A richer
law with one more free parameter wins an information criterion by chance on a fraction of noise
draws, so :func:`fit_growth` reports the richer law only when it is not *degenerate* onto the
simpler one: the simpler law is reported (with the richer fit kept as ``GrowthFit.nested``) when
its criterion is within :data:`PARSIMONY_MARGIN` of the richer one, when the nesting parameter's
confidence interval contains its nesting value (k = 1; nu = 0; a = 0), or, for ``power_offset``
onto ``log``, when ``|nu| log t_max`` is below :data:`LOG_LIKE_CURVATURE`. A fit whose parameter
sits at a bound of the optimiser is flagged (``LawFit.at_bound``) and is never the choice.

Standard errors come from the Jacobian at the optimum with its columns scaled to unit norm
before an SVD, so they stay right when the raw columns differ by many orders of magnitude (as
``t^nu`` does on a log-time axis, where t ~ 1e3 log t).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

__all__ = [
    "Trace",
    "log_schedule",
    "LAWS",
    "NESTING",
    "PARSIMONY_MARGIN",
    "LOG_LIKE_CURVATURE",
    "LawFit",
    "GrowthFit",
    "fit_law",
    "fit_growth",
    "GrowthBootstrap",
    "bootstrap_growth",
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
    return _log_grid(int(math.floor(t_max_f)), int(per_decade), start).copy()


@functools.lru_cache(maxsize=64)
def _log_grid(last: int, per_decade: int, start: int) -> np.ndarray:
    """:func:`log_schedule` of valid arguments, kept: every run of a study asks for the same
    few grids, and building one is a dozen numpy calls (callers get a copy)."""
    n = max(int(math.ceil(math.log10(last) * per_decade)) + 1, 2)
    grid = np.floor(np.logspace(0.0, math.log10(last), n)).astype(np.int64)
    # below t = 1/(r - 1), with r the ratio between grid points, the spacing is under one:
    # keep every integer there
    dense = np.arange(1, min(last, int(math.ceil(1.0 / (10 ** (1.0 / per_decade) - 1.0)))) + 1)
    grid = np.unique(np.concatenate([dense, grid, [last]]))
    grid = grid[(grid >= 1) & (grid <= last)]
    if start == 0:
        grid = np.concatenate([[0], grid])
    grid = grid.astype(np.int64)
    grid.flags.writeable = False
    return grid


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

#: For each richer law, the simpler laws nested in it: (simpler law, parameter, nesting value).
NESTING: dict[str, tuple[tuple[str, str, float], ...]] = {
    "polylog": (("log", "k", 1.0),),
    "power_offset": (("log", "nu", 0.0), ("power", "a", 0.0)),
}
#: A simpler nested law within this many criterion units of the richer one is preferred
#: (Kass & Raftery's "not worth more than a bare mention" for Delta BIC <= 2).
PARSIMONY_MARGIN = 2.0
#: ``a + b t^nu`` with ``|nu| log t_max`` below this is ``a + b log t`` to within a relative
#: curvature of about ``|nu| log t_max / 2`` (5%) over the whole window: reported as log-like.
LOG_LIKE_CURVATURE = 0.1


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
    bound_params : tuple of str
        Parameters at a bound of the optimiser (``polylog``'s k >= 1e-3,
        ``power``/``power_offset``'s |nu| <= 20): the optimiser stopped on it, or its 95%
        interval reaches it. Such a fit is a degenerate description (k -> 0 is
        ``a + b + b k log log t`` with a, b -> -/+ inf), never the selected law.
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
    bound_params: tuple[str, ...] = ()

    @property
    def at_bound(self) -> bool:
        """Whether some parameter ended at a bound of the optimiser."""
        return bool(self.bound_params)

    @property
    def dof(self) -> int:
        """Residual degrees of freedom, ``n - len(params)`` (at least 1)."""
        return max(self.n - len(self.params), 1)

    def interval(self, name: str, level: float = 0.95) -> tuple[float, float]:
        """Wald confidence interval of parameter ``name`` (Student t with :attr:`dof`).

        Parameters
        ----------
        name : str
            A key of :attr:`params`.
        level : float
            Confidence level in (0, 1).

        Returns
        -------
        (low, high) : tuple of float
        """
        if name not in self.params:
            raise ValueError(f"name must be one of {list(self.params)}, got {name!r}")
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        half = float(stats.t.ppf(0.5 + level / 2, self.dof)) * self.stderr[name]
        return self.params[name] - half, self.params[name] + half

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
            "at_bound": self.at_bound,
            "bound_params": list(self.bound_params),
        }

    def __str__(self) -> str:
        parts = ", ".join(f"{k}={v:.4g}±{self.stderr[k]:.2g}" for k, v in self.params.items())
        flag = f" [at bound: {', '.join(self.bound_params)}]" if self.at_bound else ""
        return f"{self.formula}: {parts} (AIC {self.aic:.1f}, BIC {self.bic:.1f}){flag}"


@dataclass(frozen=True)
class GrowthFit:
    """Model selection among growth laws, respecting nesting.

    Attributes
    ----------
    best : LawFit
        The reported law: the criterion's choice among fits not at a bound, replaced by a
        simpler law nested in it when the choice degenerates onto that law (see the module
        docstring). ``best.law == 'log'`` with ``nested`` set is the "log-like" verdict.
    fits : dict of str to LawFit
        Every law that could be fitted (including those at a bound).
    criterion : {'aic', 'bic'}
        The criterion used for selection.
    failed : dict of str to str
        Laws whose fit failed, with the reason.
    choice : str
        The law with the smallest criterion among the fits not at a bound (the raw choice,
        before nesting is taken into account); all fits when every one is at a bound.
    nested : LawFit or None
        The richer fit that was the raw choice and degenerated onto ``best``; None when
        ``best`` is the raw choice.
    reason : str
        Why ``best`` was reported, in words.
    """

    best: LawFit
    fits: dict[str, LawFit]
    criterion: str
    failed: dict[str, str] = field(default_factory=dict)
    choice: str = ""
    nested: LawFit | None = None
    reason: str = ""

    def _score(self, law: str) -> float:
        return float(getattr(self.fits[law], self.criterion))

    def delta(self, law: str) -> float:
        """Criterion of ``law`` minus that of the raw choice (0 for it; larger is worse).

        A fit at a bound can have a negative delta: it is excluded from the choice.
        """
        return self._score(law) - self._score(self.choice or self.best.law)

    def beats(self, law: str, other: str) -> bool:
        """Whether ``law`` has a strictly smaller criterion than ``other``."""
        return self._score(law) < self._score(other)

    @property
    def log_like(self) -> bool:
        """Whether the reported law is ``log`` (directly, or as the limit of a nested fit)."""
        return self.best.law == "log"

    def log_supported(self, margin: float = PARSIMONY_MARGIN) -> bool:
        """Whether ``log`` was fitted and is the raw choice or within ``margin`` of it.

        Parameters
        ----------
        margin : float
            Criterion units (2 by default: Delta BIC <= 2 is "not worth more than a bare
            mention").
        """
        if "log" not in self.fits or self.fits["log"].at_bound:
            return False
        return self.best.law == "log" or self.delta("log") <= margin

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "best": self.best.law,
            "choice": self.choice or self.best.law,
            "nested": None if self.nested is None else self.nested.law,
            "reason": self.reason,
            "log_like": self.log_like,
            "log_supported": self.log_supported(),
            "criterion": self.criterion,
            "fits": {k: v.as_dict() for k, v in self.fits.items()},
            "failed": dict(self.failed),
        }

    def table(self) -> str:
        """A plain-text table of all fits (raw choice first) and the verdict."""
        rows = sorted(self.fits.values(), key=lambda f: getattr(f, self.criterion))
        lines = [f"{'law':<13} {'Δ' + self.criterion.upper():>8}  fit"]
        lines += [f"{f.law:<13} {self.delta(f.law):8.1f}  {f}" for f in rows]
        lines.append(f"reported: {self.best.law} ({self.reason})")
        return "\n".join(lines)


def _degenerate(rich: LawFit, simple: LawFit, param: str, value: float, criterion: str) -> str:
    """Why ``rich`` reduces to the nested ``simple`` law, or '' if it does not."""
    gap = getattr(simple, criterion) - getattr(rich, criterion)
    if gap <= PARSIMONY_MARGIN:
        return (
            f"{rich.law} is {criterion.upper()}'s choice by {gap:.1f} <= {PARSIMONY_MARGIN:g}; "
            f"the nested {simple.law} is preferred"
        )
    lo, hi = rich.interval(param)
    if lo <= value <= hi:
        return (
            f"{rich.law}'s 95% interval of {param}, [{lo:.3g}, {hi:.3g}], contains {value:g}: "
            f"it reduces to {simple.law}"
        )
    if rich.law == "power_offset" and simple.law == "log":
        curvature = abs(rich.params["nu"]) * math.log(max(rich.t_range[1], 2))
        if curvature < LOG_LIKE_CURVATURE:
            return (
                f"{rich.law} has |nu| log t_max = {curvature:.3g} < {LOG_LIKE_CURVATURE:g}: "
                "log-like"
            )
    return ""


def _select(fits: dict[str, LawFit], criterion: str) -> tuple[LawFit, str, LawFit | None, str]:
    """``(best, choice, nested, reason)`` for :class:`GrowthFit` (see the module docstring)."""
    free = {k: f for k, f in fits.items() if not f.at_bound} or fits
    choice = min(free.values(), key=lambda f: getattr(f, criterion))
    reason = f"smallest {criterion.upper()}"
    if len(free) < len(fits):
        reason += f"; at a bound, not eligible: {', '.join(sorted(set(fits) - set(free)))}"
    options = []
    for simple, param, value in NESTING.get(choice.law, ()):
        if simple in free and simple != choice.law:
            why = _degenerate(choice, free[simple], param, value, criterion)
            if why:
                options.append((getattr(free[simple], criterion), simple, why))
    if not options:
        return choice, choice.law, None, reason
    _, simple, why = min(options)
    return free[simple], choice.law, choice, why


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


def _covariance(jac: np.ndarray, rss: float, dof: int) -> np.ndarray:
    """Parameter covariance ``s^2 (J^T J)^-1`` from a column-scaled SVD of the Jacobian.

    Scaling each column to unit norm first makes the conditioning that of the *shape* of the
    columns, not of their units (``t^nu`` against a column of ones on a log-time axis differs
    by 1e9 in scale); a direction the data do not determine (a singular value below
    ``eps * max(shape)`` of the largest) gives infinite variances instead of a silently
    dropped direction.
    """
    scale = np.linalg.norm(jac, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    _, sing, vt = np.linalg.svd(jac / scale, full_matrices=False)
    if sing.size == 0 or sing[-1] <= sing[0] * np.finfo(float).eps * max(jac.shape):
        return np.full((jac.shape[1], jac.shape[1]), np.inf)
    inv = (vt.T / sing**2) @ vt
    return inv / np.outer(scale, scale) * (rss / dof)


def _stderr(cov: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(np.diag(cov), 0, None))


def _linear_fit(columns: list[np.ndarray], d: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    design = np.column_stack(columns)
    scale = np.linalg.norm(design, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    coef, *_ = np.linalg.lstsq(design / scale, d, rcond=None)
    coef = coef / scale
    resid = d - design @ coef
    rss = float(resid @ resid)
    dof = max(d.size - design.shape[1], 1)
    return coef, _stderr(_covariance(design, rss, dof)), rss


@dataclass(frozen=True)
class _Exponent:
    """How a law's exponent is profiled: its bounds, a scan grid, and whether ``a`` is free."""

    lower: float
    upper: float
    grid: np.ndarray
    intercept: bool


_SIGNED_GRID = np.concatenate([-np.geomspace(20.0, 1e-3, 30), [0.0], np.geomspace(1e-3, 20.0, 30)])
_EXPONENTS: dict[str, _Exponent] = {
    "polylog": _Exponent(1e-3, 50.0, np.geomspace(1e-3, 50.0, 60), True),
    "power": _Exponent(-20.0, 20.0, _SIGNED_GRID, False),
    "power_offset": _Exponent(-20.0, 20.0, _SIGNED_GRID, True),
}


def _shape_column(law: str, logt: np.ndarray, e: float) -> np.ndarray:
    """A column spanning, with the intercept if any, the same space as the law's term.

    Rescaled so that it neither overflows (``t^20`` at ``t = 2^62``) nor, for
    ``power_offset`` as ``nu -> 0``, collapses onto the intercept: there the Box-Cox form
    ``(t^nu - 1)/nu`` tends to ``log t``, the nested law.
    """
    if law == "polylog":
        return logt**e
    span = e * (logt[-1] if e > 0 else logt[0])
    if law == "power_offset" and abs(e) * np.abs(logt).max() <= 1.0:
        return np.expm1(e * logt) / e if e != 0 else logt
    return np.exp(e * logt - max(span, 0.0))


def _rss(columns: list[np.ndarray], d: np.ndarray) -> float:
    design = np.column_stack(columns)
    if not np.all(np.isfinite(design)):
        return math.inf
    scale = np.linalg.norm(design, axis=0)
    design = design / np.where(scale > 0, scale, 1.0)
    coef, *_ = np.linalg.lstsq(design, d, rcond=None)
    resid = d - design @ coef
    return float(resid @ resid)


def _profile_exponent(law: str, logt: np.ndarray, d: np.ndarray) -> float:
    """The exponent minimising the residual sum of squares, the linear parameters profiled out.

    Variable projection: for each exponent the rest of the law is linear, so its exact
    least-squares fit gives the profile ``rss(e)``; a grid scan brackets the minimum and
    Brent's bounded method refines it.
    """
    spec = _EXPONENTS[law]
    ones = [np.ones_like(logt)] if spec.intercept else []

    def rss(e: float) -> float:
        return _rss([*ones, _shape_column(law, logt, e)], d)

    scan = np.array([rss(e) for e in spec.grid])
    i = int(np.argmin(scan))
    lo, hi = spec.grid[max(i - 1, 0)], spec.grid[min(i + 1, spec.grid.size - 1)]
    sol = optimize.minimize_scalar(rss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    return float(sol.x) if sol.fun <= scan[i] else float(spec.grid[i])


def _jacobian(law: str, logt: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Derivatives of the law with respect to its parameters, one column each."""
    if law == "polylog":
        _, b, k = coef
        term = logt**k
        log_log = np.log(np.where(logt > 0, logt, 1.0))
        return np.column_stack([np.ones_like(logt), term, b * term * log_log])
    e = coef[-1]
    term = np.exp(e * logt)
    if law == "power":
        return np.column_stack([term, coef[0] * term * logt])
    return np.column_stack([np.ones_like(logt), term, coef[1] * term * logt])


def _exponent_fit(
    law: str, t: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, tuple[str, ...]]:
    """Least-squares fit of a law with one exponent: ``(coef, stderr, rss, bound_params)``."""
    spec = _EXPONENTS[law]
    logt = np.log(t)
    e = _profile_exponent(law, logt, d)
    with np.errstate(over="ignore"):
        term = logt**e if law == "polylog" else np.exp(e * logt)
    if not np.all(np.isfinite(term)):
        raise ValueError(f"{law} fit diverged: exponent {e:g} overflows on t up to {t[-1]:g}")
    columns = [np.ones_like(t), term] if spec.intercept else [term]
    linear, _, rss = _linear_fit(columns, d)
    coef = np.append(linear, e)
    dof = max(d.size - coef.size, 1)
    err = _stderr(_covariance(_jacobian(law, logt, coef), rss, dof))
    # at a bound: the exponent sits on it, or its 95% interval reaches it (the optimum creeps
    # towards the bound, as polylog's k -> 0 on log log t data, without arriving)
    gap = min(e - spec.lower, spec.upper - e)
    reach = float(stats.t.ppf(0.975, dof)) * err[-1]
    bound = (LAWS[law].params[-1],) if gap <= max(1e-6 * (spec.upper - spec.lower), reach) else ()
    return coef, err, rss, bound


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
    bound: tuple[str, ...] = ()
    if law == "log":
        coef, err, rss = _linear_fit([np.ones_like(t), logt], d)
    else:
        if law == "polylog" and logt.max() <= 0:
            raise ValueError("polylog needs some t > 1")
        coef, err, rss, bound = _exponent_fit(law, t, d)
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
        bound_params=bound,
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
        and ``power_offset`` more firmly. Fits at a bound are not eligible, and a richer law
        that degenerates onto a simpler one nested in it is reported as the simpler law
        (see the module docstring).

    Returns
    -------
    GrowthFit
        ``best`` is the reported law, ``choice`` the criterion's raw choice, ``nested`` the
        richer fit folded onto ``best`` (or None), ``log_like`` / ``log_supported()`` the
        verdict on the log law.

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
    best, choice, nested, reason = _select(fits, criterion)
    return GrowthFit(
        best=best,
        fits=fits,
        criterion=criterion,
        failed=failed,
        choice=choice,
        nested=nested,
        reason=reason,
    )


@dataclass(frozen=True)
class GrowthBootstrap:
    """Growth-law fit of a replica-averaged curve with a bootstrap over the replicas.

    All times of one replica (one environment, one seed) share its randomness, so residuals
    of the averaged curve understate the error; resampling whole replicas does not.

    Attributes
    ----------
    fit : GrowthFit
        The fit of the curve averaged over all replicas.
    n_replicas, n_boot : int
        Independent replicas and bootstrap resamples.
    level : float
        Level of the percentile intervals.
    choice_frequency : dict of str to float
        Fraction of resamples in which each law was reported (``GrowthFit.best``).
    intervals : dict of str to dict of str to (float, float)
        Percentile interval of every parameter of every law (over resamples where the law
        was fitted and not at a bound).
    spread : dict of str to dict of str to float
        Standard deviation of every parameter over the same resamples.
    """

    fit: GrowthFit
    n_replicas: int
    n_boot: int
    level: float
    choice_frequency: dict[str, float]
    intervals: dict[str, dict[str, tuple[float, float]]]
    spread: dict[str, dict[str, float]]

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "fit": self.fit.as_dict(),
            "n_replicas": self.n_replicas,
            "n_boot": self.n_boot,
            "level": self.level,
            "choice_frequency": dict(self.choice_frequency),
            "intervals": {
                law: {k: list(v) for k, v in iv.items()} for law, iv in self.intervals.items()
            },
            "spread": {law: dict(sd) for law, sd in self.spread.items()},
        }

    def summary(self) -> str:
        """Plain-text lines: the reported law, choice frequencies, intervals."""
        ranked = sorted(self.choice_frequency.items(), key=lambda x: -x[1])
        freq = ", ".join(f"{law} {p:.0%}" for law, p in ranked)
        lines = [
            f"bootstrap over {self.n_replicas} replicas ({self.n_boot} resamples): "
            f"reported law {freq}"
        ]
        for law, iv in self.intervals.items():
            parts = ", ".join(
                f"{k} {self.fit.fits[law].params[k]:.4g} [{lo:.4g}, {hi:.4g}]"
                for k, (lo, hi) in iv.items()
            )
            lines.append(f"  {law:<13} {self.level:.0%} interval: {parts}")
        return "\n".join(lines)


_STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda x: x.mean(axis=0),
    "rms": lambda x: np.sqrt((x**2).mean(axis=0)),
    "mean_abs": lambda x: np.abs(x).mean(axis=0),
}


def bootstrap_growth(
    t: Sequence[int] | np.ndarray,
    replicas: Sequence[Sequence[float]] | np.ndarray,
    laws: Iterable[str] = ("log", "polylog", "power", "power_offset"),
    *,
    statistic: str = "mean",
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    t_min: float | None = None,
    t_max: float | None = None,
    criterion: str = "bic",
) -> GrowthBootstrap:
    """Fit growth laws to a replica average, with a bootstrap over independent replicas.

    Parameters
    ----------
    t : array_like of int
        Times, shared by all replicas.
    replicas : array_like, shape (n_replicas, len(t))
        One row per independent replica (environment, seed): its position or distance.
    laws, t_min, t_max, criterion
        As in :func:`fit_growth`.
    statistic : {'mean', 'rms', 'mean_abs'}
        How the rows are averaged into the fitted curve.
    n_boot : int
        Resamples of the rows with replacement (>= 20).
    level : float
        Level of the percentile intervals.
    seed : int
        Seed of the resampling.

    Returns
    -------
    GrowthBootstrap
    """
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {sorted(_STATISTICS)}, got {statistic!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 20:
        raise ValueError(f"n_boot must be an integer >= 20, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    rows = np.asarray(replicas, dtype=float)
    times = _as_1d_finite("t", t)
    if rows.ndim != 2 or rows.shape[1] != times.size or rows.shape[0] < 2:
        raise ValueError(
            f"replicas must have shape (n_replicas >= 2, {times.size}), got {rows.shape}"
        )
    if not np.all(np.isfinite(rows)):
        raise ValueError("replicas must be finite")
    reduce = _STATISTICS[statistic]
    laws = tuple(laws)
    fit = fit_growth((times, reduce(rows)), laws, t_min=t_min, t_max=t_max, criterion=criterion)
    rng = np.random.default_rng(seed)
    chosen: dict[str, int] = {}
    samples: dict[str, list[list[float]]] = {law: [] for law in fit.fits}
    for _ in range(n_boot):
        pick = rng.integers(0, rows.shape[0], rows.shape[0])
        g = fit_growth(
            (times, reduce(rows[pick])), laws, t_min=t_min, t_max=t_max, criterion=criterion
        )
        chosen[g.best.law] = chosen.get(g.best.law, 0) + 1
        for law, f in g.fits.items():
            if law in samples and not f.at_bound:
                samples[law].append(list(f.params.values()))
    q = (50 * (1 - level), 50 * (1 + level))
    intervals: dict[str, dict[str, tuple[float, float]]] = {}
    spread: dict[str, dict[str, float]] = {}
    for law, rows_ in samples.items():
        if len(rows_) < 2:
            continue
        arr, names = np.asarray(rows_), list(fit.fits[law].params)
        lo, hi = np.percentile(arr, q, axis=0)
        intervals[law] = {k: (float(a), float(b)) for k, a, b in zip(names, lo, hi, strict=True)}
        spread[law] = dict(zip(names, arr.std(axis=0, ddof=1).tolist(), strict=True))
    return GrowthBootstrap(
        fit=fit,
        n_replicas=int(rows.shape[0]),
        n_boot=int(n_boot),
        level=float(level),
        choice_frequency={k: v / n_boot for k, v in chosen.items()},
        intervals=intervals,
        spread=spread,
    )


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
