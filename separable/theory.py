"""Predictions of JMLR 2018 for GD on separable data, and exact solutions of small flows.

:func:`predict` answers, for a data set, a step size and the tail constants of the loss,
which theorem applies and what it predicts. The derivation, for a loss whose derivative has
the tight exponential tail ``-l'(u) ~ c e^{-a u}`` (JMLR Definition 2; the paper takes
``a = c = 1`` without loss of generality, by rescaling ``u`` and ``eta``):

* **Asymptote.** Put ``w(t) = (w_hat / a) log t + w_tilde + r(t)`` in the GD step
  ``w(t+1) - w(t) = eta c sum_n e^{-a z_n . w} z_n``. On a support vector
  (``z_n . w_hat = 1``) the term is ``eta c e^{-a z_n . w_tilde} / t``; off the support it
  is ``O(t^-theta)``, ``theta = min_{n not in S} z_n . w_hat > 1``. Matching the ``1/t``
  terms with ``d/dt (w_hat/a) log t = w_hat / (a t) = sum_S alpha_n z_n / (a t)`` gives
  ``eta c a e^{-a z_n . w_tilde} = alpha_n`` on ``S`` -- Theorem 4's
  ``eta e^{-z_n . w_tilde} = alpha_n`` at ``a = c = 1``.
* **Non-unique duals.** When the support vectors are linearly dependent (more of them than
  their rank, e.g. ties on the margin) many ``alpha`` give ``w_hat`` and the equations above
  need the one GD selects. The matching condition
  ``eta c a sum_S e^{-a z_n . w} z_n = w_hat`` is the stationarity condition of the convex
  ``F(w) = eta c sum_S e^{-a z_n . w} + w_hat . w`` on ``span(Z_S)``, so ``w_tilde`` (its
  in-span part) is ``argmin F`` (``scipy.optimize``), and the duals it implies are
  ``alpha_n = eta c a e^{-a z_n . w_tilde}``. With independent support vectors ``F`` has
  the closed-form minimiser ``z_n . w_tilde = log(eta c a / alpha_n) / a``.
* **Out of span.** Every gradient lies in ``span(Z)``. When the support vectors span it
  (``rank Z_S = rank Z``) the part of ``w`` outside ``span(Z_S)`` stays at ``w(0)``'s, and
  ``rho(t) = w - (w_hat/a) log t -> w_tilde`` (Theorem 4). When they do not, the other
  points keep pushing the part of ``w`` in ``span(Z)`` outside ``span(Z_S)``
  (by a summable ``O(t^-theta)``): only the in-span part ``P_S rho -> P_S w_tilde`` is
  predicted, and the rest stays bounded (Theorem 3); :attr:`Prediction.w_tilde` is then
  None and :attr:`Prediction.w_tilde_span` holds ``P_S w_tilde``.
* **Loss.** ``l(u) ~ (c/a) e^{-a u}``, so ``t L(t) -> sum_S (c/a) e^{-a z_n . w_tilde} t
  / t = sum_S alpha_n / (eta a^2) = ||w_hat||^2 / (eta a^2)`` (``sum_S alpha_n =
  w_hat . w_hat``).
* **Gaps.** Direction, angle and margin gaps are scale-free, and ``w`` is parallel to
  ``w_hat log t + a w_tilde``: ``log t * direction gap -> ||(I - u u^T) a w_tilde|| /
  ||w_hat||`` (``u = w_hat/||w_hat||``), ``log^2 t * angle gap -> direction const^2 / 2``
  and, since ``a z_n . w_tilde = log(eta c a) - log alpha_n`` and ``a w_hat . w_tilde =
  sum_S alpha_n a z_n . w_tilde``, ``log t * margin gap -> (log alpha_max - sum alpha log
  alpha / sum alpha) / ||w_hat||`` -- independent of ``eta``, ``c`` and ``a``.
* **Rates.** Linearising, ``dr/dt = -(1/t) H r`` with ``H = sum_S alpha_n z_n z_n^T``
  (independent of ``a``): ``r ~ t^-lambda_min(H)`` on ``span(Z_S)``. The non-support points
  fade like ``t^-(theta - 1)``; the tail remainder ``|r(u)| <= e^{-mu u}`` at
  ``u = log t / a`` contributes ``t^-(mu / a)``; the discrete step adds ``O(1/t)``. The
  slowest of these, :attr:`Prediction.rate`, sets how long the transient lasts.

Exact solutions used as ground truth for the log-time flow (:mod:`separable.flow`):
:func:`exp_flow_orthogonal` (exp loss, mutually orthogonal points; one point is the case
N = 1) and :func:`logistic_flow_single` (logistic loss, one point, Lambert W).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import lambertw

from diffusion.validation import check_real
from separable.data import as_features, fold
from separable.svm import SVMResult, hard_margin_svm

__all__ = [
    "Prediction",
    "predict",
    "w_tilde",
    "residual_duals",
    "which_theorem",
    "asymptote",
    "exp_flow_orthogonal",
    "logistic_flow_single",
    "solve_u_plus_exp_u",
]

THEOREMS = {
    "thm4": "Theorem 4: almost every dataset, support vectors span the data; rho(t) -> w_tilde",
    "thm3": "Theorem 3: support vectors do not span the data; the part of rho in span(Z_S) "
    "converges, the rest stays bounded",
    "degenerate": "Appendix theorem (measure zero): a support vector has alpha_n = 0; "
    "iterated-log terms, rho = O(log log t)",
}


def _rank_tol(Z: np.ndarray) -> float:
    return 1e-9 * max(1.0, float(np.abs(Z).max()))


def _spans(Z: np.ndarray, S: np.ndarray) -> bool:
    tol = _rank_tol(Z)
    return int(np.linalg.matrix_rank(Z[S], tol=tol)) == int(np.linalg.matrix_rank(Z, tol=tol))


def which_theorem(X: object, y: object | None = None, svm: SVMResult | None = None) -> str:
    """``"degenerate"``, ``"thm4"`` or ``"thm3"`` (see :data:`THEOREMS`) for the data."""
    Z = fold(X, y)
    svm = hard_margin_svm(Z) if svm is None else svm
    if svm.degenerate.size:
        return "degenerate"
    return "thm4" if _spans(Z, svm.support) else "thm3"


def _span_basis(ZS: np.ndarray) -> np.ndarray:
    """Orthonormal rows spanning ``span(Z_S)``."""
    _, sv, Vt = np.linalg.svd(ZS, full_matrices=False)
    k = int(np.sum(sv > _rank_tol(ZS) * max(1.0, sv[0])))
    return Vt[:k]


def residual_duals(
    Z: np.ndarray, svm: SVMResult, eta: float, c: float = 1.0, a: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The in-span residual ``P_S w_tilde`` and the duals ``alpha`` that GD selects.

    Minimises ``F(w) = eta c sum_S e^{-a z_n . w} + w_hat . w`` over ``w`` in
    ``span(Z_S)`` (see the module docstring): with independent support vectors the minimiser
    solves ``z_n . w = log(eta c a / alpha_n) / a`` exactly and is computed so; otherwise by
    ``scipy.optimize.minimize`` (trust-region Newton, exact gradient and Hessian) from that
    least-squares start.

    Parameters
    ----------
    Z : numpy.ndarray, shape (N, d)
        Folded samples.
    svm : SVMResult
        Its hard-margin SVM (non-degenerate).
    eta, c, a : float
        Step size and tail constants of ``-l'(u) ~ c e^{-a u}``.

    Returns
    -------
    w_span : numpy.ndarray, shape (d,)
        ``P_S w_tilde``.
    alpha : numpy.ndarray, shape (N,)
        ``eta c a e^{-a z_n . w_tilde}`` on the support, 0 elsewhere.

    Raises
    ------
    RuntimeError
        If the minimisation does not converge.
    """
    S = svm.support
    ZS = Z[S]
    k = eta * c * a
    target = np.log(k / svm.alpha[S]) / a
    w_span = np.linalg.pinv(ZS, rcond=1e-12) @ target
    B = _span_basis(ZS)
    if B.shape[0] < S.size:  # dependent support vectors: the duals are not unique
        M = ZS @ B.T  # support vectors in the basis of span(Z_S)
        g = B @ svm.w

        def fun(x):
            e = eta * c * np.exp(-a * (M @ x))
            return float(e.sum() + g @ x), g - a * (M.T @ e)

        def hess(x):
            e = eta * c * a * a * np.exp(-a * (M @ x))
            return M.T @ (e[:, None] * M)

        res = minimize(
            fun, B @ w_span, jac=True, hess=hess, method="trust-exact", options={"gtol": 1e-13}
        )
        if not res.success and np.linalg.norm(res.jac) > 1e-10 * max(1.0, np.linalg.norm(g)):
            raise RuntimeError(f"the w_tilde minimisation did not converge: {res.message}")
        w_span = B.T @ res.x
    alpha = np.zeros(Z.shape[0])
    alpha[S] = k * np.exp(-a * (ZS @ w_span))
    return w_span, alpha


