"""Walk experiments as runs: a frozen configuration in, a run folder (trace, fits, theory) out.

:func:`run_walk` is what the command line (``python -m diffusion walk``) and the figures call
to produce the Sinai / fBm / bounded / field traces. A run is computed once per
configuration and reused (:func:`diffusion.records.run_or_load`); it follows the one run
protocol, ``run_walk(config, runs, *, runtime=None, force=False)``, and is registered with
:func:`diffusion.records.run`. Many seeds of one configuration: :mod:`diffusion.sweep`.

Potentials (``sigma`` is the scale of ``U``; the walker sees ``U/T``)
------------------------------------------------------------------
``sinai``    Brownian potential, increments of standard deviation ``sigma``, 1D.
``fbm``      fractional Brownian motion with ``hurst``, increments of std ``sigma``, 1D.
``bounded``  i.i.d. uniform on ``[0, sigma]`` (moving average over ``correlation_length``), 1D.
``field``    Gaussian field in ``dim`` = 1, 2, 3: ``field_kind='short'`` (std ``sigma``,
             Gaussian covariance of range ``correlation_length``) or ``'fractional'``
             (nearest-neighbour increment std ``sigma``, increments ~ r^hurst).

Methods
-------
``direct``  lattice Metropolis walkers (:func:`diffusion.walk.simulate_walkers`).
            sinai/fbm: one environment per walker (the law is over environments);
            bounded/field: one environment shared by all walkers.
``coarse``  strong-disorder renormalisation (:func:`diffusion.coarse.coarse_walk`), 1D
            sinai/fbm only, any ``t_max`` (1e30 and beyond); its trace is on a log-time
            axis (see :meth:`diffusion.coarse.CoarseResult.log_time_trace`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import optimize, stats

from diffusion import theory
from diffusion.coarse import LOG_TIME_RESOLUTION, coarse_walk
from diffusion.metrics import Trace, bootstrap_growth, fit_growth, log_schedule
from diffusion.potentials import (
    bounded_potential,
    brownian_potential,
    fbm_potential,
    gaussian_field,
)
from diffusion.records import Run, register_runner, run_or_load
from diffusion.runtime import Runtime, check_runtime
from diffusion.validation import check_choice, check_int, check_real
from diffusion.walk import simulate_walkers

__all__ = [
    "WalkConfig",
    "run_walk",
    "compute_walk",
    "numba_threads",
    "POTENTIALS",
    "METHODS",
]

POTENTIALS = ("sinai", "fbm", "bounded", "field")
METHODS = ("direct", "coarse")
MAX_DIRECT_T = 10**12
MAX_SITES = 2 * 10**8  # environment sites x environments held at once by a direct run
BOOTSTRAP_RESAMPLES = 100  # resamples of environments for the intervals beside each fit
RUNNING_GAMMA_MIN = 3.0  # the running exponent is reported from log t = 3 on


@dataclass(frozen=True)
class WalkConfig:
    """One walk experiment.

    Parameters
    ----------
    potential : {'sinai', 'fbm', 'bounded', 'field'}
        Model (see the module docstring).
    hurst : float
        H in (0, 1) for 'fbm' and the fractional field (ignored otherwise).
    dim : int
        Lattice dimension, 1 to 3 (only 'field' allows 2 and 3).
    walkers : int
        Number of walkers (for 'coarse': environments, one walker each).
    t_max : float
        Last time; up to 1e12 for 'direct', any finite value > 10 for 'coarse'.
    method : {'direct', 'coarse'}
        Simulation method.
    temperature : float
        ``T > 0``.
    sigma : float
        Scale of the potential, ``>= 0`` (``> 0`` for 'coarse').
    correlation_length : float
        Range of 'bounded' (integer sites) and of the short-range 'field'.
    field_kind : {'short', 'fractional'}
        Covariance of 'field'.
    per_decade : int
        Recorded times per decade of t.
    seed : int
        Seed of environments and walkers (>= 0).
    half_width : int or None
        Half-width of the environment box; chosen from ``t_max`` when None.
    """

    KIND: ClassVar[str] = "walk"
    LEGACY_KIND: ClassVar[str] = "WalkConfig"  # runs stored before KIND still load

    potential: str = "sinai"
    hurst: float = 0.5
    dim: int = 1
    walkers: int = 1000
    t_max: float = 1e8
    method: str = "direct"
    temperature: float = 1.0
    sigma: float = 1.0
    correlation_length: float = 0.0
    field_kind: str = "short"
    per_decade: int = 10
    seed: int = 0
    half_width: int | None = None

    def __post_init__(self) -> None:
        check_choice("potential", self.potential, POTENTIALS)
        check_choice("method", self.method, METHODS)
        check_choice("field_kind", self.field_kind, ("short", "fractional"))
        theory.check_temperature(self.temperature)
        theory.check_sigma(self.sigma)
        theory.check_dim(self.dim)
        object.__setattr__(self, "hurst", theory.check_hurst(self.hurst))
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "sigma", float(self.sigma))
        for name in ("walkers", "per_decade", "seed"):
            value = check_int(name, getattr(self, name), 0 if name == "seed" else 1)
            object.__setattr__(self, name, value)
        t_max = check_real("t_max", self.t_max, 10)
        object.__setattr__(self, "t_max", t_max)
        if self.dim != 1 and self.potential != "field":
            raise ValueError(
                f"dim={self.dim} needs potential='field'; {self.potential!r} is one-dimensional"
            )
        if self.method == "coarse":
            if self.potential not in ("sinai", "fbm") or self.dim != 1:
                raise ValueError(
                    f"method='coarse' needs a 1D 'sinai' or 'fbm' potential, "
                    f"got {self.potential!r} in dim {self.dim}"
                )
            if self.sigma <= 0:
                raise ValueError(f"sigma must be > 0 for method='coarse', got {self.sigma!r}")
        elif t_max > MAX_DIRECT_T:
            raise ValueError(
                f"t_max={self.t_max!r} is beyond direct simulation (<= {MAX_DIRECT_T:.0e}); "
                "use method='coarse'"
            )
        check_real("correlation_length", self.correlation_length, 0)
        if (
            self.potential == "field"
            and self.field_kind == "short"
            and self.correlation_length <= 0
        ):
            raise ValueError("correlation_length must be > 0 for a short-range field")
        if self.potential == "bounded" and self.correlation_length != int(self.correlation_length):
            raise ValueError(
                "correlation_length must be a whole number of sites for 'bounded', "
                f"got {self.correlation_length!r}"
            )
        if self.half_width is not None:
            object.__setattr__(self, "half_width", check_int("half_width", self.half_width, 2))

    @property
    def effective_hurst(self) -> float:
        """The Hurst exponent of the landscape's increments (1/2 for Sinai)."""
        return 0.5 if self.potential == "sinai" else self.hurst

    @property
    def sigma_v(self) -> float:
        """Increment standard deviation of ``V = U/T``."""
        return self.sigma / self.temperature


