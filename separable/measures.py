"""The quantities of JMLR Theorem 5, measured on a sequence of weight vectors.

For weights ``w`` (rows of ``W``) at times ``t`` and the SVM solution ``w_hat``:

``norm``           ``||w||``
``loss``           ``L(w) = sum_n l(z_n . w)``
``angle_gap``      ``1 - w . w_hat / (||w|| ||w_hat||)``
``direction_gap``  ``|| w/||w|| - w_hat/||w_hat|| ||``
``margin_gap``     ``1/||w_hat|| - min_n z_n . w / ||w||``
``rho``            ``w - w_hat log t``  (the residual of Theorem 3)
"""

from __future__ import annotations

import numpy as np

__all__ = ["gap_measures", "MEASURES"]

MEASURES = ("norm", "loss", "angle_gap", "direction_gap", "margin_gap", "rho")


def gap_measures(
    Z: np.ndarray, W: np.ndarray, w_hat: np.ndarray, log_t: np.ndarray, loss=None
) -> dict[str, np.ndarray]:
    """Compute :data:`MEASURES` for each row of ``W``.

    Parameters
    ----------
    Z : numpy.ndarray, shape (N, d)
        Folded samples.
    W : numpy.ndarray, shape (T, d)
        Weights.
    w_hat : numpy.ndarray, shape (d,)
        Hard-margin SVM solution.
    log_t : numpy.ndarray, shape (T,)
        ``log t`` at each row (log-time is accepted so that ``t`` may exceed int64).
    loss : separable.losses.Loss, optional
        For the ``loss`` entry (omitted when None).

    Returns
    -------
    dict of str to numpy.ndarray
        Undefined entries (``w = 0``) are NaN.
    """
    W = np.atleast_2d(W)
    norm = np.linalg.norm(W, axis=1)
    wn = np.linalg.norm(w_hat)
    u = w_hat / wn
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = W / norm[:, None]
        margins = W @ Z.T
        out = {
            "norm": norm,
            # 1 - cos computed as |unit - u|^2 / 2 keeps precision when the gap is tiny
            "angle_gap": 0.5 * np.sum((unit - u) ** 2, axis=1),
            "direction_gap": np.linalg.norm(unit - u, axis=1),
            "margin_gap": 1.0 / wn - margins.min(axis=1) / norm,
            "rho": W - np.outer(log_t, w_hat),
        }
    if loss is not None:
        out["loss"] = loss.value(margins).sum(axis=1)
    return out
