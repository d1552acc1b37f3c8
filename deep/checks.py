"""The paper's claims about the large-batch table as named, two-sided checks.

Each check takes the cells of one table row (validation accuracies in percent, one per seed;
a seed fixes the train/validation split and the initial weights, so cells are paired by seed)
and returns a :class:`Check` that carries the rule, the verdict and every number it used:

``sb_converged``
    SB has converged: SB trained twice as long ends at the same accuracy,
    ``|mean(SB@2E) - mean(SB)| <= max(std(SB), std(SB@2E))`` (two-sided: a longer run that is
    clearly better, or clearly worse, both say that ``E`` epochs is not the plateau).
``lb_below_sb``
    LB generalises worse than a converged SB: with the per-seed differences
    ``d_i = SB_i - LB_i``, ``mean(d) - 2 se(d) > 0``, ``se = sd(d) / sqrt(n)``.
``ra_matches_sb``
    Regime adaptation closes the gap, from both sides:
    ``|mean(RA) - mean(SB)| <= max(std(SB), std(RA)) + 0.5`` points.

Standard deviations are sample standard deviations (``ddof=1``) over seeds.

The seed's distance experiment has three more, on traces of ``||w_t - w_0||``:

``log_law``
    For one batch size, ``a + b log t`` is the law the ruler reports (BIC's choice, with a
    richer law that degenerates onto log folded back onto it), or within ``LOG_DELTA_BIC`` of
    BIC's choice, or the fitted ``a + b (log t)^k`` has ``|k - 1| <= 0.25``.
``slope_decreases``
    The fitted log slope ``b`` decreases strictly as the batch grows.
``adapted_agree``
    Under regime adaptation (same steps, sqrt-scaled learning rate) the curves of all batch
    sizes agree: ``(max - min) / mean <= 0.15`` at every common log-spaced step past ``t_min``.
:func:`validation_noise_floor` gives the binomial standard error of one accuracy measured on
the validation split, the floor under any seed spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Check",
    "RA_TOLERANCE",
    "sb_converged",
    "lb_below_sb",
    "ra_matches_sb",
    "paired_differences",
    "validation_noise_floor",
    "log_law",
    "slope_decreases",
    "adapted_agree",
    "spread_at",
    "log_interp",
    "LOG_DELTA_BIC",
    "POLYLOG_K_TOLERANCE",
    "ADAPTED_SPREAD",
]

RA_TOLERANCE = 0.5
"""Points added to the larger seed std in ``ra_matches_sb``."""

LOG_DELTA_BIC = 2.0
"""The log law "holds" when its BIC is within this of the best law's."""

POLYLOG_K_TOLERANCE = 0.25
"""... or when the fitted polylog exponent ``k`` is within this of 1."""

ADAPTED_SPREAD = 0.15
"""Largest ``(max - min) / mean`` of the adapted curves at equal steps."""


