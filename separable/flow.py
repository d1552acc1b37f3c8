"""Gradient flow ``dw/dt = -grad L(w)`` integrated in log-time ``s = log t``.

In ``s`` the flow reads ``dw/ds = sum_n exp(s + log(-l'(z_n . w))) z_n``. The exponent is
formed before exponentiating (the log-sum-exp habit), so nothing overflows however large
``t`` is, and for exponential-tail losses the right-hand side tends to a bounded field
(``exp(s - z_n . w) -> alpha_n`` on the support set): the flow to ``t = 1e100`` is a
non-stiff problem over ``s in [s_0, 230]`` for ``scipy.integrate.solve_ivp``. The start
``w(t_0) = w0 - t_0 grad L(w0)`` at ``t_0 = e^{s_0}`` (default ``s_0 = -30``) is exact to
``O(t_0^2)``.

With ``drift = w_hat / a`` the state integrated is ``rho = w - drift * s`` itself
(``d rho/ds = dw/ds - drift``), which stays of order one: its error tolerance is then
relative to ``rho``, not to ``||w|| ~ ||w_hat|| log t``, and ``t`` can go to ``e^1000`` and
beyond with ``rho`` accurate to ``1e-10``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from separable.data import fold
from separable.losses import Loss, get_loss
from separable.measures import gap_measures
from separable.svm import SVMResult, hard_margin_svm

__all__ = ["FlowResult", "gradient_flow"]


@dataclass(frozen=True)
class FlowResult:
    """The gradient flow sampled at ``log t``.

    Attributes
    ----------
    log_t : numpy.ndarray, shape (T,)
    w : numpy.ndarray, shape (T, d)
    loss : str
    measures : dict of str to numpy.ndarray or None
        :func:`separable.measures.gap_measures` against the SVM (None when ``svm=False``).
    svm : SVMResult or None
    nfev : int
        Right-hand-side evaluations.
    rho : numpy.ndarray, shape (T, d) or None
        ``w - drift log t`` as integrated (when a ``drift`` was given).
    """

    log_t: np.ndarray
    w: np.ndarray
    loss: str
    measures: dict | None
    svm: SVMResult | None
    nfev: int
    rho: np.ndarray | None = None


def gradient_flow(
    X: object,
    y: object | None = None,
    loss: str | Loss = "logistic",
    *,
    t_max: float = 1e100,
    w0: object | None = None,
    log_t: object | None = None,
    per_decade: int = 4,
    s0: float = -30.0,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    method: str = "DOP853",
    svm: SVMResult | bool | None = None,
    drift: object | None = None,
) -> FlowResult:
    """Integrate the gradient flow of ``L(w) = sum_n l(z_n . w)`` in ``s = log t``.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Samples, or folded samples when ``y`` is None.
    y : array_like, optional
    loss : str or Loss
    t_max : float
        Last time (``> 1``; may be astronomically large, e.g. ``1e300``).
    w0 : array_like, optional
        ``w(0)`` (default zeros).
    log_t : array_like, optional
        Increasing ``log t`` values at which to report (within ``(s0, log t_max]``);
        default ``per_decade`` points per decade from ``t = 1``.
    s0 : float
        Log of the start time of the integration (the first ``t_0`` is taken by one exact
        Euler step).
    rtol, atol : float
        Tolerances of ``solve_ivp``.
    method : str
        ``solve_ivp`` method (``DOP853``, ``RK45``, ``LSODA``, ``Radau``...).
    svm : SVMResult, bool or None
        Precomputed SVM, ``False`` to skip the gap measures, None to compute them.
    drift : array_like, shape (d,), optional
        Integrate ``rho = w - drift log t`` instead of ``w`` (``w_hat / a`` keeps the
        state bounded; see the module docstring).

    Returns
    -------
    FlowResult
    """
    Z = fold(X, y)
    d = Z.shape[1]
    loss_obj = get_loss(loss)
    try:
        lt_max = math.log(float(t_max))
    except (TypeError, ValueError):
        raise ValueError(f"t_max must be a number > 1, got {t_max!r}") from None
    if not math.isfinite(lt_max) or lt_max <= 0:
        raise ValueError(f"t_max must be a finite number > 1, got {t_max!r}")
    if not (math.isfinite(s0) and s0 < 0):
        raise ValueError(f"s0 must be a negative number, got {s0!r}")
    w_init = np.zeros(d) if w0 is None else np.asarray(w0, dtype=float).reshape(-1)
    if w_init.shape != (d,) or not np.all(np.isfinite(w_init)):
        raise ValueError(f"w0 must be a finite vector of shape ({d},), got {w0!r}")
    if log_t is None:
        n = max(int(math.ceil(lt_max / math.log(10) * per_decade)), 1)
        grid = np.linspace(0.0, lt_max, n + 1)
    else:
        grid = np.asarray(log_t, dtype=float).ravel()
        if (
            grid.size == 0
            or np.any(np.diff(grid) <= 0)
            or grid[0] <= s0
            or not np.all(np.isfinite(grid))
        ):
            raise ValueError(f"log_t must be finite, strictly increasing and above s0={s0}")
        lt_max = float(grid[-1])

    v = np.zeros(d) if drift is None else np.asarray(drift, dtype=float).reshape(-1)
    if v.shape != (d,) or not np.all(np.isfinite(v)):
        raise ValueError(f"drift must be a finite vector of shape ({d},), got {drift!r}")

    def rhs(s: float, r: np.ndarray) -> np.ndarray:
        expo = s + loss_obj.log_neg_derivative(Z @ (r + s * v))
        return np.exp(expo) @ Z - v

    t0 = math.exp(s0)
    start = w_init - t0 * (Z.T @ loss_obj.derivative(Z @ w_init)) - s0 * v
    sol = solve_ivp(rhs, (s0, lt_max), start, method=method, t_eval=grid, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"solve_ivp ({method}) failed: {sol.message}")
    rho = sol.y.T
    W = rho + np.outer(grid, v)
    if svm is False:
        svm_res, measures = None, None
    else:
        svm_res = hard_margin_svm(Z) if svm is None or svm is True else svm
        measures = gap_measures(Z, W, svm_res.w, grid, loss_obj)
    return FlowResult(
        grid, W, loss_obj.name, measures, svm_res, int(sol.nfev), None if drift is None else rho
    )
