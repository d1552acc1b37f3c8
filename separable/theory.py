"""Predictions of JMLR 2018 for GD on separable data, and exact solutions of small flows.

:func:`predict` answers, for a data set and a step size: which theorem applies, the
residual limit ``w_tilde`` (Theorem 4: ``eta exp(-z_n . w_tilde) = alpha_n`` on the support
set ``S`` and ``(I - Z_S^+ Z_S)(w_tilde - w(0)) = 0``), the loss limit
``t L(t) -> ||w_hat||^2 / eta``, the first-order constants of the direction, angle and
margin gaps, the local rate ``t^-lambda_min(H)`` of ``rho(t) - w_tilde`` with
``H = sum_S alpha_n z_n z_n^T`` and the non-support rate ``t^(1 - theta)``.

Exact solutions used as ground truth for the log-time flow (:mod:`separable.flow`):
:func:`exp_flow_orthogonal` (exp loss, mutually orthogonal points; one point is the case
N = 1) and :func:`logistic_flow_single` (logistic loss, one point, Lambert W).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

from separable.data import as_features, fold
from separable.svm import SVMResult, hard_margin_svm

__all__ = [
    "Prediction",
    "predict",
    "w_tilde",
    "which_theorem",
    "asymptote",
    "exp_flow_orthogonal",
    "logistic_flow_single",
    "solve_u_plus_exp_u",
]

THEOREMS = {
    "thm4": "Theorem 4: almost every dataset, support vectors span the data; rho(t) -> w_tilde",
    "thm3": "Theorem 3: support vectors do not span the data; rho(t) bounded (limit not proved)",
    "degenerate": "Appendix theorem (measure zero): a support vector has alpha_n = 0; "
    "iterated-log terms, rho = O(log log t)",
}


def which_theorem(X: object, y: object | None = None, svm: SVMResult | None = None) -> str:
    """``"degenerate"``, ``"thm4"`` or ``"thm3"`` (see :data:`THEOREMS`) for the data."""
    Z = fold(X, y)
    svm = hard_margin_svm(Z) if svm is None else svm
    if svm.degenerate.size:
        return "degenerate"
    S = svm.support
    if np.linalg.matrix_rank(Z[S]) == np.linalg.matrix_rank(Z):
        return "thm4"
    return "thm3"


def w_tilde(
    X: object,
    y: object | None = None,
    eta: float = 1.0,
    w0: object | None = None,
    svm: SVMResult | None = None,
) -> np.ndarray:
    """The residual limit of Theorem 4.

    Solves ``z_n . w = log(eta / alpha_n)`` for ``n`` in the support set (minimum-norm
    solution inside ``span(Z_S)``) and adds the part of ``w0`` orthogonal to that span.

    Raises
    ------
    ValueError
        If a support vector has ``alpha_n = 0`` (degenerate data: no finite ``w_tilde``).
    """
    Z = fold(X, y)
    if not (math.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be a positive finite number, got {eta!r}")
    svm = hard_margin_svm(Z) if svm is None else svm
    if svm.degenerate.size:
        raise ValueError(
            f"X is degenerate: support vectors {svm.degenerate.tolist()} have alpha = 0, "
            f"so no finite w_tilde exists"
        )
    d = Z.shape[1]
    w0v = np.zeros(d) if w0 is None else np.asarray(w0, dtype=float).reshape(d)
    ZS = Z[svm.support]
    b = np.log(eta / svm.alpha[svm.support])
    pinv = np.linalg.pinv(ZS, rcond=1e-12)
    inside = pinv @ b
    P_out = np.eye(d) - pinv @ ZS
    return inside + P_out @ w0v


def asymptote(w_hat: np.ndarray, wt: np.ndarray, log_t: np.ndarray) -> np.ndarray:
    """The predicted trajectory ``w_hat log t + w_tilde`` (rows for each ``log t``)."""
    return np.outer(np.asarray(log_t, dtype=float), w_hat) + wt


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class Prediction:
    """What JMLR 2018 predicts for GD (step ``eta``) on one data set.

    Attributes
    ----------
    theorem : str
        Key of :data:`THEOREMS`.
    w_hat, alpha, support
        The SVM solution.
    eta : float
    w_tilde : numpy.ndarray or None
        Residual limit (None when degenerate).
    tL_limit : float
        ``lim t L(t) = ||w_hat||^2 / eta`` (exponential-tail losses).
    direction_const : float
        ``lim log t * direction_gap = ||(I - u u^T) w_tilde|| / ||w_hat||``.
    angle_const : float
        ``lim log^2 t * angle_gap = direction_const^2 / 2``.
    margin_const : float
        ``lim log t * margin_gap = (log alpha_max - sum alpha log alpha / sum alpha) / ||w_hat||``.
    rate_support : float
        ``lambda_min(H)`` restricted to ``span(Z_S)``: ``rho - w_tilde ~ t^-rate_support``.
    rate_nonsupport : float
        ``theta - 1``: the non-support points fade like ``t^-(theta - 1)``.
    """

    theorem: str
    w_hat: np.ndarray
    alpha: np.ndarray
    support: np.ndarray
    eta: float
    w_tilde: np.ndarray | None
    tL_limit: float
    direction_const: float
    angle_const: float
    margin_const: float
    rate_support: float
    rate_nonsupport: float

    @property
    def description(self) -> str:
        """The theorem in words."""
        return THEOREMS[self.theorem]

    def gaps_at(self, log_t: float | np.ndarray) -> dict[str, np.ndarray]:
        """Gaps of the asymptote ``w_hat log t + w_tilde`` at ``log t`` (finite-t prediction).

        All orders in ``1/log t`` of the asymptote, not only the leading constants; the
        margin gap takes the minimum over the support set (exact once the non-support
        points have faded, ``t^(theta-1) >> 1``).
        """
        if self.w_tilde is None:
            raise ValueError("degenerate data: no asymptote w_hat log t + w_tilde")
        lt = np.atleast_1d(np.asarray(log_t, dtype=float))
        W = asymptote(self.w_hat, self.w_tilde, lt)
        wn = np.linalg.norm(self.w_hat)
        norm = np.linalg.norm(W, axis=1)
        diff = W / norm[:, None] - self.w_hat / wn
        a_max = float(self.alpha[self.support].max())
        return {
            "norm": norm,
            "direction_gap": np.linalg.norm(diff, axis=1),
            "angle_gap": 0.5 * np.sum(diff**2, axis=1),
            "margin_gap": 1.0 / wn - (lt + np.log(self.eta / a_max)) / norm,
        }

    def as_dict(self) -> dict:
        """Plain-JSON form."""
        return {
            "theorem": self.theorem,
            "description": self.description,
            "w_hat": self.w_hat.tolist(),
            "alpha": self.alpha.tolist(),
            "support": self.support.tolist(),
            "eta": self.eta,
            "w_tilde": None if self.w_tilde is None else self.w_tilde.tolist(),
            "tL_limit": self.tL_limit,
            "direction_const": _finite_or_none(self.direction_const),
            "angle_const": _finite_or_none(self.angle_const),
            "margin_const": _finite_or_none(self.margin_const),
            "rate_support": self.rate_support,
            "rate_nonsupport": self.rate_nonsupport,
        }


def predict(
    X: object,
    y: object | None = None,
    eta: float = 1.0,
    w0: object | None = None,
    svm: SVMResult | None = None,
) -> Prediction:
    """All predictions for GD with step ``eta`` from ``w0`` (default 0); see :class:`Prediction`.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Samples, or folded samples when ``y`` is None.
    y : array_like, shape (N,), optional
    eta : float
        Step size (``1`` for the gradient flow).
    w0 : array_like, optional
        Start; only its part outside ``span(Z_S)`` matters.
    svm : SVMResult, optional
    """
    Z = fold(X, y)
    if not (isinstance(eta, (int, float, np.floating)) and math.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be a positive finite number, got {eta!r}")
    svm = hard_margin_svm(Z) if svm is None else svm
    theorem = which_theorem(Z, svm=svm)
    w_hat, S = svm.w, svm.support
    wn = float(np.linalg.norm(w_hat))
    aS = svm.alpha[S]
    wt = None if theorem == "degenerate" else w_tilde(Z, eta=eta, w0=w0, svm=svm)
    if wt is not None:
        u = w_hat / wn
        direction = float(np.linalg.norm(wt - u * (u @ wt)) / wn)
        # duplicates of one point share its dual: the margin constant is over distinct points
        pos = aS[aS > 0]
        margin = float((np.log(pos.max()) - np.sum(pos * np.log(pos)) / pos.sum()) / wn)
    else:
        direction = margin = float("nan")
    ZS = Z[S]
    H = ZS.T @ (aS[:, None] * ZS)
    basis = np.linalg.svd(ZS, full_matrices=False)[2][: np.linalg.matrix_rank(ZS)]
    rate = float(np.linalg.eigvalsh(basis @ H @ basis.T).min())
    return Prediction(
        theorem=theorem,
        w_hat=w_hat,
        alpha=svm.alpha,
        support=S,
        eta=float(eta),
        w_tilde=wt,
        tL_limit=wn**2 / eta,
        direction_const=direction,
        angle_const=direction**2 / 2,
        margin_const=margin,
        rate_support=rate,
        rate_nonsupport=svm.theta - 1.0,
    )


# ----------------------------------------------------------------------------- exact flows
def exp_flow_orthogonal(X: object, w0: object, t: float | np.ndarray) -> np.ndarray:
    """Exact exp-loss gradient flow on mutually orthogonal folded points.

    ``w(t) = w0 + sum_n (z_n/||z_n||^2) log(1 + ||z_n||^2 exp(-z_n . w0) t)``.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Folded, mutually orthogonal points (``N = 1``: the single-point flow).
    w0 : array_like, shape (d,)
    t : float or array
        Times (``t`` may be huge: ``log1p`` of a product computed in log space).

    Returns
    -------
    numpy.ndarray, shape (len(t), d)
    """
    Z = as_features(X)
    G = Z @ Z.T
    off = G - np.diag(np.diag(G))
    if np.max(np.abs(off)) > 1e-12 * np.max(np.diag(G)):
        raise ValueError("X must hold mutually orthogonal rows")
    w0v = np.asarray(w0, dtype=float).reshape(Z.shape[1])
    tt = np.atleast_1d(np.asarray(t, dtype=float))
    r2 = np.diag(G)
    # log(1 + r2 e^{-z.w0} t) = logaddexp(0, log r2 - z.w0 + log t)
    with np.errstate(divide="ignore"):
        a = np.logaddexp(0.0, np.log(r2)[None, :] - (Z @ w0v)[None, :] + np.log(tt)[:, None])
    return w0v[None, :] + a @ (Z / r2[:, None])


def solve_u_plus_exp_u(K: np.ndarray) -> np.ndarray:
    """The root ``u`` of ``u + e^u = K``: ``u = K - W(e^K) = log W(e^K)`` (Lambert W).

    The form ``log W(e^K)`` avoids the cancellation of ``K - W(e^K)`` at large ``K``. For
    ``K > 700`` (``e^K`` overflows) ``v = W(e^K)`` is the root of ``v + log v = K``, found
    by Newton's method from ``K - log K``.
    """
    K = np.asarray(K, dtype=float)
    out = np.empty_like(K)
    small = K <= 700
    out[small] = np.log(np.real(lambertw(np.exp(K[small]))))
    Kb = K[~small]
    v = Kb - np.log(Kb)
    for _ in range(50):
        step = (v + np.log(v) - Kb) / (1.0 + 1.0 / v)
        v = v - step
        if np.all(np.abs(step) <= 1e-16 * np.abs(v)):
            break
    out[~small] = np.log(v)
    return out


def logistic_flow_single(x: object, w0: object, t: float | np.ndarray) -> np.ndarray:
    """Exact logistic-loss gradient flow for one folded point ``x``.

    ``u = x . w`` solves ``u + e^u = ||x||^2 t + u0 + e^{u0}``; the part of ``w`` orthogonal
    to ``x`` stays at its start: ``w(t) = w0 + x (u(t) - u0) / ||x||^2``.
    """
    xv = np.asarray(x, dtype=float).ravel()
    w0v = np.asarray(w0, dtype=float).reshape(xv.size)
    tt = np.atleast_1d(np.asarray(t, dtype=float))
    r2 = float(xv @ xv)
    u0 = float(xv @ w0v)
    u = solve_u_plus_exp_u(r2 * tt + u0 + math.exp(u0))
    return w0v[None, :] + np.outer(u - u0, xv / r2)