@dataclass(frozen=True)
class Check:
    """One named claim about a table row and its verdict.

    Attributes
    ----------
    name : str
        ``sb_converged``, ``lb_below_sb`` or ``ra_matches_sb``.
    passed : bool or None
        The verdict; ``None`` when the check cannot be judged (a column missing, or fewer than
        two paired seeds).
    rule : str
        The inequality tested, in words and symbols.
    numbers : dict
        Every number the verdict used (means, stds, per-seed values, the two sides).
    reason : str
        Why the check could not be judged ("" when it was).
    """

    name: str
    passed: bool | None
    rule: str
    numbers: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def line(self) -> str:
        """One line for the markdown table: verdict, rule and numbers."""
        verdict = {True: "PASS", False: "FAIL", None: "not judged"}[self.passed]
        if self.passed is None:
            return f"`{self.name}`: {verdict} ({self.reason})"
        return f"`{self.name}`: **{verdict}** -- {self.summary()}"

    def summary(self) -> str:
        """The inequality with this row's numbers filled in."""
        n = self.numbers
        if self.name == "sb_converged":
            return (
                f"|{n['mean_long']:.2f} - {n['mean']:.2f}| = {n['difference']:.2f} "
                f"{'<=' if self.passed else '>'} max std {n['bound']:.2f} "
                f"(SB at {n['epochs']:g} vs {n['epochs_long']:g} epochs)"
            )
        if self.name == "lb_below_sb":
            per_seed = ", ".join(f"{d:.2f}" for d in n["differences"])
            return (
                f"SB - LB paired by seed: {per_seed}; mean {n['mean']:.2f} - 2 x se "
                f"{n['se']:.2f} = {n['lower']:.2f} {'>' if self.passed else '<='} 0"
            )
        if self.name == "log_law":
            k = n.get("polylog_k")
            k_text = f", polylog k = {k:.2f}" if k is not None else ""
            return (
                f"B={n['batch_size']}: best law {n['best']}, dBIC(log) = "
                f"{n['delta_bic_log']:.1f}{k_text} over t in [{n['t_min']:g}, {n['t_max']:g}]"
            )
        if self.name == "slope_decreases":
            pairs = ", ".join(
                f"B={b}: {s:.3f} ± {e:.3f}"
                for b, s, e in zip(n["batch_sizes"], n["slopes"], n["stderr"], strict=True)
            )
            return f"log slopes {pairs}"
        if self.name == "adapted_agree":
            since = (
                f"within the bound from step {n['agree_from']} on"
                if n.get("agree_from") is not None
                else "never within the bound at the end"
            )
            return (
                f"largest (max - min)/mean {n['worst']:.3f} at step {n['worst_step']}, "
                f"{n['last']:.3f} at the last common step; {since}; bound {ADAPTED_SPREAD}"
            )
        if self.name == "ra_matches_sb":
            return (
                f"|{n['mean_ra']:.2f} - {n['mean_sb']:.2f}| = {n['difference']:.2f} "
                f"{'<=' if self.passed else '>'} {n['bound']:.2f} "
                f"(max std {n['max_std']:.2f} + {RA_TOLERANCE})"
            )
        return str(n)

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "name": self.name,
            "passed": self.passed,
            "rule": self.rule,
            "numbers": self.numbers,
            "reason": self.reason,
        }


