"""The conclusions of Lemma 1 and Theorems 3-5, observed on runs and compared with predictions.

Each conclusion is a small class in :data:`CONCLUSIONS`: its name, the regimes that
guarantee it (:data:`GUARANTEES`), the runs it reads (``"gd"``, the discrete run being
checked; ``"flow"``, the gradient flow integrated in log-time) and an ``observe`` method
that turns an :class:`Observation` into a verdict with its evidence and numbers.

The residual is ``rho = w - (w_hat / a) log t`` for a loss with tail ``-l' ~ c e^{-a u}``
(:mod:`separable.theory`). A conclusion with a predicted limit is judged by
:func:`judge_limit`: *observed* when the run is within the tolerance at its end; else
*inconclusive* when the distance to the limit is still shrinking at the predicted transient
rate ``t^-nu`` (``nu = min(lambda_min(H), theta - 1, mu/a)``, and ``1`` for the discrete step)
or the rate is too slow to be seen in the window -- the evidence then says when the
tolerance would be reached; else *not observed*. :class:`Tolerances` holds every tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from diffusion.metrics import Trace, fit_law
from separable.checker.data_checks import Regime
from separable.checker.verdicts import CheckItem, Verdict
from separable.theory import Prediction

__all__ = [
    "Tolerances",
    "Observation",
    "Conclusion",
    "CONCLUSIONS",
    "GUARANTEES",
    "judge_limit",
    "observe_all",
]

GUARANTEES = {
    "lemma1": {Regime.THM4, Regime.THM3_BOUNDED, Regime.DEGENERATE, Regime.LEMMA1},
    "thm3": {Regime.THM4, Regime.THM3_BOUNDED, Regime.DEGENERATE},
    "thm4": {Regime.THM4},
    "thm5_loss": {Regime.THM4, Regime.THM3_BOUNDED, Regime.DEGENERATE},
    "thm5_const": {Regime.THM4},
    "derived": set(),
}
"""Which regimes guarantee which conclusion (``derived``: predicted here, not a theorem)."""


@dataclass(frozen=True)
class Tolerances:
    """The tolerances behind every verdict on a conclusion.

    Attributes
    ----------
    window_decades : float
        Width, in decades of ``t``, of the late window of the discrete run.
    significance : float
        A slope counts as positive (negative) when it exceeds zero by this many standard errors.
    rho_slope : float
        Theorem 3: ``|d ||rho|| / d log t| <= rho_slope * ||w_hat|| / a`` (``||w||`` itself
        grows with slope ``||w_hat|| / a``).
    rho_slope_degenerate : float
        The same in the degenerate case, whose ``w_hat_2 log log t`` term has slope
        ``||w_hat_2|| / log t`` in ``log t``.
    w_tilde : float
        Theorem 4, discrete run: ``||rho(T) - w_tilde|| <= w_tilde * (1 + ||w_tilde||)``.
    rate_fraction : float
        A distance to a limit that shrinks like ``t^-nu_fit`` with ``nu_fit`` at least this
        fraction of the predicted rate is a transient still running (inconclusive).
    loss_exponent : float
        Theorem 5 without constants: ``t L(t) ~ t^kappa`` with ``kappa <= loss_exponent``.
    tL_rel : float
        Theorem 5: ``|t L(t) - ||w_hat||^2/(eta a^2)| <= tL_rel * ||w_hat||^2/(eta a^2)``.
    flow_floor : float
        Theorem 4, flow: ``||rho - w_tilde|| <= flow_floor * (1 + ||w_tilde||)``.
    const_rel, const_abs : float
        Theorem 5 constants on the flow: ``|c_fit - c| <= const_rel |c| + const_abs``.
    """

    window_decades: float = 2.0
    significance: float = 3.0
    rho_slope: float = 0.1
    rho_slope_degenerate: float = 0.25
    w_tilde: float = 0.1
    rate_fraction: float = 0.5
    loss_exponent: float = 0.1
    tL_rel: float = 0.02
    flow_floor: float = 1e-6
    const_rel: float = 0.01
    const_abs: float = 1e-3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"{f.name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True)
class Observation:
    """One run, reduced to what the conclusions read (its late window).

    Attributes
    ----------
    run : str
        ``"gd"`` (the discrete run) or ``"flow"``.
    tag : str
        Suffix of item names (``" [GD eta=0.1]"``, ``" [flow]"``).
    log_t : numpy.ndarray
        ``log t`` over the window.
    w, rho : numpy.ndarray, shape (T, d)
        Weights and ``rho = w - (w_hat/a) log t`` (``rho`` is None without a prediction).
    loss : numpy.ndarray
        ``L(w)``.
    gaps : dict of str to numpy.ndarray
        ``direction_gap``, ``angle_gap``, ``margin_gap``.
    Z : numpy.ndarray
        Folded samples.
    pred : Prediction or None
    tol : Tolerances
    failed : str or None
        Why the run has no window (diverged), else None.
    tL : numpy.ndarray or None
        ``t L(t)`` (computed in log form where ``t`` overflows), default ``e^s L``.
    """

    run: str
    tag: str
    log_t: np.ndarray
    w: np.ndarray
    rho: np.ndarray | None
    loss: np.ndarray
    gaps: dict
    Z: np.ndarray
    pred: Prediction | None
    tol: Tolerances
    failed: str | None = None
    tL: np.ndarray | None = None

    @property
    def t_loss(self) -> np.ndarray:
        """``t L(t)`` over the window."""
        if self.tL is not None:
            return self.tL
        with np.errstate(over="ignore", invalid="ignore"):
            return np.exp(self.log_t) * self.loss

    @property
    def span(self) -> str:
        """The window as text."""
        if self.run == "flow":
            return f"[e^{self.log_t[0]:.0f}, e^{self.log_t[-1]:.0f}]"
        return f"[{math.exp(self.log_t[0]):.3g}, {math.exp(self.log_t[-1]):.3g}]"

    @property
    def rate(self) -> float:
        """Predicted transient rate of this run (the discrete step adds ``O(1/t)``)."""
        nu = self.pred.rate if self.pred is not None else math.nan
        return min(nu, 1.0) if self.run == "gd" else nu


# ----------------------------------------------------------------------------- helpers
def _slope(s: np.ndarray, y: np.ndarray, law: str) -> tuple[float, float]:
    """Fitted slope (``b`` of ``a + b log t`` or ``nu`` of ``a t^nu``) with its stderr.

    Only for the discrete run, whose ``t = e^s`` are integer steps.
    """
    fit = fit_law(Trace(np.rint(np.exp(s)).astype(np.int64), y), law)
    key = "b" if law == "log" else "nu"
    return fit.params[key], fit.stderr[key]


def _decay_rate(s: np.ndarray, dev: np.ndarray) -> float:
    """``nu`` of ``dev ~ t^-nu`` by least squares in ``log t`` (``inf`` if it reached 0)."""
    if np.any(dev <= 0) or not np.all(np.isfinite(dev)):
        return math.inf if dev[-1] == 0 else math.nan
    return float(-np.polyfit(s, np.log(dev), 1)[0])


def judge_limit(
    s: np.ndarray, dev: np.ndarray, tol: float, rate: float, fraction: float
) -> tuple[Verdict, str, dict]:
    """Verdict on ``dev -> 0`` (the distance to a predicted limit) over a window of ``log t``.

    Parameters
    ----------
    s : numpy.ndarray
        ``log t`` of the window.
    dev : numpy.ndarray
        Distance to the predicted limit at each ``s``.
    tol : float
        The tolerance at the end of the run.
    rate : float
        Predicted transient rate ``nu``: ``dev ~ t^-nu``.
    fraction : float
        See :attr:`Tolerances.rate_fraction`.

    Returns
    -------
    verdict, text, values
        Observed if ``dev(T) <= tol``; inconclusive if it is not yet but shrinks at
        ``fraction * nu`` or faster, or if ``nu`` is too slow to show in the window
        (``nu * width < 0.5``) while ``dev`` does not grow by 10%; otherwise not observed.
    """
    end = float(dev[-1])
    nu_fit = _decay_rate(s, dev)
    values = {"deviation": end, "tolerance": tol, "nu_fit": nu_fit, "nu_pred": rate}
    if end <= tol:
        return Verdict.OBSERVED, f"{end:.3g} <= {tol:.3g}", values
    width = float(s[-1] - s[0])
    if math.isfinite(rate) and rate > 0 and math.isfinite(nu_fit):
        needed = float(s[-1] + math.log(end / tol) / rate)
        values["log_t_needed"] = needed
        slow = rate * width < 0.5 and nu_fit * width > -0.1
        if nu_fit >= fraction * rate or slow:
            why = (
                f"{end:.3g} > {tol:.3g} but shrinking like t^-{nu_fit:.3g} (predicted "
                f"t^-{rate:.3g}); the tolerance is reached near t = e^{needed:.0f}, beyond "
                f"this run"
            )
            return Verdict.INCONCLUSIVE, why, values
    return (
        Verdict.NOT_OBSERVED,
        f"{end:.3g} > {tol:.3g} and not shrinking at the predicted rate "
        f"(t^-{nu_fit:.3g} vs t^-{rate:.3g})",
        values,
    )


def _extrapolate(s: np.ndarray, y: np.ndarray, log_term: bool = False) -> tuple[float, float]:
    """Intercept ``c`` of ``y = c + d/s + e/s^2`` (least squares) and its standard error.

    ``log_term`` adds ``(log s)/s``, the all-datasets rate ``log log t / log t`` of the
    direction gap (degenerate data).
    """
    cols = [np.ones_like(s), 1.0 / s, 1.0 / s**2] + ([np.log(s) / s] if log_term else [])
    A = np.column_stack(cols)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    dof = max(s.size - len(cols), 1)
    cov = np.linalg.pinv(A.T @ A) * float(resid @ resid) / dof
    return float(coef[0]), float(math.sqrt(max(cov[0, 0], 0.0)))


def _w_hat_norm(obs: Observation) -> float:
    return float(np.linalg.norm(obs.pred.w_hat)) / obs.pred.a if obs.pred else math.nan


# ----------------------------------------------------------------------------- conclusions
class Conclusion:
    """One conclusion of a theorem: ``observe`` an :class:`Observation`.

    Attributes
    ----------
    name : str
    key : str
        Key of :data:`GUARANTEES`.
    runs : tuple of str
        The runs it is observed on.
    needs : str or None
        The prediction field it needs (``"pred"``, ``"w_tilde"``, ``"w_tilde_span"``).
    """

    name: str = ""
    key: str = "lemma1"
    runs: tuple[str, ...] = ("gd",)
    needs: str | None = None

    def applies(self, obs: Observation) -> bool:
        """Whether it can be observed on ``obs``."""
        if obs.run not in self.runs:
            return False
        if self.needs is None:
            return True
        return obs.pred is not None and (
            self.needs == "pred" or getattr(obs.pred, self.needs) is not None
        )

    def observe(self, obs: Observation) -> tuple[Verdict, str, dict]:
        """Verdict, evidence and numbers."""
        raise NotImplementedError


class LossToZero(Conclusion):
    name = "Lemma 1: L -> 0"

    def observe(self, obs):
        loss = obs.loss
        if np.all(np.isfinite(loss)) and loss[-1] > 0:
            nu, se = _slope(obs.log_t, loss, "power")
            k = obs.tol.significance
            ok = nu + k * se < 0 and loss[-1] < loss[0]
            ev = (
                f"L(T) = {loss[-1]:.4g}; fit L ~ a t^nu on {obs.span}: nu = {nu:.4g} +- "
                f"{se:.2g} (observed if nu + {k:g} se < 0)"
            )
        else:
            nu = se = math.nan
            ok = bool(np.all(np.isfinite(loss)) and loss[-1] == 0.0)
            ev = f"L(T) = {loss[-1]:.4g} ({'zero' if ok else 'not finite'})"
        verdict = Verdict.OBSERVED if ok else Verdict.NOT_OBSERVED
        return verdict, ev, {"L_T": float(loss[-1]), "nu": nu, "nu_stderr": se}


class NormGrows(Conclusion):
    name = "Lemma 1: ||w|| -> oo"

    def observe(self, obs):
        b, se = _slope(obs.log_t, np.linalg.norm(obs.w, axis=1), "log")
        k = obs.tol.significance
        ev = (
            f"fit ||w|| = a + b log t on {obs.span}: b = {b:.4g} +- {se:.2g}, predicted "
            f"||w_hat||/a = {_w_hat_norm(obs):.4f} (observed if b - {k:g} se > 0)"
        )
        verdict = Verdict.OBSERVED if b - k * se > 0 else Verdict.NOT_OBSERVED
        return verdict, ev, {"slope": b, "slope_stderr": se, "w_hat_norm": _w_hat_norm(obs)}


class MarginsGrow(Conclusion):
    name = "Lemma 1: margins -> oo"

    def observe(self, obs):
        margins = (obs.w @ obs.Z.T).min(axis=1)
        b, se = _slope(obs.log_t, margins, "log")
        k = obs.tol.significance
        ok = b - k * se > 0 and margins[-1] > 0
        ev = (
            f"min_n z_n.w(T) = {margins[-1]:.4g}; fit a + b log t on {obs.span}: b = {b:.4g} "
            f"+- {se:.2g}, predicted 1/a (observed if min margin > 0 and b - {k:g} se > 0)"
        )
        verdict = Verdict.OBSERVED if ok else Verdict.NOT_OBSERVED
        return verdict, ev, {"min_margin": float(margins[-1]), "slope": b, "slope_stderr": se}


class RhoLogLog(Conclusion):
    name = "Thm 3: ||w - w_hat log t|| = O(log log t)"
    key = "thm3"
    runs = ("gd", "flow")
    needs = "pred"

    def observe(self, obs):
        rho_norm = np.linalg.norm(obs.rho, axis=1)
        b = float(np.polyfit(obs.log_t, rho_norm, 1)[0])
        degenerate = obs.pred.theorem == "degenerate"
        factor = obs.tol.rho_slope_degenerate if degenerate else obs.tol.rho_slope
        limit = factor * _w_hat_norm(obs)
        gap = obs.gaps["direction_gap"]
        ev = (
            f"slope of ||rho|| = ||w - w_hat log t / a|| in log t on {obs.span}: {b:.4g}, |b| <= "
            f"{factor:g} ||w_hat||/a = {limit:.4g}; ||rho(T)|| = {rho_norm[-1]:.4g}; "
            f"direction gap {gap[0]:.3g} -> {gap[-1]:.3g}"
        )
        verdict = Verdict.OBSERVED if abs(b) <= limit else Verdict.NOT_OBSERVED
        half = obs.log_t.size // 2
        if verdict is Verdict.NOT_OBSERVED and half >= 3:
            early = abs(float(np.polyfit(obs.log_t[:half], rho_norm[:half], 1)[0]))
            late = abs(float(np.polyfit(obs.log_t[half:], rho_norm[half:], 1)[0]))
            if late < early and obs.rate * obs.log_t[0] < 3.0:
                verdict = Verdict.INCONCLUSIVE
                ev += (
                    f"; the slope is shrinking ({early:.3g} -> {late:.3g} between the window's "
                    f"halves) and the t^-{obs.rate:.3g} transient is still "
                    f"{math.exp(-obs.rate * obs.log_t[0]):.2g} at its start"
                )
        values = {
            "slope": b,
            "limit": limit,
            "rho_T": float(rho_norm[-1]),
            "direction_gap": float(gap[-1]),
            "direction_gap_start": float(gap[0]),
        }
        return verdict, ev, values


class RhoToWTilde(Conclusion):
    name = "Thm 4: rho -> w_tilde"
    key = "thm4"
    runs = ("gd", "flow")
    needs = "w_tilde"

    def observe(self, obs):
        wt = obs.pred.w_tilde
        dev = np.linalg.norm(obs.rho - wt, axis=1)
        scale = 1.0 + float(np.linalg.norm(wt))
        tol = (obs.tol.w_tilde if obs.run == "gd" else obs.tol.flow_floor) * scale
        verdict, text, values = judge_limit(obs.log_t, dev, tol, obs.rate, obs.tol.rate_fraction)
        alpha_S = obs.pred.alpha[obs.pred.support]
        ev = (
            f"||rho(T) - w_tilde|| on {obs.span}: {text}; w_tilde = "
            f"{np.array2string(wt, precision=4)} with eta c a e^(-a z.w_tilde) = alpha_S = "
            f"{np.array2string(alpha_S, precision=4)}"
        )
        values.update(
            r_T=float(dev[-1]), w_tilde=wt.tolist(), alpha_S=alpha_S.tolist(), nu=values["nu_fit"]
        )
        return verdict, ev, values


class InSpanRho(Conclusion):
    name = "P_S rho -> P_S w_tilde (derived; SVs do not span)"
    key = "derived"
    runs = ("gd", "flow")
    needs = "w_tilde_span"

    def applies(self, obs):
        return super().applies(obs) and obs.pred.w_tilde is None

    def observe(self, obs):
        B = obs.pred.span_basis
        dev = np.linalg.norm(obs.rho @ B.T - B @ obs.pred.w_tilde_span, axis=1)
        scale = 1.0 + float(np.linalg.norm(obs.pred.w_tilde_span))
        tol = (obs.tol.w_tilde if obs.run == "gd" else obs.tol.flow_floor) * scale
        verdict, text, values = judge_limit(obs.log_t, dev, tol, obs.rate, obs.tol.rate_fraction)
        out = np.linalg.norm(obs.rho - (obs.rho @ B.T) @ B, axis=1)
        ev = (
            f"in span(Z_S): {text}; the rest (not predicted, bounded by Thm 3) "
            f"{out[0]:.4g} -> {out[-1]:.4g}"
        )
        return verdict, ev, values


class LossRate(Conclusion):
    name = "Thm 5: L = O(1/t)"
    key = "thm5_loss"
    needs = "pred"

    def observe(self, obs):
        loss = obs.loss
        if not (np.all(np.isfinite(loss)) and np.all(loss > 0)):
            return Verdict.NOT_OBSERVED, "the loss is not positive and finite over the window", {}
        tL = obs.t_loss
        if obs.pred.w_tilde is not None:  # Theorem 4 data: the limit is predicted
            target = obs.pred.tL_limit
            verdict, text, values = judge_limit(
                obs.log_t,
                np.abs(tL - target),
                obs.tol.tL_rel * target,
                obs.rate,
                obs.tol.rate_fraction,
            )
            ev = (
                f"T L(T) = {tL[-1]:.5g} vs ||w_hat||^2/(eta a^2) = {target:.5g} on "
                f"{obs.span}: {text}"
            )
            values.update(tL=float(tL[-1]), tL_pred=target)
            return verdict, ev, values
        kappa, se = _slope(obs.log_t, tL, "power")
        ok = kappa <= obs.tol.loss_exponent
        ev = (
            f"t L(t) ~ t^kappa on {obs.span}: kappa = {kappa:.4f} +- {se:.2g} "
            f"(bounded if kappa <= {obs.tol.loss_exponent:g}); T L(T) = {tL[-1]:.5g}"
        )
        verdict = Verdict.OBSERVED if ok else Verdict.NOT_OBSERVED
        return verdict, ev, {"kappa": kappa, "tL": float(tL[-1])}


class DirectionLimit(Conclusion):
    name = "Thm 3: w/||w|| -> w_hat/||w_hat||"
    key = "thm3"
    runs = ("flow",)
    needs = "pred"

    def observe(self, obs):
        gap = obs.gaps["direction_gap"]
        lim, lim_se = _extrapolate(obs.log_t, gap, log_term=True)
        ok = abs(lim) <= obs.tol.const_abs
        ev = (
            f"direction gap {gap[0]:.4g} at t = e^{obs.log_t[0]:.0f}, {gap[-1]:.4g} at t = "
            f"e^{obs.log_t[-1]:.0f}; extrapolated (c + d log log t/log t + ...) to t -> oo: "
            f"{lim:.3g} (|.| <= {obs.tol.const_abs:g})"
        )
        verdict = Verdict.OBSERVED if ok else Verdict.NOT_OBSERVED
        return verdict, ev, {"limit": lim, "limit_stderr": lim_se, "gap_end": float(gap[-1])}


class GapConstant(Conclusion):
    """``log^p t * gap -> c`` (Theorem 5's first-order constants), extrapolated in 1/log t."""

    key = "thm5_const"
    runs = ("flow",)
    needs = "w_tilde"

    def __init__(self, gap: str, power: int, field: str):
        self.gap, self.power, self.field = gap, power, field
        self.name = f"Thm 5: log{'^2' if power == 2 else ''} t * {gap.replace('_', ' ')} -> c"

    def observe(self, obs):
        y = obs.gaps[self.gap] * obs.log_t**self.power
        c_fit, c_se = _extrapolate(obs.log_t, y)
        c_pred = getattr(obs.pred, self.field)
        allowed = obs.tol.const_rel * abs(c_pred) + obs.tol.const_abs
        ok = abs(c_fit - c_pred) <= allowed
        ev = (
            f"extrapolated c = {c_fit:.5f} (value {y[-1]:.5f} at t = e^{obs.log_t[-1]:.0f}) vs "
            f"predicted {c_pred:.5f}; tol {obs.tol.const_rel:g}|c| + {obs.tol.const_abs:g} = "
            f"{allowed:.2g}"
        )
        verdict = Verdict.OBSERVED if ok else Verdict.NOT_OBSERVED
        # a transient t^-nu that has not died out yet pollutes the extrapolation
        if not ok and obs.rate * obs.log_t[0] < 20:
            verdict = Verdict.INCONCLUSIVE
            left = math.exp(-obs.rate * obs.log_t[0])
            ev += f"; the t^-{obs.rate:.3g} transient is still {left:.2g} at the window start"
        values = {
            "measured": c_fit,
            "measured_stderr": c_se,
            "predicted": c_pred,
            "tolerance": allowed,
        }
        return verdict, ev, values


class FlowLossLimit(Conclusion):
    name = "Thm 5: t L -> ||w_hat||^2 / a^2"
    key = "thm5_const"
    runs = ("flow",)
    needs = "w_tilde"

    def observe(self, obs):
        tL = obs.t_loss
        target = obs.pred.tL_limit
        verdict, text, values = judge_limit(
            obs.log_t, np.abs(tL - target), obs.tol.tL_rel * target, obs.rate, obs.tol.rate_fraction
        )
        ev = f"t L(t) = {tL[-1]:.6g} at t = e^{obs.log_t[-1]:.0f} vs {target:.6g}: {text}"
        values.update(measured=float(tL[-1]), predicted=target)
        return verdict, ev, values


CONCLUSIONS: tuple[Conclusion, ...] = (
    LossToZero(),
    NormGrows(),
    MarginsGrow(),
    DirectionLimit(),
    RhoLogLog(),
    RhoToWTilde(),
    InSpanRho(),
    LossRate(),
    GapConstant("direction_gap", 1, "direction_const"),
    GapConstant("margin_gap", 1, "margin_const"),
    GapConstant("angle_gap", 2, "angle_const"),
    FlowLossLimit(),
)
"""The registry, in report order."""


def observe_all(obs: Observation, regime: Regime) -> list[CheckItem]:
    """Every conclusion of :data:`CONCLUSIONS` that applies to ``obs``, as report items."""
    out = []
    for conclusion in CONCLUSIONS:
        if not conclusion.applies(obs):
            continue
        guaranteed = regime in GUARANTEES[conclusion.key]
        if obs.failed:
            verdict, ev, values = Verdict.NOT_OBSERVED, obs.failed, {}
        else:
            verdict, ev, values = conclusion.observe(obs)
        out.append(
            CheckItem(conclusion.name + obs.tag, verdict, ev, guaranteed=guaranteed, values=values)
        )
    return out
