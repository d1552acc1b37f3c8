"""Margin losses ``l(u)`` of the homogeneous problem, ``L(w) = sum_n l(z_n . w)``.

Each :class:`Loss` carries its sympy expression in the symbol ``u`` (for exact checks of
the JMLR assumptions) and numerically stable numpy forms of the value, the derivative and
``log(-l'(u))`` (for the log-time flow, where ``t * (-l'(u))`` must not overflow).

Built-in losses (:data:`LOSSES`):

``logistic``  ``log(1 + exp(-u))``                   exponential tail, beta = 1/4
``exp``       ``exp(-u)``                             exponential tail, no global beta
``poly``      ``(sqrt(u^2 + 1) - u)^2``               polynomial tail ``~ 1/(4 u^2)``
``superexp``  ``log(1 + exp(-(u + softplus(u)^2)))``  tail ``~ exp(-u - u^2)``

The last two are smooth, positive and decreasing, with ``l'(u) -> const != 0`` or a linear
growth at ``u -> -inf`` (assumption A2), but their tails are not the tight exponential
tail of assumption A3: the polynomial tail does not lead to the L2 max-margin direction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numba
import numpy as np
import sympy as sp
from scipy.special import expit, log_expit

__all__ = ["U", "Loss", "LOSSES", "get_loss", "polynomial_tail", "LOSS_IDS"]

U = sp.Symbol("u", real=True)
"""The sympy symbol of the margin ``u = y w . x``."""

LOSS_IDS = {"logistic": 0, "exp": 1, "poly": 2, "superexp": 3}
"""Identifiers of the built-in losses inside compiled kernels."""


ArrayFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Loss:
    """A margin loss with its sympy expression and stable numpy forms.

    Attributes
    ----------
    name : str
    expr : sympy.Expr
        ``l(u)`` in the symbol :data:`U` (``u``).
    tail : str
        ``"exponential"``, ``"polynomial"``, ``"super-exponential"`` or ``"unknown"``.
    beta : float or None
        Global smoothness ``sup |l''|`` when finite and known; None otherwise (exp loss).
    kernel_id : int
        Identifier inside the compiled kernels; -1 for user expressions (slow path).
    param : float
        Parameter handed to the kernels (the exponent of ``poly``).
    """

    name: str
    expr: sp.Expr
    _value: ArrayFn = field(repr=False, compare=False)
    _derivative: ArrayFn = field(repr=False, compare=False)
    _log_neg_derivative: ArrayFn = field(repr=False, compare=False)
    tail: str = "unknown"
    beta: float | None = None
    kernel_id: int = -1
    param: float = 0.0

    def value(self, u: np.ndarray | float) -> np.ndarray:
        """``l(u)``, elementwise and overflow-safe for built-ins."""
        return self._value(np.asarray(u, dtype=np.float64))

    def derivative(self, u: np.ndarray | float) -> np.ndarray:
        """``l'(u)`` (negative), elementwise."""
        return self._derivative(np.asarray(u, dtype=np.float64))

    def log_neg_derivative(self, u: np.ndarray | float) -> np.ndarray:
        """``log(-l'(u))``, finite for large ``|u|`` for built-ins (used by the log-time flow)."""
        return self._log_neg_derivative(np.asarray(u, dtype=np.float64))

    @cached_property
    def second_derivative_expr(self) -> sp.Expr:
        """``l''(u)`` as a sympy expression."""
        return sp.diff(self.expr, U, 2)

    def estimated_beta(self, u_min: float = -60.0, u_max: float = 60.0, n: int = 24001) -> float:
        """``beta`` if known, else the Lipschitz constant of ``l'`` on a grid of ``[u_min, u_max]``.

        Estimated from finite differences of the numeric derivative, so a kinked loss (whose
        ``l''`` holds a Dirac delta) gets a large finite value of order jump/grid step
        instead of an error.
        """
        if self.beta is not None:
            return self.beta
        u = np.linspace(u_min, u_max, n)
        with np.errstate(all="ignore"):
            d = np.asarray(self.derivative(u), dtype=float)
            slopes = np.abs(np.diff(d) / np.diff(u))
        return float(np.nanmax(slopes))


# ----------------------------------------------------------------------------- built-ins
def _logistic() -> Loss:
    return Loss(
        "logistic",
        sp.log(1 + sp.exp(-U)),
        lambda u: np.logaddexp(0.0, -u),
        lambda u: -expit(-u),
        lambda u: log_expit(-u),
        tail="exponential",
        beta=0.25,
        kernel_id=0,
    )


def _exp() -> Loss:
    return Loss(
        "exp",
        sp.exp(-U),
        lambda u: np.exp(-u),
        lambda u: -np.exp(-u),
        lambda u: -u,
        tail="exponential",
        beta=None,
        kernel_id=1,
    )


def _gap(u: np.ndarray) -> np.ndarray:
    """``sqrt(u^2 + 1) - u`` without cancellation."""
    h = np.hypot(u, 1.0)
    with np.errstate(divide="ignore"):
        return np.where(u > 0, 1.0 / (h + u), h - u)