# ----------------------------------------------------------------------------- environments
def _auto_half_width(cfg: WalkConfig) -> int:
    if cfg.half_width is not None:
        return cfg.half_width
    t_max = cfg.t_max
    free = 6.0 * math.sqrt(t_max / cfg.dim) + 16  # six free standard deviations per axis
    if cfg.potential in ("sinai", "fbm") and cfg.sigma > 0:
        h = cfg.effective_hurst
        trapped = 4 * 10.0 ** (3.5 * h - 0.5) * (math.log(t_max) / cfg.sigma_v) ** (1.0 / h) + 64
        return int(min(free, trapped))
    if cfg.potential == "field" and cfg.field_kind == "fractional" and cfg.sigma > 0:
        trapped = (
            4
            * 10.0 ** (3.5 * cfg.hurst - 0.5)
            * (math.log(t_max) / cfg.sigma_v) ** (1.0 / cfg.hurst)
            + 64
        )
        return int(min(free, trapped))
    return int(free)


def _factory(cfg: WalkConfig, half: int):
    n = 2 * half + 1
    if cfg.potential == "sinai":
        return lambda ss: brownian_potential(n, cfg.sigma, seed=ss)
    if cfg.potential == "fbm":
        return lambda ss: fbm_potential(n, cfg.hurst, cfg.sigma, seed=ss)
    if cfg.potential == "bounded":
        return lambda ss: bounded_potential(n, cfg.sigma, int(cfg.correlation_length), seed=ss)
    ell = cfg.correlation_length if cfg.correlation_length > 0 else 1.0
    return lambda ss: gaussian_field(
        (n,) * cfg.dim, cfg.field_kind, ell, cfg.hurst, cfg.sigma, seed=ss
    )


