"""The hard-margin SVM of the homogeneous problem and the LP separability certificate.

``w_hat = argmin ||w||^2  s.t.  z_n . w >= 1`` for the folded samples ``z_n = y_n x_n``.
It is a least-distance program, solved exactly by the Lawson--Hanson reduction to
non-negative least squares (``scipy.optimize.nnls``, an active-set method), then polished
on the identified support: ``alpha_P = (Z_P Z_P^T)^+ 1`` and ``w_hat = Z_P^T alpha_P``.
The pseudo-inverse splits the dual weight of identical support vectors equally, which is
the split gradient descent sees (identical points have identical gradients).

Separability (JMLR assumption A1, ``exists w: z_n . w > 0``) is decided by
``scipy.optimize.linprog``: either a separator with ``Z w >= 1`` or, by Gordan's theorem,
weights ``lam >= 0``, ``sum lam = 1`` with ``Z^T lam = 0`` -- a convex combination of the
folded samples that is zero, which no separator can have on its positive side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, nnls

from separable.data import fold

__all__ = [
    "SVMResult",
    "KKTResiduals",
    "SeparabilityCertificate",
    "NotSeparableError",
    "hard_margin_svm",
    "kkt_residuals",
    "separability_certificate",
]


@dataclass(frozen=True)
class SeparabilityCertificate:
    """The LP's verdict on (homogeneous, strict) linear separability.

    Attributes
    ----------
    separable : bool
    w : numpy.ndarray or None
        A separator with ``Z w >= 1`` when separable.
    lam : numpy.ndarray or None
        When not separable: ``lam >= 0``, ``sum(lam) = 1``, ``Z^T lam = 0`` (Gordan).
    residual : float
        ``||Z^T lam||_inf`` (not separable) or ``max(0, 1 - min Z w)`` (separable).
    """

    separable: bool
    w: np.ndarray | None
    lam: np.ndarray | None
    residual: float


class NotSeparableError(ValueError):
    """The data are not linearly separable through the origin.

    Attributes
    ----------
    certificate : SeparabilityCertificate
        Gordan multipliers ``lam`` proving it.
    """

    def __init__(self, certificate: SeparabilityCertificate, message: str | None = None):
        self.certificate = certificate
        if message is None:
            support = np.flatnonzero(certificate.lam > 1e-9) if certificate.lam is not None else []
            message = (
                f"data are not linearly separable: the convex combination of folded samples "
                f"{list(map(int, support))} with weights lam is zero "
                f"(||Z^T lam||_inf = {certificate.residual:.2e})"
            )
        super().__init__(message)


@dataclass(frozen=True)
class KKTResiduals:
    """Residuals of the KKT conditions of the hard-margin SVM (all zero at the optimum).

    Attributes
    ----------
    stationarity : float
        ``||w - Z^T alpha||_inf``.
    primal : float
        ``max(0, max_n (1 - z_n . w))``.
    dual : float
        ``max(0, -min alpha)``.
    complementarity : float
        ``max_n |alpha_n (z_n . w - 1)|``.
    """

    stationarity: float
    primal: float
    dual: float
    complementarity: float

    @property
    def max(self) -> float:
        """The largest residual."""
        return max(self.stationarity, self.primal, self.dual, self.complementarity)


@dataclass(frozen=True)
class SVMResult:
    """The hard-margin SVM solution.

    Attributes
    ----------
    w : numpy.ndarray, shape (d,)
        ``w_hat``.
    alpha : numpy.ndarray, shape (N,)
        Dual coefficients, ``w_hat = sum_n alpha_n z_n``.
    support : numpy.ndarray of int
        Indices with ``z_n . w_hat = 1`` (active constraints, within ``tol``).
    margin : float
        Geometric margin ``1/||w_hat||``.
    kkt : KKTResiduals
    theta : float
        ``min_{n not in support} z_n . w_hat`` (> 1; ``inf`` if every point is support).
    degenerate : numpy.ndarray of int
        Support indices whose dual is zero (within ``tol``): JMLR's measure-zero case.
    tol : float
        Tolerance used to classify constraints and duals.
    """

    w: np.ndarray
    alpha: np.ndarray
    support: np.ndarray
    margin: float
    kkt: KKTResiduals
    theta: float
    degenerate: np.ndarray
    tol: float

    @property
    def kkt_residuals(self) -> KKTResiduals:
        """Alias of :attr:`kkt`."""
        return self.kkt

    @property
    def direction(self) -> np.ndarray:
        """Unit vector ``w_hat / ||w_hat||``."""
        return self.w / np.linalg.norm(self.w)

    def as_dict(self) -> dict:
        """Plain-JSON form."""
        return {
            "w": self.w.tolist(),
            "alpha": self.alpha.tolist(),
            "support": self.support.tolist(),
            "margin": self.margin,
            "theta": self.theta if np.isfinite(self.theta) else None,
            "degenerate": self.degenerate.tolist(),
            "kkt": {
                "stationarity": self.kkt.stationarity,
                "primal": self.kkt.primal,
                "dual": self.kkt.dual,
                "complementarity": self.kkt.complementarity,
            },
        }


def kkt_residuals(Z: np.ndarray, w: np.ndarray, alpha: np.ndarray) -> KKTResiduals:
    """KKT residuals of ``(w, alpha)`` for ``min ||w||^2/2 s.t. Z w >= 1`` (folded ``Z``)."""
    m = Z @ w
    return KKTResiduals(
        stationarity=float(np.max(np.abs(w - Z.T @ alpha))),
        primal=float(max(0.0, np.max(1.0 - m))),
        dual=float(max(0.0, -np.min(alpha))),
        complementarity=float(np.max(np.abs(alpha * (m - 1.0)))),
    )


def separability_certificate(X: object, y: object | None = None) -> SeparabilityCertificate:
    """Decide strict linear separability through the origin by linear programming.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Samples, or folded samples ``y_n x_n`` when ``y`` is None.
    y : array_like, shape (N,), optional
        Labels in ``{-1, +1}`` or ``{0, 1}``.

    Returns
    -------
    SeparabilityCertificate
    """
    Z = fold(X, y)
    N, d = Z.shape
    sep = linprog(np.zeros(d), A_ub=-Z, b_ub=-np.ones(N), bounds=[(None, None)] * d, method="highs")
    if sep.status == 0:
        w = np.asarray(sep.x)
        return SeparabilityCertificate(True, w, None, float(max(0.0, 1.0 - np.min(Z @ w))))
    # Gordan's alternative: lam >= 0, sum lam = 1, Z^T lam = 0
    A_eq = np.vstack([Z.T, np.ones((1, N))])
    b_eq = np.concatenate([np.zeros(d), [1.0]])
    alt = linprog(np.zeros(N), A_eq=A_eq, b_eq=b_eq, bounds=[(0, None)] * N, method="highs")
    if alt.status != 0:  # pragma: no cover - one of the two alternatives always holds
        raise RuntimeError(f"linprog solved neither alternative: {sep.message}; {alt.message}")
    lam = np.maximum(np.asarray(alt.x), 0.0)
    lam /= lam.sum()
    return SeparabilityCertificate(False, None, lam, float(np.max(np.abs(Z.T @ lam))))


def _polish(Z: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``Z_A Z_A^T alpha_A = 1`` (min-norm) and return ``(w, alpha)``."""
    alpha = np.zeros(Z.shape[0])
    ZA = Z[active]
    alpha[active] = np.linalg.pinv(ZA @ ZA.T, rcond=1e-13) @ np.ones(active.size)
    return ZA.T @ alpha[active], alpha