def polynomial_tail(k: float = 2.0) -> Loss:
    """The loss ``(sqrt(u^2 + 1) - u)^k``: polynomial tail ``~ (2u)^-k`` as ``u -> inf``.

    ``l' = -k l / sqrt(u^2 + 1)``; for ``1 <= k <= 2`` the derivative is Lipschitz.
    """
    if not (np.isfinite(k) and 1.0 <= k <= 2.0):
        raise ValueError(f"k must be in [1, 2] (smooth, A2), got {k!r}")
    k = float(k)
    expr = (sp.sqrt(U**2 + 1) - U) ** (sp.Integer(2) if k == 2.0 else sp.Float(k))

    def log_neg(u):
        return np.log(k) + k * np.log(_gap(u)) - 0.5 * np.log1p(u * u)

    loss = Loss(
        "poly" if k == 2.0 else f"poly{k:g}",
        expr,
        lambda u: _gap(u) ** k,
        lambda u: -k * _gap(u) ** k / np.hypot(u, 1.0),
        log_neg,
        tail="polynomial",
        kernel_id=2,
        param=k,
    )
    object.__setattr__(loss, "beta", loss.estimated_beta())
    return loss


def _softplus(u: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, u)


def _superexp() -> Loss:
    f_expr = U + sp.log(1 + sp.exp(U)) ** 2

    def f(u):
        return u + _softplus(u) ** 2

    def fprime(u):
        return 1.0 + 2.0 * _softplus(u) * expit(u)

    loss = Loss(
        "superexp",
        sp.log(1 + sp.exp(-f_expr)),
        lambda u: np.logaddexp(0.0, -f(u)),
        lambda u: -expit(-f(u)) * fprime(u),
        lambda u: log_expit(-f(u)) + np.log(fprime(u)),
        tail="super-exponential",
        kernel_id=3,
    )
    object.__setattr__(loss, "beta", loss.estimated_beta())
    return loss


LOSSES: dict[str, Loss] = {
    "logistic": _logistic(),
    "exp": _exp(),
    "poly": polynomial_tail(2.0),
    "superexp": _superexp(),
}
"""Registry of the built-in losses by name."""


def _from_expr(expr: sp.Expr, name: str | None) -> Loss:
    free = expr.free_symbols
    if not free <= {U} and not (len(free) == 1 and next(iter(free)).name == "u"):
        raise ValueError(
            f"name_or_expr must be an expression in the single symbol u, got {expr} "
            f"with symbols {sorted(map(str, free))}"
        )
    if free and U not in free:
        expr = expr.subs(next(iter(free)), U)
    value = sp.lambdify(U, expr, "numpy")
    deriv = sp.lambdify(U, sp.diff(expr, U), "numpy")

    def _v(u):
        return np.broadcast_to(np.asarray(value(u), dtype=np.float64), np.shape(u)).copy()

    def _d(u):
        return np.broadcast_to(np.asarray(deriv(u), dtype=np.float64), np.shape(u)).copy()

    def _ln(u):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(-_d(u))

    return Loss(name or str(expr), expr, _v, _d, _ln, tail="unknown")


def get_loss(name_or_expr: str | sp.Expr | Loss, name: str | None = None) -> Loss:
    """A :class:`Loss` from a registry name, a sympy expression in ``u`` or a Loss.

    Parameters
    ----------
    name_or_expr : str, sympy.Expr or Loss
        ``"logistic"``, ``"exp"``, ``"poly"``, ``"superexp"``; or an expression such as
        ``sympy.log(1 + sympy.exp(-u))`` (numpy forms by ``lambdify``, not specially
        stabilised; the optimisers then use their slower Python path).
    name : str, optional
        Name of a loss built from an expression.

    Raises
    ------
    ValueError
        Unknown name, or an expression in another symbol.
    TypeError
        Anything else.
    """
    if isinstance(name_or_expr, Loss):
        return name_or_expr
    if isinstance(name_or_expr, str):
        try:
            return LOSSES[name_or_expr]
        except KeyError:
            raise ValueError(
                f"name_or_expr {name_or_expr!r} is not a known loss; known: {sorted(LOSSES)}"
            ) from None
    if isinstance(name_or_expr, sp.Expr):
        return _from_expr(name_or_expr, name)
    raise TypeError(
        "name_or_expr must be a loss name, a sympy expression or a Loss, "
        f"got {type(name_or_expr).__name__}"
    )


# ----------------------------------------------------------------------------- compiled
@numba.njit(cache=True, fastmath=False)
def neg_dloss(u: float, loss_id: int, param: float) -> float:
    """``-l'(u)`` of a built-in loss (by :data:`LOSS_IDS`), for compiled kernels."""
    if loss_id == 0:
        return 1.0 / (1.0 + np.exp(u))  # exp overflow gives inf and the exact limit 0
    if loss_id == 1:
        return np.exp(-u)
    if loss_id == 2:
        h = np.sqrt(u * u + 1.0)
        g = 1.0 / (h + u) if u > 0.0 else h - u
        return param * g**param / h
    # superexp
    sp_u = np.log1p(np.exp(u)) if u < 30.0 else u + np.log1p(np.exp(-u))
    f = u + sp_u * sp_u
    sig_u = 1.0 / (1.0 + np.exp(-u)) if u > -700.0 else 0.0
    fp = 1.0 + 2.0 * sp_u * sig_u
    if f > 0.0:
        e = np.exp(-f)
        return e / (1.0 + e) * fp
    return fp / (1.0 + np.exp(f))
