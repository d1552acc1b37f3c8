"""Checks on the data and the step size, and from them (with the loss) which theorem applies.

* A1 separable: the LP certificate of :func:`separable.svm.separability_certificate`
  (a separator, or Gordan multipliers proving there is none).
* sigma_max(X) and the step bound ``eta < 2 / (beta sigma_max^2)``; for a loss without a
  global beta but with ``l'' <= K l`` (the exp-loss footnote), ``eta < 1 / (K L(w0)
  max_n ||x_n||^2)``, which is the footnote's ``eta < 1/L(w(0))`` for unit-norm data.
* Non-degenerate duals (every support vector has ``alpha_n > 0``) and support vectors
  spanning the data (``rank X_S = rank X``).

The applicable result follows (JMLR 2018): Lemma 1 needs A1, A2 and the step bound;
Theorem 3 adds A3; Theorem 4 adds non-degenerate duals and spanning support vectors; with a
degenerate dual the expansion has iterated-log terms (the appendix theorem).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from separable.checker.assumptions import LossAssumptions
from separable.checker.verdicts import CheckItem, Verdict
from separable.svm import SVMResult, hard_margin_svm, separability_certificate

__all__ = ["Regime", "DataChecks", "check_data", "select_regime"]


class Regime(str, enum.Enum):
    """Which of the paper's results the assumptions select."""

    THM4 = "Thm 4"  # rho -> w_tilde; Thm 5 rates for almost every dataset
    THM3_BOUNDED = "Thm 3 (rho bounded)"  # non-degenerate, support vectors not spanning
    DEGENERATE = "Thm 3 (degenerate, log-log terms)"
    LEMMA1 = "Lemma 1 only"  # A2 + step, but no tight exponential tail
    NONE = "none"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DataChecks:
    """Outcome of :func:`check_data`.

    Attributes
    ----------
    items : tuple of CheckItem
    svm : SVMResult or None
        ``None`` when the data are not separable.
    sigma_max : float
        Largest singular value of the data matrix.
    step_limit : float or None
        The bound that ``eta`` must stay below (``None`` when the loss gives none).
    regime : Regime
        The result that applies to gradient descent with this step.
    flow_regime : Regime
        The result that applies to the gradient flow (no step condition).
    """

    items: tuple[CheckItem, ...]
    svm: SVMResult | None
    sigma_max: float
    step_limit: float | None
    regime: Regime
    flow_regime: Regime


def _step_item(
    Z: np.ndarray, eta: float, w0: np.ndarray, assumptions: LossAssumptions, loss_value
) -> tuple[CheckItem, float | None]:
    smax2 = float(np.linalg.norm(Z, 2)) ** 2
    beta = assumptions.beta_value
    if beta is not None and beta > 0:
        limit = 2.0 / (beta * smax2)
        rel = "<" if eta < limit else ">="
        evidence = (
            f"eta = {eta:.6g} {rel} 2/(beta sigma_max^2) = 2/({beta:.6g} * {smax2:.6g}) "
            f"= {limit:.6g}"
        )
        values = {"eta": eta, "limit": limit, "beta": beta, "sigma_max_sq": smax2}
    elif assumptions.footnote_K is not None:
        K = float(assumptions.footnote_K)
        L0 = float(np.sum(loss_value(Z @ w0)))
        xmax2 = float(np.max(np.sum(Z * Z, axis=1)))
        limit = 1.0 / (K * L0 * xmax2)
        rel = "<" if eta < limit else ">="
        evidence = (
            f"no global beta; footnote: eta = {eta:.6g} {rel} 1/(K L(w0) max||x||^2) = "
            f"1/({K:.6g} * {L0:.6g} * {xmax2:.6g}) = {limit:.6g}"
        )
        values = {"eta": eta, "limit": limit, "K": K, "L_w0": L0, "max_norm_sq": xmax2}
    elif beta == 0:
        return CheckItem("step bound", Verdict.HOLDS, "l'' = 0: any eta", values={"eta": eta}), None
    else:
        return CheckItem(
            "step bound",
            Verdict.UNDETERMINED,
            "no global beta and no footnote bound for this loss",
            values={"eta": eta},
        ), None
    verdict = Verdict.HOLDS if eta < limit else Verdict.FAILS
    return CheckItem("step bound", verdict, evidence, values=values), limit