def hard_margin_svm(X: object, y: object | None = None, *, tol: float = 1e-9) -> SVMResult:
    """Solve ``w_hat = argmin ||w||^2 s.t. y_n w . x_n >= 1`` to high precision.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Samples, or folded samples ``y_n x_n`` when ``y`` is None.
    y : array_like, shape (N,), optional
        Labels in ``{-1, +1}`` or ``{0, 1}``.
    tol : float
        Relative tolerance for ``z_n . w_hat = 1`` (support) and ``alpha_n = 0`` (degenerate).

    Returns
    -------
    SVMResult

    Raises
    ------
    NotSeparableError
        If no ``w`` has ``z_n . w > 0`` for all n; carries the LP certificate.
    ValueError
        On malformed input (shapes, NaN/inf, labels).
    """
    Z = fold(X, y)
    if not (np.isfinite(tol) and 0 < tol < 1e-2):
        raise ValueError(f"tol must be in (0, 1e-2), got {tol!r}")
    N, d = Z.shape
    scale = float(np.max(np.linalg.norm(Z, axis=1)))
    if scale == 0.0:
        raise NotSeparableError(separability_certificate(Z))
    Zs = Z / scale  # scale-free problem; w_hat(Z) = w_hat(Zs) / scale
    # Lawson-Hanson: LDP  min ||w||  s.t. Zs w >= 1   <=>   NNLS  min ||E u - f||, u >= 0
    E = np.vstack([Zs.T, np.ones((1, N))])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * (N + d + 10))
    r = E @ u - f
    if np.linalg.norm(r) < 1e-10 or r[-1] >= -1e-12:
        raise NotSeparableError(separability_certificate(Z))
    w = -r[:d] / r[-1]
    alpha = u / (-r[-1])
    # polish on the active set (min-norm duals split identical support vectors equally),
    # else on the positive duals; keep the best KKT point
    best = (kkt_residuals(Zs, w, alpha).max, w, alpha)
    pos = np.flatnonzero(alpha > tol * max(alpha.max(), 1e-300))
    active = np.flatnonzero(Zs @ w <= 1.0 + 1e3 * tol)
    for idx, slack in ((active, 1e-12), (pos, 0.0)):
        if idx.size:
            w_p, alpha_p = _polish(Zs, idx)
            res = kkt_residuals(Zs, w_p, alpha_p).max
            if res <= max(best[0], slack):
                best = (res, w_p, alpha_p)
                break
    _, w, alpha = best
    m = Zs @ w
    support = np.flatnonzero(m <= 1.0 + 1e3 * tol)
    amax = max(float(alpha.max()), 1e-300)
    degenerate = support[alpha[support] <= tol * amax]
    off = np.setdiff1d(np.arange(N), support)
    theta = float(np.min(m[off])) if off.size else float("inf")
    w_hat, alpha_hat = w / scale, alpha / scale**2
    return SVMResult(
        w=w_hat,
        alpha=alpha_hat,
        support=support,
        margin=float(1.0 / np.linalg.norm(w_hat)),
        kkt=kkt_residuals(Z, w_hat, alpha_hat),
        theta=theta,
        degenerate=degenerate,
        tol=tol,
    )
