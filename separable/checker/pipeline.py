"""``check(loss, X, y, eta)``: assumptions, data checks, runs and verdicts in one call."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings

import numpy as np
import sympy as sp

from separable.checker.assumptions import LossAssumptions, check_loss
from separable.checker.conclusions import Tolerances, discrete_conclusions, flow_conclusions
from separable.checker.data_checks import Regime, check_data
from separable.checker.loss_input import loss_expression
from separable.checker.report import CheckReport
from separable.data import fold
from separable.flow import gradient_flow
from separable.losses import Loss
from separable.optim import GD, CustomUpdate, Optimizer, StepSizeWarning, optimize
from separable.theory import predict

__all__ = ["check", "cached_check_loss"]


@functools.lru_cache(maxsize=64)
def cached_check_loss(expr: sp.Expr, seconds: float) -> LossAssumptions:
    """:func:`~separable.checker.assumptions.check_loss`, remembered per expression."""
    return check_loss(expr, seconds=seconds)


def _positive(name: str, value: object, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= minimum:
        raise ValueError(f"{name} must be a finite number > {minimum:g}, got {value!r}")
    return v


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
        End time of the gradient flow (``> 1e12``).
    optimizer : separable.optim optimiser, optional
        The update rule run as "gradient descent with step eta" (default ``GD(eta)``); pass
        another to check an implementation against the theorem.
    tolerances : Tolerances, optional
    per_decade : int
        Recorded steps per decade of the discrete run.
    seconds : float
        Time limit of each symbolic step.
    data_name : str
        Name of the data set in the report.

    Returns
    -------
    CheckReport
    """
    eta = _positive("eta", eta)
    seconds = _positive("seconds", seconds)
    flow_t_max = _positive("flow_t_max", flow_t_max, 1e12)
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
    t_max = _positive("t_max", t_max, 999.0)

    assumptions = cached_check_loss(expr, seconds)
    if loss_obj.beta is None and loss_obj.kernel_id < 0:
        # hand the optimiser the beta found here (its own grid estimate cannot evaluate
        # the DiracDelta of a kinked loss's l''); inf when there is no global beta
        beta = assumptions.beta_value
        loss_obj = dataclasses.replace(loss_obj, beta=beta if beta is not None else math.inf)
    data = check_data(Z, eta, w_start, assumptions, loss_obj.value)
    notes: list[str] = []
    conclusions = []
    if data.svm is not None:
        rule = GD(eta) if optimizer is None else optimizer
        if isinstance(rule, CustomUpdate) and rule.eta is None:
            rule = CustomUpdate(rule.update, eta, rule.label)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                run = optimize(
                    Z,
                    rule=rule,
                    loss=loss_obj,
                    t_max=t_max,
                    w0=w_start,
                    per_decade=per_decade,
                    svm=data.svm,
                )
            except FloatingPointError as exc:
                run = None
                notes.append(f"the discrete run diverged before its first record: {exc}")
        # the step condition is the checker's own item; keep only other warnings (divergence)
        notes += sorted(
            {str(w.message) for w in caught if not issubclass(w.category, StepSizeWarning)}
        )
        pred = predict(Z, eta=eta, w0=w_start, svm=data.svm)
        label = f"{getattr(rule, 'name', 'run')} eta={eta:g}"
        if run is not None:
            conclusions += discrete_conclusions(run, Z, pred, data.regime, tol, label)
        if data.flow_regime is not Regime.NONE:
            flow = gradient_flow(
                Z, loss=loss_obj, t_max=flow_t_max, w0=w_start, per_decade=2, svm=data.svm
            )
            conclusions += flow_conclusions(
                flow, predict(Z, eta=1.0, w0=w_start, svm=data.svm), data.flow_regime, tol
            )
        else:
            notes.append("gradient flow not run: the loss assumptions of Lemma 1 do not hold")
    else:
        notes.append("no run: the data are not separable, so w_hat does not exist")
    return CheckReport(
        loss=loss if isinstance(loss, str) else loss_obj.name,
        expression=sp.sstr(expr),
        eta=eta,
        data=data_name,
        assumptions=assumptions,
        data_checks=data,
        conclusions=tuple(conclusions),
        notes=tuple(notes),
    )