def _direct(cfg: WalkConfig) -> tuple[Trace, dict]:
    half = _auto_half_width(cfg)
    per_env = (2 * half + 1) ** cfg.dim
    shared = cfg.potential in ("bounded", "field")
    n_env = 1 if shared else cfg.walkers
    if per_env * n_env > MAX_SITES:
        raise ValueError(
            f"t_max={cfg.t_max:g} with walkers={cfg.walkers} needs {per_env * n_env:.2e} sites "
            f"(box half-width {half}, dim {cfg.dim}); the limit is {MAX_SITES:.0e}: "
            "lower t_max or walkers"
        )
    t_max = int(cfg.t_max)
    trace = simulate_walkers(
        _factory(cfg, half),
        cfg.temperature,
        t_max,
        cfg.walkers,
        times=log_schedule(t_max, cfg.per_decade),
        seed=cfg.seed,
        shared_environment=shared,
    )
    return trace, {"half_width": half, "n_environments": n_env}


def _coarse(cfg: WalkConfig) -> tuple[Trace, dict]:
    g_max = math.log(cfg.t_max)
    step = math.log(10.0) / cfg.per_decade
    gammas = np.arange(math.log(10.0), g_max + 1e-9, step)
    if gammas[-1] < g_max - 1e-9:
        gammas = np.append(gammas, g_max)
    # the log-time axis holds Gamma to 1/LOG_TIME_RESOLUTION
    gammas = np.unique(np.round(gammas * LOG_TIME_RESOLUTION)) / LOG_TIME_RESOLUTION
    res = coarse_walk(
        cfg.walkers,
        gammas,
        kind="brownian" if cfg.potential == "sinai" else "fbm",
        hurst=cfg.hurst,
        sigma=cfg.sigma,
        temperature=cfg.temperature,
        seed=cfg.seed,
        half_width=cfg.half_width,
    )
    return res.log_time_trace(), {
        "n_extended": res.n_extended,
        "half_width_max": int(res.half_width.max()),
    }


# ----------------------------------------------------------------------------- theory
def _kesten_sample(b: np.ndarray, suffix: str) -> dict:
    """Moments of ``b`` with their standard errors, and the KS test against Kesten's law."""
    n = b.size
    ks = stats.kstest(b, theory.kesten.cdf)
    return {
        f"kesten_mean_abs_{suffix}": float(np.mean(np.abs(b))),
        f"kesten_mean_abs_{suffix}_stderr": float(np.std(np.abs(b), ddof=1) / math.sqrt(n)),
        f"kesten_second_moment_{suffix}": float(np.mean(b**2)),
        f"kesten_second_moment_{suffix}_stderr": float(np.std(b**2, ddof=1) / math.sqrt(n)),
        f"kesten_ks_statistic{'' if suffix == 'measured' else '_' + suffix}": float(ks.statistic),
        f"kesten_ks_pvalue{'' if suffix == 'measured' else '_' + suffix}": float(ks.pvalue),
    }