def w_tilde(
    X: object,
    y: object | None = None,
    eta: float = 1.0,
    w0: object | None = None,
    svm: SVMResult | None = None,
    *,
    c: float = 1.0,
    a: float = 1.0,
) -> np.ndarray:
    """The residual limit of Theorem 4: ``rho(t) = w(t) - (w_hat / a) log t -> w_tilde``.

    The in-span part from :func:`residual_duals`; outside ``span(Z_S)`` the start's part.

    Raises
    ------
    ValueError
        If a support vector has ``alpha_n = 0`` (degenerate data: no finite ``w_tilde``), or
        if the support vectors do not span the data (then only ``P_S w_tilde`` is
        determined: see :attr:`Prediction.w_tilde_span`).
    """
    Z = fold(X, y)
    eta = check_real("eta", eta, 0.0, low_open=True)
    c = check_real("c", c, 0.0, low_open=True)
    a = check_real("a", a, 0.0, low_open=True)
    svm = hard_margin_svm(Z) if svm is None else svm
    if svm.degenerate.size:
        raise ValueError(
            f"X is degenerate: support vectors {svm.degenerate.tolist()} have alpha = 0, "
            f"so no finite w_tilde exists"
        )
    if not _spans(Z, svm.support):
        raise ValueError(
            "the support vectors do not span the data: only the part of w_tilde in "
            "span(Z_S) is determined (Prediction.w_tilde_span)"
        )
    d = Z.shape[1]
    w0v = np.zeros(d) if w0 is None else np.asarray(w0, dtype=float).reshape(d)
    w_span, _ = residual_duals(Z, svm, eta, c, a)
    B = _span_basis(Z[svm.support])
    return w_span + w0v - B.T @ (B @ w0v)


