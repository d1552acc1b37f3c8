"""``check(loss, X, y, eta)``: assumptions, data checks, runs and verdicts in one call.

The phases run in order -- the loss assumptions (sympy), the data and step checks, the
prediction (:func:`separable.theory.predict` with the loss's own tail constants ``c``, ``a``,
``mu``), the discrete run, the gradient flow -- under one deadline (``timeout``): a check
that runs past it stops where it is and reports what it found, with the exit code 4.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import warnings

import numpy as np
import sympy as sp

from diffusion.validation import check_real
from separable.checker.assumptions import LossAssumptions, check_loss
from separable.checker.conclusions import Observation, Tolerances, observe_all
from separable.checker.data_checks import DataChecks, Regime, check_data
from separable.checker.loss_input import loss_expression
from separable.checker.report import CheckReport
from separable.checker.symbolic import CheckTimeout, deadline, numeric
from separable.checker.verdicts import Verdict
from separable.data import fold
from separable.flow import FlowResult, gradient_flow
from separable.losses import Loss, TailForm, from_expression
from separable.optim import GD, CustomUpdate, Optimizer, OptimResult, StepSizeWarning, optimize
from separable.theory import Prediction, predict

__all__ = ["check", "cached_check_loss", "FLOW_LOG_T_CAP"]

FLOW_LOG_T_CAP = 3000.0
"""Farthest ``log t`` the flow is run to when a slow transient needs it."""


@functools.lru_cache(maxsize=64)
def cached_check_loss(expr: sp.Expr, seconds: float) -> LossAssumptions:
    """:func:`~separable.checker.assumptions.check_loss`, remembered per expression."""
    return check_loss(expr, seconds=seconds)


def _tail(assumptions: LossAssumptions) -> tuple[float, float, float] | None:
    """``(c, a, mu)`` of a tight exponential tail (``mu = inf`` when there is no remainder)."""
    if assumptions.item("A3 exp tail").verdict is not Verdict.HOLDS:
        return None
    t = assumptions.tail
    c, a = numeric(t.c), numeric(t.a)
    mus = [numeric(m) for m in (t.mu_plus, t.mu_minus) if m is not None and m != sp.oo]
    mus = [m for m in mus if m is not None and m > 0]
    if c is None or a is None:
        return None
    return c, a, min(mus) if mus else math.inf


def _numeric_loss(loss_obj: Loss, expr: sp.Expr, assumptions: LossAssumptions) -> Loss:
    """The loss with stable numerics (its tail form far out) and the beta found symbolically."""
    if loss_obj.kernel_id >= 0:
        return loss_obj
    tail = _tail(assumptions)
    form = TailForm(tail[0], tail[1]) if tail else None
    obj = from_expression(expr, name=loss_obj.name, tail=form)
    # the beta found here (a kinked loss's l'' holds a DiracDelta); inf without a global one
    beta = assumptions.beta_value
    return dataclasses.replace(obj, beta=beta if beta is not None else math.inf)


def _prediction(
    Z: np.ndarray, eta: float, w0: np.ndarray, data: DataChecks, assumptions: LossAssumptions
) -> Prediction:
    c, a, mu = _tail(assumptions) or (1.0, 1.0, math.inf)
    return predict(Z, eta=eta, w0=w0, svm=data.svm, c=c, a=a, mu=mu)


def _rho(W: np.ndarray, log_t: np.ndarray, pred: Prediction | None) -> np.ndarray | None:
    return None if pred is None else W - np.outer(log_t, pred.w_hat / pred.a)


def _gd_observation(
    run: OptimResult, Z: np.ndarray, pred: Prediction, tol: Tolerances, tag: str
) -> Observation:
    tr = run.trace
    T = float(tr.t[-1])
    win = tr.window(T / 10.0**tol.window_decades, T)
    failed = None if run.status == "finished" else f"the run diverged at step {run.stopped_at}"
    if failed is None and len(win) < 6:
        raise ValueError(
            f"t_max={T:g} leaves {len(win)} recorded points in the last "
            f"{tol.window_decades:g} decades; need at least 6 (raise t_max or per_decade)"
        )
    s = np.log(np.asarray(win.t, dtype=float))
    W = np.asarray(win.extras["w"], dtype=float)
    gaps = {
        k: np.asarray(win.extras[k], dtype=float)
        for k in ("direction_gap", "angle_gap", "margin_gap")
    }
    loss = np.asarray(win.extras["loss"], dtype=float)
    return Observation("gd", tag, s, W, _rho(W, s, pred), loss, gaps, Z, pred, tol, failed)


def _flow_t_loss(flow: FlowResult, Z: np.ndarray, loss_obj: Loss, a: float) -> np.ndarray:
    """``t L(t)`` of the flow; beyond ``t = e^600`` (``t`` overflows, ``L`` underflows) in log
    form from the tail, ``l(u) = -l'(u)/a`` to the tail's order."""
    s = np.asarray(flow.log_t, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.exp(np.minimum(s, 600.0)) * np.asarray(flow.measures["loss"], dtype=float)
    far = s > 600.0
    if far.any():
        lnd = loss_obj.log_neg_derivative(flow.w[far] @ Z.T)
        out[far] = np.exp(s[far, None] + lnd).sum(axis=1) / a
    return out


def _flow_observation(
    flow: FlowResult, Z: np.ndarray, pred: Prediction, tol: Tolerances, loss_obj: Loss
) -> Observation:
    s = np.asarray(flow.log_t, dtype=float)
    sel = s >= s[-1] / 3.0
    m = flow.measures
    gaps = {
        k: np.asarray(m[k], dtype=float)[sel] for k in ("direction_gap", "angle_gap", "margin_gap")
    }
    tL = _flow_t_loss(flow, Z, loss_obj, pred.a)[sel]
    return Observation(
        "flow",
        " [flow]",
        s[sel],
        flow.w[sel],
        flow.rho[sel],
        np.asarray(m["loss"])[sel],
        gaps,
        Z,
        pred,
        tol,
        tL=tL,
    )


def _flow_end(flow_t_max: float, pred: Prediction, tol: Tolerances) -> float:
    """``log t`` to run the flow to: far enough for the predicted transient to reach the floor."""
    s = math.log(flow_t_max)
    if math.isfinite(pred.rate) and pred.rate > 0:
        s = max(s, math.log(1e10) + math.log(10.0 / tol.flow_floor) / pred.rate)
    return min(s, max(FLOW_LOG_T_CAP, math.log(flow_t_max)))


def _discrete_run(Z, rule, loss_obj, t_max, w0, per_decade, svm, notes) -> OptimResult | None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            run = optimize(
                Z, rule=rule, loss=loss_obj, t_max=t_max, w0=w0, per_decade=per_decade, svm=svm
            )
        except FloatingPointError as exc:
            run = None
            notes.append(f"the discrete run diverged before its first record: {exc}")
    # the step condition is the checker's own item; keep only other warnings (divergence)
    notes += sorted({str(w.message) for w in caught if not issubclass(w.category, StepSizeWarning)})
    return run


def check(
    loss: str | sp.Expr | Loss,
    X: object,
    y: object | None = None,
    eta: float = 1.0,
    *,
    w0: object | None = None,
    t_max: float | None = None,
    flow_t_max: float = 1e100,
    optimizer: Optimizer | None = None,
    tolerances: Tolerances | None = None,
    per_decade: int = 20,
    seconds: float = 10.0,
    timeout: float | None = None,
    data_name: str = "data",
) -> CheckReport:
    """Check the convex-case theory of JMLR 2018 on one loss, data set and step size.

    The loss assumptions are checked symbolically, the data and the step numerically; the
    applicable theorem follows, and its conclusions are observed on the discrete run (the
    optimiser, gradient descent with step ``eta`` by default) and on the gradient flow.

    Parameters
    ----------
    loss : str, sympy expression or Loss
        A registry name (``"logistic"``), an expression string in ``u``
        (``"log(1+exp(-u))"``), a sympy expression in ``u`` or a Loss.
    X : array_like, shape (N, d)
        Samples, or folded samples ``y_n x_n`` when ``y`` is None.
    y : array_like, shape (N,), optional
        Labels in ``{-1, +1}`` or ``{0, 1}``.
    eta : float
        Step size of gradient descent (> 0).
    w0 : array_like, shape (d,), optional
        Start (default zeros).
    t_max : float, optional
        Steps of the discrete run; default ``1e6`` for built-in losses, ``1e5`` for others
        (their gradient runs in Python).
    flow_t_max : float
        End time of the gradient flow (``> 1e12``); it runs farther (up to
        ``t = e^FLOW_LOG_T_CAP``) when the predicted transient needs it.
    optimizer : separable.optim optimiser, optional
        The update rule run as "gradient descent with step eta" (default ``GD(eta)``); pass
        another to check an implementation against the theorem.
    tolerances : Tolerances, optional
    per_decade : int
        Recorded steps per decade of the discrete run.
    seconds : float
        Time limit of each symbolic step.
    timeout : float, optional
        Time limit of the whole check; past it the report holds what was found and
        ``exit_code`` is 4.
    data_name : str
        Name of the data set in the report.

    Returns
    -------
    CheckReport
    """
    eta = check_real("eta", eta, 0.0, low_open=True)
    seconds = check_real("seconds", seconds, 0.0, low_open=True)
    timeout = None if timeout is None else check_real("timeout", timeout, 0.0, low_open=True)
    flow_t_max = check_real("flow_t_max", flow_t_max, 1e12, low_open=True)
    tol = Tolerances() if tolerances is None else tolerances
    if not isinstance(tol, Tolerances):
        raise TypeError(f"tolerances must be a Tolerances, got {type(tol).__name__}")
    if optimizer is not None and not hasattr(optimizer, "eta"):
        raise TypeError(
            f"optimizer must be an optimiser of separable.optim, got {type(optimizer).__name__}"
        )
    loss_obj, expr = loss_expression(loss)
    Z = fold(X, y)
    d = Z.shape[1]
    if w0 is None:
        w_start = np.zeros(d)
    else:
        w_start = np.asarray(w0, dtype=float).reshape(-1)
        if w_start.shape != (d,) or not np.all(np.isfinite(w_start)):
            raise ValueError(f"w0 must be a finite vector of length {d}, got {w0!r}")
    if t_max is None:
        t_max = 1e6 if loss_obj.kernel_id >= 0 else 1e5
    t_max = check_real("t_max", t_max, 999.0, low_open=True)

    state: dict = {"conclusions": [], "notes": [], "phase": "the loss assumptions"}
    try:
        with deadline(timeout) if timeout is not None else _no_deadline():
            _phases(
                state,
                expr,
                loss_obj,
                Z,
                eta,
                w_start,
                t_max,
                flow_t_max,
                optimizer,
                tol,
                per_decade,
                min(seconds, timeout or seconds),
            )
        timed_out = None
    except CheckTimeout:
        timed_out = state["phase"]
    return CheckReport(
        loss=loss if isinstance(loss, str) else loss_obj.name,
        expression=sp.sstr(expr),
        eta=eta,
        data=data_name,
        assumptions=state.get("assumptions"),
        data_checks=state.get("data"),
        conclusions=tuple(state["conclusions"]),
        notes=tuple(state["notes"]),
        timed_out=timed_out,
        timeout=timeout,
    )


@contextlib.contextmanager
def _no_deadline():
    yield


def _phases(
    state, expr, loss_obj, Z, eta, w_start, t_max, flow_t_max, optimizer, tol, per_decade, seconds
) -> None:
    """The check's phases, each recording its result in ``state`` as it completes."""
    notes, conclusions = state["notes"], state["conclusions"]
    assumptions = state["assumptions"] = cached_check_loss(expr, seconds)
    state["phase"] = "the data checks"
    loss_obj = _numeric_loss(loss_obj, expr, assumptions)
    data = state["data"] = check_data(Z, eta, w_start, assumptions, loss_obj.value)
    if data.svm is None:
        notes.append("no run: the data are not separable, so w_hat does not exist")
        return
    if data.regime is Regime.NONE and data.flow_regime is Regime.NONE:
        notes.append("no run: an assumption of Lemma 1 fails or is undetermined")
        return
    pred = _prediction(Z, eta, w_start, data, assumptions)
    if pred.theorem == "thm3":
        notes.append(
            "the support vectors do not span the data: Theorem 3 guarantees only that rho "
            "stays bounded; its part in span(Z_S) is predicted (derived), the rest is not"
        )
    rule = GD(eta) if optimizer is None else optimizer
    if isinstance(rule, CustomUpdate) and rule.eta is None:
        rule = CustomUpdate(rule.update, eta, rule.label)
    state["phase"] = "the discrete run"
    run = _discrete_run(Z, rule, loss_obj, t_max, w_start, per_decade, data.svm, notes)
    if run is not None:
        tag = f" [{getattr(rule, 'name', 'run')} eta={eta:g}]"
        conclusions += observe_all(_gd_observation(run, Z, pred, tol, tag), data.regime)
    if data.flow_regime is Regime.NONE:
        notes.append("gradient flow not run: the loss assumptions of Lemma 1 do not hold")
        return
    state["phase"] = "the gradient flow"
    flow_pred = _prediction(Z, 1.0, w_start, data, assumptions)
    s_end = _flow_end(flow_t_max, flow_pred, tol)
    grid = np.linspace(0.0, s_end, int(math.ceil(s_end / math.log(10) * 2)) + 1)[1:]
    flow = gradient_flow(
        Z, loss=loss_obj, log_t=grid, w0=w_start, svm=data.svm, drift=flow_pred.w_hat / flow_pred.a
    )
    conclusions += observe_all(
        _flow_observation(flow, Z, flow_pred, tol, loss_obj), data.flow_regime
    )