def check_data(
    Z: np.ndarray,
    eta: float,
    w0: np.ndarray,
    assumptions: LossAssumptions,
    loss_value,
    *,
    svm: SVMResult | None = None,
) -> DataChecks:
    """Run the data and step checks and decide which result applies.

    Parameters
    ----------
    Z : numpy.ndarray, shape (N, d)
        Folded samples ``y_n x_n``.
    eta : float
        Step size (> 0).
    w0 : numpy.ndarray, shape (d,)
        Initial weights.
    assumptions : LossAssumptions
        The verdicts on the loss.
    loss_value : callable
        ``l(u)`` elementwise on arrays (for ``L(w0)`` in the footnote bound).
    svm : SVMResult, optional
        A precomputed SVM of ``Z``.
    """
    items = []
    cert = separability_certificate(Z)
    if cert.separable:
        margin_lp = float(np.min(Z @ cert.w))
        items.append(
            CheckItem(
                "A1 separable",
                Verdict.HOLDS,
                f"LP separator w with min_n z_n.w = {margin_lp:.6g} > 0",
                values={"lp_w": cert.w.tolist(), "min_margin": margin_lp},
            )
        )
    else:
        support = np.flatnonzero(cert.lam > 1e-9).tolist()
        items.append(
            CheckItem(
                "A1 separable",
                Verdict.FAILS,
                f"Gordan certificate: convex weights lam on samples {support} with "
                f"||Z^T lam||_inf = {cert.residual:.2e}: no w has every z_n.w > 0",
                values={"lam": cert.lam.tolist(), "residual": cert.residual},
            )
        )
    sigma_max = float(np.linalg.norm(Z, 2))
    items.append(
        CheckItem(
            "sigma_max(X)",
            Verdict.HOLDS,
            f"sigma_max = {sigma_max:.6g}",
            values={"sigma_max": sigma_max},
        )
    )
    step, limit = _step_item(Z, eta, w0, assumptions, loss_value)
    items.append(step)
    if not cert.separable:
        return DataChecks(tuple(items), None, sigma_max, limit, Regime.NONE, Regime.NONE)
    svm = hard_margin_svm(Z) if svm is None else svm
    S = svm.support
    if svm.degenerate.size:
        items.append(
            CheckItem(
                "duals non-degenerate",
                Verdict.FAILS,
                f"support vectors {svm.degenerate.tolist()} have alpha_n = 0 "
                f"(measure-zero case: iterated-log terms)",
                values={"alpha": svm.alpha.tolist(), "support": S.tolist()},
            )
        )
    else:
        items.append(
            CheckItem(
                "duals non-degenerate",
                Verdict.HOLDS,
                f"alpha_S = {np.array2string(svm.alpha[S], precision=4)} > 0 "
                f"on support {S.tolist()}",
                values={"alpha": svm.alpha.tolist(), "support": S.tolist()},
            )
        )
    tol = 1e-9 * max(1.0, float(np.abs(Z).max()))
    rank_s, rank_x = (
        int(np.linalg.matrix_rank(Z[S], tol=tol)),
        int(np.linalg.matrix_rank(Z, tol=tol)),
    )
    spans = rank_s == rank_x
    items.append(
        CheckItem(
            "SVs span data",
            Verdict.HOLDS if spans else Verdict.FAILS,
            f"rank X_S = {rank_s} {'=' if spans else '<'} rank X = {rank_x}",
            values={"rank_S": rank_s, "rank_X": rank_x},
        )
    )
    flow_regime = select_regime(assumptions, svm, spans, step_ok=True)
    regime = select_regime(assumptions, svm, spans, step_ok=step.verdict is Verdict.HOLDS)
    return DataChecks(tuple(items), svm, sigma_max, limit, regime, flow_regime)


def select_regime(
    assumptions: LossAssumptions, svm: SVMResult | None, spans: bool, step_ok: bool
) -> Regime:
    """The result that applies, from the loss verdicts, the SVM and the step check.

    Lemma 1 needs A1, A2 and the step bound; Theorem 3 adds A3; Theorem 4 adds
    non-degenerate duals and support vectors that span the data.
    """
    if svm is None:
        return Regime.NONE
    a2 = all(it.verdict is Verdict.HOLDS for it in assumptions.items if it.name.startswith("A2"))
    a3 = assumptions.item("A3 exp tail").verdict is Verdict.HOLDS
    if not (a2 and step_ok):
        return Regime.NONE
    if not a3:
        return Regime.LEMMA1
    if svm.degenerate.size:
        return Regime.DEGENERATE
    return Regime.THM4 if spans else Regime.THM3_BOUNDED
