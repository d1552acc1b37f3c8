"""The conclusions of Lemma 1 and Theorems 3-5, observed on runs and compared with predictions.

Two runs are made. The *discrete* run is the optimiser being checked (gradient descent with
the given step, or any injected update rule) for ``t_max`` steps, recorded at log-spaced
steps; its late window (the last ``window_decades`` decades) is fitted with the shared
growth-law fits of :mod:`diffusion.metrics`. The *flow* run is the gradient flow integrated
in log-time to ``t = flow_t_max`` (far beyond int64 steps), where the first-order constants
of Theorem 5 are extrapolated in ``1/log t`` (``y = c + d/log t + e/log^2 t``, least squares
over the last two thirds of ``log t``).

Each item states the measured value beside the predicted one and the tolerance that decides
the verdict; :class:`Tolerances` holds them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from diffusion.metrics import Trace, fit_law
from separable.checker.data_checks import Regime
from separable.checker.verdicts import CheckItem, Verdict
from separable.flow import FlowResult
from separable.optim import OptimResult
from separable.theory import Prediction

__all__ = ["Tolerances", "discrete_conclusions", "flow_conclusions", "GUARANTEES"]

GUARANTEES = {
    "lemma1": {Regime.THM4, Regime.THM3_BOUNDED, Regime.DEGENERATE, Regime.LEMMA1},
    "thm3": {Regime.THM4, Regime.THM3_BOUNDED, Regime.DEGENERATE},
    "thm4": {Regime.THM4},
    "thm5_loss": {Regime.THM4, Regime.THM3_BOUNDED, Regime.DEGENERATE},
    "thm5_const": {Regime.THM4},
}
"""Which regimes guarantee which conclusion."""


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
        Theorem 3: ``|d ||rho|| / d log t| <= rho_slope * ||w_hat||`` (``||w||`` itself grows
        with slope ``||w_hat||``).
    rho_slope_degenerate : float
        The same in the degenerate case, whose ``w_hat_2 log log t`` term has slope
        ``||w_hat_2|| / log t`` in ``log t``.
    w_tilde : float
        Theorem 4, discrete run: ``||rho(T) - w_tilde|| <= w_tilde * (1 + ||w_tilde||)``.
    rate_fraction : float
        Theorem 4, discrete run: the fitted decay exponent of ``||rho - w_tilde||`` is at
        least this fraction of the predicted ``min(lambda_min(H), theta - 1, 1)``.
    loss_exponent : float
        Theorem 5: ``|nu + 1| <= loss_exponent`` for the fitted ``L ~ a t^nu``.
    tL_rel : float
        Theorem 5: ``|t L(t) - ||w_hat||^2/eta| <= tL_rel * ||w_hat||^2/eta`` at the end.
    flow_floor : float
        Theorem 4, flow: ``||rho - w_tilde||`` must reach ``flow_floor * (1 + ||w_tilde||)``
        or decay as predicted (within a factor 10) from ``t = 1e10``.
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


# ----------------------------------------------------------------------------- helpers
def _item(name: str, ok: bool, evidence: str, guaranteed: bool, **values) -> CheckItem:
    return CheckItem(
        name,
        Verdict.OBSERVED if ok else Verdict.NOT_OBSERVED,
        evidence,
        guaranteed=guaranteed,
        values=values,
    )


def _slope(t: np.ndarray, y: np.ndarray, law: str) -> tuple[float, float, str]:
    """Fitted slope (``b`` of ``a + b log t`` or ``nu`` of ``a t^nu``) with its stderr."""
    fit = fit_law(Trace(t, y), law)
    key = "b" if law == "log" else "nu"
    return fit.params[key], fit.stderr[key], str(fit)


def _fmt_range(t: np.ndarray) -> str:
    return f"[{t[0]:.3g}, {t[-1]:.3g}]"


def discrete_conclusions(
    run: OptimResult,
    Z: np.ndarray,
    pred: Prediction | None,
    regime: Regime,
    tol: Tolerances,
    label: str,
) -> list[CheckItem]:
    """Lemma 1, Theorem 3, Theorem 4 and the loss rate of Theorem 5 on a discrete run.

    Parameters
    ----------
    run : separable.optim.OptimResult
    Z : numpy.ndarray
        Folded samples.
    pred : separable.theory.Prediction or None
        Predictions for this step size (None when the data are not separable).
    regime : Regime
        What the assumptions guarantee for this run.
    tol : Tolerances
    label : str
        Run label shown in item names (``"GD"``).
    """
    g = {k: regime in v for k, v in GUARANTEES.items()}
    tag = f" [{label}]"
    names = [
        "Lemma 1: L -> 0",
        "Lemma 1: ||w|| -> oo",
        "Lemma 1: margins -> oo",
        "Thm 3: ||w - w_hat log t|| = O(log log t)",
        "Thm 4: rho -> w_tilde",
        "Thm 5: L = O(1/t)",
    ]
    keys = ["lemma1", "lemma1", "lemma1", "thm3", "thm4", "thm5_loss"]
    tr = run.trace
    T = int(tr.t[-1])
    if run.status != "finished":
        return [
            _item(n + tag, False, f"the run diverged at step {run.stopped_at}", g[k])
            for n, k in zip(names, keys, strict=True)
        ]
    lo = T / 10.0**tol.window_decades
    win = tr.window(lo, T)
    if len(win) < 6:
        raise ValueError(
            f"t_max={T} leaves {len(win)} recorded points in the last "
            f"{tol.window_decades:g} decades; "
            f"need at least 6 (raise t_max or per_decade)"
        )
    t = win.t
    span = _fmt_range(t)
    k = tol.significance
    out: list[CheckItem] = []

    loss = np.asarray(win.extras["loss"], dtype=float)
    if np.all(np.isfinite(loss)) and loss[-1] > 0:
        nu, se, _ = _slope(t, loss, "power")
        ok = nu + k * se < 0 and loss[-1] < loss[0]
        ev = (
            f"L(T) = {loss[-1]:.4g}; fit L ~ a t^nu on {span}: nu = {nu:.4g} +- {se:.2g} "
            f"(observed if nu + {k:g} se < 0)"
        )
    else:
        nu = se = math.nan
        ok = bool(np.all(np.isfinite(loss)) and loss[-1] == 0.0)
        ev = f"L(T) = {loss[-1]:.4g} ({'underflowed to 0' if ok else 'not finite'})"
    out.append(_item(names[0] + tag, ok, ev, g["lemma1"], L_T=float(loss[-1]), nu=nu, nu_stderr=se))

    norm = np.asarray(win.extras["norm"], dtype=float)
    b, se, _ = _slope(t, norm, "log")
    w_hat_norm = float(np.linalg.norm(pred.w_hat)) if pred is not None else math.nan
    out.append(
        _item(
            names[1] + tag,
            b - k * se > 0,
            f"fit ||w|| = a + b log t on {span}: b = {b:.4g} +- {se:.2g}, predicted "
            f"||w_hat|| = {w_hat_norm:.4f} "
            f"(observed if b - {k:g} se > 0)",
            g["lemma1"],
            slope=b,
            slope_stderr=se,
            w_hat_norm=w_hat_norm,
        )
    )

    W = np.asarray(win.extras["w"], dtype=float)
    margins = (W @ Z.T).min(axis=1)
    b, se, _ = _slope(t, margins, "log")
    out.append(
        _item(
            names[2] + tag,
            b - k * se > 0 and margins[-1] > 0,
            f"min_n z_n.w(T) = {margins[-1]:.4g}; fit a + b log t on {span}: b = {b:.4g} +- "
            f"{se:.2g}, "
            f"predicted 1 (observed if min margin > 0 and b - {k:g} se > 0)",
            g["lemma1"],
            min_margin=float(margins[-1]),
            slope=b,
            slope_stderr=se,
        )
    )

    if pred is None:
        return out
    rho = np.asarray(win.extras["rho"], dtype=float)
    rho_norm = np.linalg.norm(rho, axis=1)
    b, se, _ = _slope(t, rho_norm, "log")
    factor = tol.rho_slope_degenerate if pred.w_tilde is None else tol.rho_slope
    limit = factor * w_hat_norm
    gap0, gap = float(win.extras["direction_gap"][0]), float(win.extras["direction_gap"][-1])
    out.append(
        _item(
            names[3] + tag,
            abs(b) <= limit,
            f"fit ||rho|| = a + b log t on {span}: b = {b:.4g} +- {se:.2g}, |b| <= "
            f"{factor:g} ||w_hat|| = "
            f"{limit:.4g}; ||rho(T)|| = {rho_norm[-1]:.4g}; direction gap {gap0:.3g} -> {gap:.3g}",
            g["thm3"],
            slope=b,
            slope_stderr=se,
            limit=limit,
            rho_T=float(rho_norm[-1]),
            direction_gap=gap,
            direction_gap_start=gap0,
        )
    )

    if pred.w_tilde is not None:
        r = np.linalg.norm(rho - pred.w_tilde, axis=1)
        nu_pred = min(pred.rate_support, pred.rate_nonsupport, 1.0)
        bound = tol.w_tilde * (1.0 + float(np.linalg.norm(pred.w_tilde)))
        if np.all(r > 0):
            nu, se, _ = _slope(t, r, "power")
        else:
            nu, se = -math.inf, 0.0
        ok = r[-1] <= bound and -nu >= tol.rate_fraction * nu_pred
        out.append(
            _item(
                names[4] + tag,
                ok,
                f"||rho(T) - w_tilde|| = {r[-1]:.3g} (<= {bound:.3g}); fit ~ t^-nu on "
                f"{span}: nu = {-nu:.3f}, "
                f"predicted min(lambda_min(H), theta-1, 1) = {nu_pred:.3f} (need >= "
                f"{tol.rate_fraction:g}x); "
                f"w_tilde = {np.array2string(pred.w_tilde, precision=4)}",
                g["thm4"],
                r_T=float(r[-1]),
                bound=bound,
                nu=-nu,
                nu_pred=nu_pred,
                w_tilde=pred.w_tilde.tolist(),
            )
        )
    else:
        out.append(
            CheckItem(
                names[4] + tag,
                Verdict.UNDETERMINED,
                "no finite w_tilde (degenerate duals)",
                guaranteed=g["thm4"],
            )
        )

    if np.all(np.isfinite(loss)) and np.all(loss > 0):
        nu, se, _ = _slope(t, loss, "power")
        tL = float(T * loss[-1])
        ok = abs(nu + 1.0) <= tol.loss_exponent
        ev = f"fit L ~ a t^nu on {span}: nu = {nu:.4f} (|nu + 1| <= {tol.loss_exponent:g})"
        values = {"nu": nu, "tL": tL}
        if g["thm5_const"]:
            tl_pred = pred.tL_limit
            ok = ok and abs(tL - tl_pred) <= tol.tL_rel * tl_pred
            ev += (
                f"; T L(T) = {tL:.5g} vs ||w_hat||^2/eta = {tl_pred:.5g} (rel. tol {tol.tL_rel:g})"
            )
            values["tL_pred"] = tl_pred
        out.append(_item(names[5] + tag, ok, ev, g["thm5_loss"], **values))
    else:
        out.append(
            _item(
                names[5] + tag,
                False,
                "the loss is not positive and finite over the window",
                g["thm5_loss"],
            )
        )
    return out


def _extrapolate(s: np.ndarray, y: np.ndarray, log_term: bool = False) -> tuple[float, float]:
    """Intercept ``c`` of ``y = c + d/s + e/s^2`` (least squares) and its standard error.

    ``log_term`` adds ``(log s)/s``, the all-datasets rate ``log log t / log t`` of the
    direction gap (degenerate data).
    """
    cols = [np.ones_like(s), 1.0 / s, 1.0 / s**2] + ([np.log(s) / s] if log_term else [])
    A = np.column_stack(cols)
    coef, res, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    dof = max(s.size - 3, 1)
    cov = np.linalg.pinv(A.T @ A) * float(resid @ resid) / dof
    return float(coef[0]), float(math.sqrt(max(cov[0, 0], 0.0)))


def flow_conclusions(
    flow: FlowResult, pred: Prediction, regime: Regime, tol: Tolerances
) -> list[CheckItem]:
    """Theorems 3, 4 and 5 (with constants) on the gradient flow (``eta = 1`` in time ``t``)."""
    g = {k: regime in v for k, v in GUARANTEES.items()}
    tag = " [flow]"
    s = np.asarray(flow.log_t, dtype=float)
    m = flow.measures
    sel = s >= s[-1] / 3.0
    ss = s[sel]
    span = f"[e^{ss[0]:.0f}, e^{ss[-1]:.0f}]"
    out: list[CheckItem] = []
    w_hat_norm = float(np.linalg.norm(pred.w_hat))

    gap = np.asarray(m["direction_gap"], dtype=float)
    lim, lim_se = _extrapolate(ss, gap[sel], log_term=True)
    out.append(
        _item(
            "Thm 3: w/||w|| -> w_hat/||w_hat||" + tag,
            abs(lim) <= tol.const_abs,
            f"direction gap {gap[sel][0]:.4g} at t = e^{ss[0]:.0f}, {gap[-1]:.4g} at t = "
            f"e^{ss[-1]:.0f}; "
            f"extrapolated (c + d log log t/log t + ...) to t -> oo: {lim:.3g} (|.| <= "
            f"{tol.const_abs:g})",
            g["thm3"],
            limit=lim,
            limit_stderr=lim_se,
            gap_end=float(gap[-1]),
        )
    )

    rho = np.asarray(m["rho"], dtype=float)
    rho_norm = np.linalg.norm(rho, axis=1)
    b = float(np.polyfit(ss, rho_norm[sel], 1)[0])
    limit = tol.rho_slope * w_hat_norm
    out.append(
        _item(
            "Thm 3: ||w - w_hat log t|| = O(log log t)" + tag,
            abs(b) <= limit,
            f"slope of ||rho|| in log t on {span}: {b:.3g}, |b| <= {limit:.4g}; "
            f"||rho(t_end)|| = {rho_norm[-1]:.4g}",
            g["thm3"],
            slope=b,
            limit=limit,
            rho_end=float(rho_norm[-1]),
        )
    )
    if pred.w_tilde is None:
        return out

    r = np.linalg.norm(rho - pred.w_tilde, axis=1)
    nu_pred = min(pred.rate_support, pred.rate_nonsupport, 1.0)
    i_a = int(np.searchsorted(s, math.log(1e10)))
    i_a = min(i_a, s.size - 1)
    floor = tol.flow_floor * (1.0 + float(np.linalg.norm(pred.w_tilde)))
    predicted = 10.0 * r[i_a] * math.exp(-nu_pred * (s[-1] - s[i_a]))
    bound = max(floor, predicted)
    out.append(
        _item(
            "Thm 4: rho -> w_tilde" + tag,
            r[-1] <= bound,
            f"||rho - w_tilde|| = {r[i_a]:.3g} at t = 1e10, {r[-1]:.3g} at t = "
            f"e^{s[-1]:.0f}; bound "
            f"max({tol.flow_floor:g}(1+||w_tilde||), 10 x decay at rate {nu_pred:.3f}) = "
            f"{bound:.3g}",
            g["thm4"],
            r_end=float(r[-1]),
            bound=bound,
            nu_pred=nu_pred,
        )
    )

    consts = (
        ("direction_gap", 1, pred.direction_const, "Thm 5: log t * direction gap -> c"),
        ("margin_gap", 1, pred.margin_const, "Thm 5: log t * margin gap -> c"),
        ("angle_gap", 2, pred.angle_const, "Thm 5: log^2 t * angle gap -> c"),
    )
    for key, power, c_pred, name in consts:
        y = np.asarray(m[key], dtype=float)[sel] * ss**power
        c_fit, c_se = _extrapolate(ss, y)
        allowed = tol.const_rel * abs(c_pred) + tol.const_abs
        out.append(
            _item(
                name + tag,
                abs(c_fit - c_pred) <= allowed,
                f"extrapolated c = {c_fit:.5f} (value {y[-1]:.5f} at t = e^{ss[-1]:.0f}) vs "
                f"predicted "
                f"{c_pred:.5f}; tol {tol.const_rel:g}|c| + {tol.const_abs:g} = {allowed:.2g}",
                g["thm5_const"],
                measured=c_fit,
                measured_stderr=c_se,
                predicted=c_pred,
                tolerance=allowed,
            )
        )
    tL = float(np.exp(s[-1]) * m["loss"][-1]) if np.isfinite(m["loss"][-1]) else math.nan
    tl_pred = pred.tL_limit
    out.append(
        _item(
            "Thm 5: t L -> ||w_hat||^2" + tag,
            abs(tL - tl_pred) <= tol.tL_rel * tl_pred,
            f"t L(t) = {tL:.6g} at t = e^{s[-1]:.0f} vs ||w_hat||^2 = {tl_pred:.6g} (rel. "
            f"tol {tol.tL_rel:g})",
            g["thm5_const"],
            measured=tL,
            predicted=tl_pred,
        )
    )
    return out