def _kesten(positions: np.ndarray, gamma: float, sigma_v: float) -> dict:
    """Kesten's law at ``Gamma = log t``: as measured, and at the overshoot-corrected scale.

    ``*_measured`` divide positions by ``Gamma^2/sigma^2``; ``*_corrected`` by
    ``Gamma_eff^2/sigma^2`` with ``Gamma_eff = Gamma + 2 * 0.5826 sigma``
    (:func:`diffusion.theory.kesten_effective_gamma`), the lattice overshoot that dominates
    the renormalised (coarse) walker's finite-Gamma error; a direct walk at t <= 1e12 also
    lags in time, so its corrected moments still sit off 5/6.
    """
    g_eff = float(theory.kesten_effective_gamma(gamma, sigma_v))
    out = {
        "kesten_mean_abs": theory.KESTEN_MEAN_ABS,
        "kesten_second_moment": theory.KESTEN_SECOND_MOMENT,
        "kesten_gamma": float(gamma),
        "kesten_gamma_effective": g_eff,
        "kesten_mean_abs_finite_gamma": float(theory.kesten_mean_abs_finite(gamma, sigma_v)),
        "kesten_second_moment_finite_gamma": float(
            theory.kesten_second_moment_finite(gamma, sigma_v)
        ),
    }
    out.update(_kesten_sample(positions * sigma_v**2 / gamma**2, "measured"))
    out.update(_kesten_sample(positions * sigma_v**2 / g_eff**2, "corrected"))
    return out


def _theory(cfg: WalkConfig, trace: Trace, log_t: np.ndarray) -> dict:
    """Predictions to print beside the fit, and the last-time comparison."""
    out: dict = {}
    if cfg.potential in ("sinai", "fbm") and cfg.sigma > 0:
        h = cfg.effective_hurst
        out["polylog_exponent"] = 1.0 / h
        out["law"] = (
            f"distance ~ (T log t / sigma)^(1/H) = (log t)^{1 / h:.4g} (barriers ~ d^H, H = {h:g})"
        )
        if cfg.potential == "sinai" or abs(h - 0.5) < 1e-12:
            scale = log_t[-1] ** 2 / cfg.sigma_v**2
            out["law"] = "sigma^2 x_t / (log t)^2 -> Kesten's b: E|b| = 5/6, E b^2 = 61/45"
            out["rms_predicted_last"] = math.sqrt(theory.KESTEN_SECOND_MOMENT) * scale
            out.update(_kesten(trace.extras["positions"][-1].astype(float), log_t[-1], cfg.sigma_v))
    elif cfg.potential == "bounded" or (
        cfg.potential == "field" and cfg.dim == 1 and cfg.field_kind == "short"
    ):
        # the ergodic D_eff, from the sample averages over a long stretch of the same model
        pot = _factory(cfg, max(_auto_half_width(cfg), 50_000))(np.random.SeedSequence(cfg.seed))
        d_eff = theory.effective_diffusion(pot.values, cfg.temperature)
        out["law"] = "normal diffusion, rms = sqrt(2 D_eff t), D_eff = 1/(<1/c><pi>)"
        out["d_eff"] = d_eff
        out["rms_predicted_last"] = math.sqrt(2 * d_eff * float(trace.t[-1]))
    elif cfg.potential == "field" and cfg.field_kind == "short":
        out["law"] = (
            f"normal diffusion at long times, D_eff < D_0 = 1/2 (rms = sqrt(t) free, d = {cfg.dim})"
        )
        out["polylog_exponent"] = None
    else:
        out["law"] = (
            f"expected trapping ~ (log t)^(1/H) = (log t)^{1 / cfg.hurst:.4g} "
            "[measured, not exact in d >= 2]"
        )
        out["polylog_exponent"] = 1.0 / cfg.hurst
    return out


def _spaced(mask: np.ndarray, log_t: np.ndarray, step: float = 0.2) -> np.ndarray:
    """``mask`` thinned so that kept ``log Gamma`` values are ``step`` apart (last one kept).

    The schedule's last point can sit a hair after the one before it (``t_max`` is appended
    to the grid); a slope over such a gap is noise.
    """
    out = np.zeros_like(mask)
    last = math.inf
    for i in np.flatnonzero(mask)[::-1]:
        if math.log(last) - math.log(log_t[i]) >= step:
            out[i], last = True, log_t[i]
    return out