def asymptote(w_hat: np.ndarray, wt: np.ndarray, log_t: np.ndarray, a: float = 1.0) -> np.ndarray:
    """The predicted trajectory ``(w_hat / a) log t + w_tilde`` (rows for each ``log t``)."""
    return np.outer(np.asarray(log_t, dtype=float), w_hat / a) + wt


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class Prediction:
    """What JMLR 2018 predicts for GD (step ``eta``) on one data set (module docstring).

    Attributes
    ----------
    theorem : str
        Key of :data:`THEOREMS`.
    w_hat, support
        The SVM solution.
    alpha : numpy.ndarray
        The duals GD selects (``eta c a e^{-a z_n . w_tilde}`` on the support; the SVM's
        duals on degenerate data).
    eta, c, a, mu : float
        Step size; tail ``-l' ~ c e^{-a u}`` with remainder rate ``mu`` (``inf`` if none).
    w_tilde : numpy.ndarray or None
        Residual limit of ``rho = w - (w_hat/a) log t`` (None when degenerate or when the
        support vectors do not span the data).
    w_tilde_span : numpy.ndarray or None
        Its part in ``span(Z_S)``, predicted whenever the data are not degenerate.
    span_basis : numpy.ndarray or None
        Orthonormal rows spanning ``span(Z_S)`` (``P_S = B^T B``).
    tL_limit : float
        ``lim t L(t) = ||w_hat||^2 / (eta a^2)``.
    direction_const : float
        ``lim log t * direction_gap = ||(I - u u^T) a w_tilde|| / ||w_hat||``.
    angle_const : float
        ``lim log^2 t * angle_gap = direction_const^2 / 2``.
    margin_const : float
        ``lim log t * margin_gap = (log alpha_max - sum alpha log alpha / sum alpha) / ||w_hat||``.
    rate_support : float
        ``lambda_min(H)`` restricted to ``span(Z_S)``: ``rho - w_tilde ~ t^-rate_support``.
    rate_nonsupport : float
        ``theta - 1``: the non-support points fade like ``t^-(theta - 1)``.
    rate_tail : float
        ``mu / a``: the tail remainder fades like ``t^-(mu / a)``.
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
    c: float = 1.0
    a: float = 1.0
    mu: float = math.inf
    rate_tail: float = math.inf
    w_tilde_span: np.ndarray | None = None
    span_basis: np.ndarray | None = None

    @property
    def description(self) -> str:
        """The theorem in words."""
        return THEOREMS[self.theorem]

    @property
    def rate(self) -> float:
        """The slowest transient: ``min(lambda_min(H), theta - 1, mu / a)``."""
        return min(self.rate_support, self.rate_nonsupport, self.rate_tail)

    def gaps_at(self, log_t: float | np.ndarray) -> dict[str, np.ndarray]:
        """Gaps of the asymptote ``(w_hat/a) log t + w_tilde`` at ``log t`` (finite-t prediction).

        All orders in ``1/log t`` of the asymptote, not only the leading constants; the
        margin gap takes the minimum over the support set (exact once the non-support
        points have faded, ``t^(theta-1) >> 1``).
        """
        if self.w_tilde is None:
            raise ValueError(f"no asymptote w_hat log t / a + w_tilde ({self.description})")
        lt = np.atleast_1d(np.asarray(log_t, dtype=float))
        W = asymptote(self.w_hat, self.w_tilde, lt, self.a)
        wn = np.linalg.norm(self.w_hat)
        norm = np.linalg.norm(W, axis=1)
        diff = W / norm[:, None] - self.w_hat / wn
        a_max = float(self.alpha[self.support].max())
        k = self.eta * self.c * self.a
        return {
            "norm": norm,
            "direction_gap": np.linalg.norm(diff, axis=1),
            "angle_gap": 0.5 * np.sum(diff**2, axis=1),
            "margin_gap": 1.0 / wn - (lt + np.log(k / a_max)) / (self.a * norm),
        }

    def as_dict(self) -> dict:
        """Plain-JSON form."""

        def vec(v):
            return None if v is None else v.tolist()

        return {
            "theorem": self.theorem,
            "description": self.description,
            "w_hat": self.w_hat.tolist(),
            "alpha": self.alpha.tolist(),
            "support": self.support.tolist(),
            "eta": self.eta,
            "c": self.c,
            "a": self.a,
            "mu": _finite_or_none(self.mu),
            "w_tilde": vec(self.w_tilde),
            "w_tilde_span": vec(self.w_tilde_span),
            "tL_limit": self.tL_limit,
            "direction_const": _finite_or_none(self.direction_const),
            "angle_const": _finite_or_none(self.angle_const),
            "margin_const": _finite_or_none(self.margin_const),
            "rate_support": self.rate_support,
            "rate_nonsupport": _finite_or_none(self.rate_nonsupport),
            "rate_tail": _finite_or_none(self.rate_tail),
        }


def _margin_const(alpha_S: np.ndarray, wn: float) -> float:
    pos = alpha_S[alpha_S > 0]
    return float((np.log(pos.max()) - np.sum(pos * np.log(pos)) / pos.sum()) / wn)


def _support_rate(ZS: np.ndarray, alpha_S: np.ndarray) -> float:
    H = ZS.T @ (alpha_S[:, None] * ZS)
    B = _span_basis(ZS)
    return float(np.linalg.eigvalsh(B @ H @ B.T).min())


def predict(
    X: object,
    y: object | None = None,
    eta: float = 1.0,
    w0: object | None = None,
    svm: SVMResult | None = None,
    *,
    c: float = 1.0,
    a: float = 1.0,
    mu: float = math.inf,
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
    c, a : float
        Tail constants of the loss, ``-l'(u) ~ c e^{-a u}`` (1 for the logistic and exp
        losses).
    mu : float
        Rate of the tail remainder, ``|-l'(u) e^{a u} / c - 1| <= e^{-mu u}`` far out
        (``inf``: none; the logistic loss has ``mu = 1``).
    """
    Z = fold(X, y)
    eta = check_real("eta", eta, 0.0, low_open=True)
    c = check_real("c", c, 0.0, low_open=True)
    a = check_real("a", a, 0.0, low_open=True)
    mu = check_real("mu", mu, 0.0, low_open=True) if mu != math.inf else math.inf
    svm = hard_margin_svm(Z) if svm is None else svm
    theorem = which_theorem(Z, svm=svm)
    w_hat, S = svm.w, svm.support
    wn = float(np.linalg.norm(w_hat))
    ZS = Z[S]
    nan = float("nan")
    wt = w_span = basis = None
    alpha = svm.alpha
    direction = margin = nan
    if theorem != "degenerate":
        w_span, alpha = residual_duals(Z, svm, eta, c, a)
        basis = _span_basis(ZS)
        margin = _margin_const(alpha[S], wn)
    if theorem == "thm4":
        wt = w_tilde(Z, eta=eta, w0=w0, svm=svm, c=c, a=a)
        u = w_hat / wn
        direction = float(a * np.linalg.norm(wt - u * (u @ wt)) / wn)
    return Prediction(
        theorem=theorem,
        w_hat=w_hat,
        alpha=alpha,
        support=S,
        eta=eta,
        w_tilde=wt,
        tL_limit=wn**2 / (eta * a * a),
        direction_const=direction,
        angle_const=direction**2 / 2,
        margin_const=margin,
        rate_support=_support_rate(ZS, alpha[S]),
        rate_nonsupport=svm.theta - 1.0,
        c=c,
        a=a,
        mu=mu,
        rate_tail=mu / a,
        w_tilde_span=w_span,
        span_basis=basis,
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