def _std(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def paired_differences(
    first: Sequence[float],
    first_seeds: Sequence[int],
    second: Sequence[float],
    second_seeds: Sequence[int],
) -> tuple[list[int], np.ndarray]:
    """``first - second`` for the seeds both cells share, in the order of ``first``.

    Returns
    -------
    seeds : list of int
        The shared seeds.
    differences : numpy.ndarray
        One difference per shared seed.
    """
    other = dict(zip(second_seeds, second, strict=True))
    seeds = [s for s in first_seeds if s in other]
    mine = dict(zip(first_seeds, first, strict=True))
    return seeds, np.array([mine[s] - other[s] for s in seeds], dtype=float)


def sb_converged(
    sb: Sequence[float], sb_long: Sequence[float], epochs: float, epochs_long: float
) -> Check:
    """Whether SB at ``epochs`` has reached its plateau (see the module docstring).

    Parameters
    ----------
    sb, sb_long : sequence of float
        Validation accuracies (percent) of SB at ``epochs`` and at ``epochs_long``.
    epochs, epochs_long : float
        The two budgets (for the record).
    """
    rule = "|mean(SB@2E) - mean(SB@E)| <= max(std(SB@E), std(SB@2E))"
    if len(sb) < 2 or len(sb_long) < 2:
        return Check("sb_converged", None, rule, reason="needs at least two seeds in each cell")
    mean, mean_long = float(np.mean(sb)), float(np.mean(sb_long))
    bound = max(_std(sb), _std(sb_long))
    difference = abs(mean_long - mean)
    numbers = {
        "mean": mean,
        "std": _std(sb),
        "mean_long": mean_long,
        "std_long": _std(sb_long),
        "difference": difference,
        "bound": bound,
        "epochs": float(epochs),
        "epochs_long": float(epochs_long),
    }
    return Check("sb_converged", bool(difference <= bound), rule, numbers)


def lb_below_sb(
    sb: Sequence[float], sb_seeds: Sequence[int], lb: Sequence[float], lb_seeds: Sequence[int]
) -> Check:
    """Whether LB is below SB, on differences paired by seed (see the module docstring)."""
    rule = "mean(SB_i - LB_i) - 2 sd(SB_i - LB_i) / sqrt(n) > 0, paired by seed"
    seeds, d = paired_differences(sb, sb_seeds, lb, lb_seeds)
    if d.size < 2:
        return Check("lb_below_sb", None, rule, reason="needs at least two paired seeds")
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    lower = mean - 2.0 * se
    numbers = {
        "seeds": seeds,
        "differences": d.tolist(),
        "mean": mean,
        "se": se,
        "lower": lower,
    }
    return Check("lb_below_sb", bool(lower > 0), rule, numbers)


def ra_matches_sb(sb: Sequence[float], ra: Sequence[float]) -> Check:
    """Whether +RA reaches SB's accuracy, within the seed spread (see the module docstring)."""
    rule = f"|mean(RA) - mean(SB)| <= max(std(SB), std(RA)) + {RA_TOLERANCE}"
    if len(sb) < 2 or len(ra) < 2:
        return Check("ra_matches_sb", None, rule, reason="needs at least two seeds in each cell")
    mean_sb, mean_ra = float(np.mean(sb)), float(np.mean(ra))
    max_std = max(_std(sb), _std(ra))
    bound = max_std + RA_TOLERANCE
    difference = abs(mean_ra - mean_sb)
    numbers = {
        "mean_sb": mean_sb,
        "mean_ra": mean_ra,
        "max_std": max_std,
        "difference": difference,
        "bound": bound,
        "signed_difference": mean_ra - mean_sb,
    }
    return Check("ra_matches_sb", bool(difference <= bound), rule, numbers)


def validation_noise_floor(accuracy: float, n_val: int) -> float:
    """Binomial standard error (points) of an accuracy measured on ``n_val`` samples.

    Parameters
    ----------
    accuracy : float
        Accuracy in percent, in [0, 100].
    n_val : int
        Size of the validation split.
    """
    if not 0 <= accuracy <= 100:
        raise ValueError(f"accuracy must be a percentage in [0, 100], got {accuracy!r}")
    if isinstance(n_val, bool) or not isinstance(n_val, (int, np.integer)) or n_val < 1:
        raise ValueError(f"n_val must be a positive integer, got {n_val!r}")
    p = accuracy / 100.0
    return 100.0 * math.sqrt(p * (1.0 - p) / int(n_val))


def log_law(fit: Any, *, batch_size: int | None = None, min_decades: float = 2.0) -> Check:
    """Whether ``a + b log t`` describes a distance trace (see the module docstring).

    Parameters
    ----------
    fit : diffusion.metrics.GrowthFit
        Growth laws fitted to the trace (``log`` must be among them).
    batch_size : int, optional
        For the record.
    min_decades : float
        A window of fewer decades of ``t`` cannot tell the laws apart: the check is then not
        judged (``passed`` is ``None``), whatever the fit says.
    """
    rule = (
        f"log is the law the ruler reports, or dBIC(log) <= {LOG_DELTA_BIC:g}, "
        f"or |k - 1| <= {POLYLOG_K_TOLERANCE} for a + b (log t)^k"
    )
    if "log" not in fit.fits:
        return Check("log_law", None, rule, reason="the log law was not fitted")
    delta = float(fit.delta("log"))
    k = None
    poly = fit.fits.get("polylog")
    if poly is not None and not getattr(poly, "at_bound", False):
        k = float(poly.params["k"])
    t_lo, t_hi = fit.fits["log"].t_range
    numbers = {
        "batch_size": batch_size,
        "best": fit.best.law,
        "delta_bic_log": delta,
        "polylog_k": k,
        "t_min": float(t_lo),
        "t_max": float(t_hi),
        "log_slope": float(fit.fits["log"].params["b"]),
    }
    decades = math.log10(t_hi / t_lo) if t_lo > 0 else math.inf
    numbers["decades"] = decades
    if decades < min_decades:
        reason = (
            f"B={batch_size}: window [{t_lo:g}, {t_hi:g}] spans {decades:.1f} decades "
            f"< {min_decades:g}; best law {numbers['best']}, dBIC(log) {delta:.1f}"
        )
        return Check("log_law", None, rule, numbers, reason=reason)
    reported = fit.best.law == "log"  # the ruler folds a degenerate richer law onto log
    holds = (
        reported or delta <= LOG_DELTA_BIC or (k is not None and abs(k - 1) <= POLYLOG_K_TOLERANCE)
    )
    return Check("log_law", bool(holds), rule, numbers)


def slope_decreases(slopes: dict[int, tuple[float, float]]) -> Check:
    """Whether the log slope ``b`` falls strictly as the batch size grows.

    Parameters
    ----------
    slopes : dict of int to (float, float)
        Batch size -> (slope, standard error).
    """
    rule = "b(B) strictly decreasing in B"
    sizes = sorted(slopes)
    if len(sizes) < 2:
        return Check("slope_decreases", None, rule, reason="needs at least two batch sizes")
    b = [float(slopes[s][0]) for s in sizes]
    numbers = {
        "batch_sizes": sizes,
        "slopes": b,
        "stderr": [float(slopes[s][1]) for s in sizes],
    }
    holds = all(x > y for x, y in zip(b[:-1], b[1:], strict=True))
    return Check("slope_decreases", bool(holds), rule, numbers)


def log_interp(trace: Any, step: float) -> float:
    """Distance of ``trace`` at ``step``, linear in ``log(1 + t)`` between recorded points
    (held at the end values outside them)."""
    t = np.log1p(np.asarray(trace.t, dtype=float))
    return float(np.interp(np.log1p(step), t, trace.distance))


def spread_at(traces: dict[int, Any], step: float) -> float:
    """``(max - min) / mean`` over batch sizes of the distance at ``step``.

    Each trace is interpolated linearly in ``log(1 + t)`` (:func:`log_interp`).
    """
    d = np.array([log_interp(tr, step) for tr in traces.values()])
    return float(np.ptp(d) / np.mean(d))


def adapted_agree(traces: dict[int, Any], t_min: float, per_decade: int = 10) -> Check:
    """Whether regime-adapted distance curves coincide at equal steps.

    Parameters
    ----------
    traces : dict of int to diffusion.metrics.Trace
        Batch size -> distance trace of the adapted run.
    t_min : float
        First step compared (past the initial transient).
    per_decade : int
        Log-spaced comparison steps per decade, from ``t_min`` to the common last step.
    """
    rule = f"(max - min)/mean <= {ADAPTED_SPREAD} at every common step >= t_min"
    if len(traces) < 2:
        return Check("adapted_agree", None, rule, reason="needs at least two batch sizes")
    end = min(float(tr.t[-1]) for tr in traces.values())
    if end <= t_min:
        return Check(
            "adapted_agree", None, rule, reason=f"the runs end at step {end:g} <= t_min {t_min:g}"
        )
    n = max(2, int(np.ceil(per_decade * np.log10(end / t_min))) + 1)
    steps = np.unique(np.round(np.geomspace(t_min, end, n)).astype(int))
    spreads = np.array([spread_at(traces, s) for s in steps])
    worst = int(np.argmax(spreads))
    outside = np.flatnonzero(spreads > ADAPTED_SPREAD)
    agree_from = None
    if outside.size == 0:
        agree_from = int(steps[0])
    elif outside[-1] + 1 < steps.size:
        agree_from = int(steps[outside[-1] + 1])
    numbers = {
        "batch_sizes": sorted(traces),
        "steps": steps.tolist(),
        "spreads": spreads.tolist(),
        "worst": float(spreads[worst]),
        "worst_step": int(steps[worst]),
        "last": float(spreads[-1]),
        "agree_from": agree_from,
    }
    return Check("adapted_agree", bool(spreads.max() <= ADAPTED_SPREAD), rule, numbers)