def _shifted_power(gamma: np.ndarray, mean_abs: np.ndarray) -> tuple[float, float]:
    """``(k_inf, c)`` of the least-squares fit ``log E|x| = log C + k_inf log(Gamma + c)``.

    The renormalisation scale of a lattice landscape is shifted by ``O(sigma)`` (for Sinai
    exactly ``c = 2 * 0.5826 sigma``, :func:`diffusion.theory.kesten_effective_gamma`), so
    ``E|x| = C (Gamma + c)^k_inf``, whose running exponent is ``k_inf Gamma/(Gamma + c)``.
    For each ``c`` the fit is linear; ``c`` is found by Brent's method on the profile.
    """
    y = np.log(mean_abs)

    def rss_and_k(c: float) -> tuple[float, float]:
        design = np.column_stack([np.ones_like(gamma), np.log(gamma + c)])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        r = y - design @ coef
        return float(r @ r), float(coef[1])

    sol = optimize.minimize_scalar(
        lambda c: rss_and_k(c)[0], bounds=(-0.9 * gamma[0], 5.0 * gamma[-1]), method="bounded"
    )
    return rss_and_k(float(sol.x))[1], float(sol.x)


def _running_exponent(positions: np.ndarray, log_t: np.ndarray, seed: int) -> dict | None:
    """Running exponent ``d log E|x| / d log Gamma`` and its extrapolation to Gamma -> inf.

    The running exponent is the centred slope between recorded ``Gamma`` (from
    ``RUNNING_GAMMA_MIN`` on). At finite ``Gamma`` the lattice holds it below its limit
    ``1/H`` by ``O(1/Gamma)``; the limit is extrapolated by :func:`_shifted_power`, with a
    bootstrap percentile interval over environments. None when fewer than 4 points qualify.
    """
    keep = _spaced((log_t >= RUNNING_GAMMA_MIN) & (np.abs(positions).mean(axis=1) > 0), log_t)
    if keep.sum() < 4:
        return None
    gamma, pos = log_t[keep], np.abs(positions[keep].astype(float))
    k_eff = np.gradient(np.log(pos.mean(axis=1)), np.log(gamma))
    k_inf, shift = _shifted_power(gamma, pos.mean(axis=1))
    rng = np.random.default_rng(seed)
    boot = np.array(
        [
            _shifted_power(gamma, pos[:, rng.integers(0, pos.shape[1], pos.shape[1])].mean(axis=1))
            for _ in range(BOOTSTRAP_RESAMPLES)
        ]
    )
    lo, hi = np.percentile(boot[:, 0], [2.5, 97.5])
    return {
        "model": "E|x| = C (Gamma + c)^k_inf: running exponent k_inf Gamma / (Gamma + c)",
        "gamma": gamma.tolist(),
        "k_eff": k_eff.tolist(),
        "k_extrapolated": k_inf,
        "k_extrapolated_interval": [float(lo), float(hi)],
        "k_extrapolated_sd": float(np.std(boot[:, 0], ddof=1)),
        "shift": shift,
        "shift_interval": np.percentile(boot[:, 1], [2.5, 97.5]).tolist(),
        "level": 0.95,
    }


def _bootstrap(cfg: WalkConfig, trace: Trace, laws: tuple[str, ...], t_min: float | None):
    """The growth fit with a bootstrap over independent environments (None if they are shared)."""
    if cfg.potential in ("bounded", "field"):
        return None  # one environment shared by all walkers: no independent replicas
    rows = trace.extras["positions"].astype(float).T
    return bootstrap_growth(
        trace.t,
        rows,
        laws,
        statistic="rms",
        n_boot=BOOTSTRAP_RESAMPLES,
        seed=cfg.seed,
        t_min=t_min,
    )


def compute_walk(cfg: WalkConfig) -> tuple[dict[str, np.ndarray], dict]:
    """Run the experiment of ``cfg``: ``(records, summary)`` for ``run_or_load``."""
    if not isinstance(cfg, WalkConfig):
        raise TypeError(f"config must be a WalkConfig, got {type(cfg).__name__}")
    if cfg.method == "coarse":
        trace, info = _coarse(cfg)
        log_t = trace.extras["gamma"]
        laws = ("power_offset",)
        axis = (
            f"log-time: t_axis = round({LOG_TIME_RESOLUTION} log t); "
            "power_offset exponent = polylog exponent k"
        )
    else:
        trace, info = _direct(cfg)
        log_t = np.log(np.maximum(trace.t.astype(float), 1.0))
        laws = ("log", "polylog", "power", "power_offset")
        axis = "time t"
    t_min = LOG_TIME_RESOLUTION * math.log(1e3) if cfg.method == "coarse" else 1e3
    if (trace.t >= t_min).sum() < 8:
        t_min = None
    boot = _bootstrap(cfg, trace, laws, t_min)
    fit = boot.fit if boot is not None else fit_growth(trace, laws, t_min=t_min)
    summary = {
        "fit": fit.as_dict(),
        "fit_table": fit.table(),
        "fit_window_t_min": t_min,
        "axis": axis,
        "theory": _theory(cfg, trace, log_t),
        "bootstrap": None if boot is None else boot.as_dict(),
        "bootstrap_text": (
            "no bootstrap: one environment shared by all walkers (compare seeds instead)"
            if boot is None
            else boot.summary()
        ),
        **info,
    }
    exponent = ("power_offset", "nu") if cfg.method == "coarse" else ("polylog", "k")
    if exponent[0] in fit.fits:
        summary["polylog_exponent_measured"] = fit.fits[exponent[0]].params[exponent[1]]
        if boot is not None and exponent[0] in boot.intervals:
            summary["polylog_exponent_interval"] = list(boot.intervals[exponent[0]][exponent[1]])
            summary["polylog_exponent_sd"] = boot.spread[exponent[0]][exponent[1]]
    if cfg.potential == "fbm":
        summary["running_exponent"] = _running_exponent(trace.extras["positions"], log_t, cfg.seed)
    return trace.to_arrays(), summary


@contextmanager
def numba_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` numba threads (unchanged for ``None``), restored after.

    ``n`` is capped at the size of numba's thread pool (``NUMBA_NUM_THREADS``). A walk's
    result does not depend on it: every walker (and every coarse environment) has its own
    random stream.
    """
    import numba

    before = numba.get_num_threads()
    if n is not None:
        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def run_walk(
    config: WalkConfig,
    runs: str | os.PathLike = "runs",
    *,
    runtime: Runtime | None = None,
    force: bool = False,
) -> Run:
    """Run (or load the finished run of) a walk experiment under ``runs``.

    Parameters
    ----------
    config : WalkConfig
        The experiment (its hash names the folder ``walk-<hash>``).
    runs : path
        Parent folder of the run folders.
    runtime : diffusion.runtime.Runtime, optional
        Never part of the run's identity. ``threads`` sets numba's thread count for the
        computation (restored after); the other fields do not apply to one walk and are
        ignored: ``device``/``data_root``/checkpoints are the deep layer's, ``jobs`` is for
        sweeps (:func:`diffusion.sweep.run_walk_sweep`), and a walk is one compiled call
        with no progress to report, so ``progress`` shows nothing.
    force : bool
        Recompute even when a finished run exists.

    Returns
    -------
    diffusion.records.Run
        ``run.trace()`` is the trace (RMS displacement; extras ``positions``, ``mean_abs``,
        ``msd`` and, for 'coarse', ``gamma``); ``run.summary`` holds the growth-law fits and
        the theory.
    """
    if not isinstance(config, WalkConfig):
        raise TypeError(f"config must be a WalkConfig, got {type(config).__name__}")
    runtime = check_runtime(runtime, Runtime())
    with numba_threads(runtime.threads):
        return run_or_load(runs, config, compute_walk, force=force)


register_runner(WalkConfig, run_walk)
