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

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np
import sympy as sp
from scipy.special import expit, log_expit

__all__ = [
    "U",
    "Loss",
    "LOSSES",
    "get_loss",
    "from_expression",
    "stable_forms",
    "StableForms",
    "TailForm",
    "polynomial_tail",
    "LOSS_IDS",
]

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


@dataclass(frozen=True)
class TailForm:
    """The tight exponential tail ``-l'(u) = c e^{-a u} (1 + r(u))``, ``r -> 0`` exponentially.

    Beyond the point where ``|r|`` is below double precision the leading term is exact to
    rounding, and so is ``l(u) = int_u^oo -l' = (c/a) e^{-a u}``; in log form
    ``log(-l'(u)) = log c - a u`` never underflows (JMLR Definition 2).

    Attributes
    ----------
    c, a : float
        Prefactor and rate, both positive and finite.
    """

    c: float
    a: float

    def __post_init__(self) -> None:
        for name in ("c", "a"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")


_REL = 1e-11
"""Relative agreement with 50-digit arithmetic that a double-precision form must reach."""
_GRID = np.concatenate(
    [np.arange(-50.0, 50.0, 0.25), [50, 60, 80, 100, 150, 200, 300, 400, 500, 600, 700, 800]]
)
"""Calibration grid of ``u``: where double precision is trusted, where the tail takes over."""


_MAX_DPS = 600
"""Largest working precision (decimal digits) of the exact fallback."""
_TINY = 1e-290
"""Below this magnitude a double is too close to underflow to be trusted."""


def _mp_one(fn: Callable, x: float, log: bool) -> float:
    """``fn(x)`` (or ``log(-fn(x))``) by mpmath, doubling the precision until it is stable.

    The first precision grows with ``|x|`` (a term ``e^{-a x}`` next to 1 needs about
    ``0.43 a x`` digits); the value is accepted when two precisions agree to 1e-15 and are
    not zero (a zero at every precision up to :data:`_MAX_DPS` is returned as zero).
    """
    import mpmath

    def at(dps: int):
        with mpmath.workdps(dps):
            v = fn(mpmath.mpf(x))
            if isinstance(v, mpmath.mpc):
                if abs(v.imag) > mpmath.mpf(10) ** (-dps // 2) * max(abs(v.real), 1):
                    return None
                v = v.real
            if log:
                return mpmath.log(-v) if v < 0 else (None if v > 0 else mpmath.ninf)
            return v

    dps = 30 + int(min(abs(x), 1e4))
    try:
        prev = at(dps)
        while dps < _MAX_DPS:
            dps *= 2
            cur = at(dps)
            if cur is None:
                return float("nan")
            if prev is not None and mpmath.isfinite(cur) and mpmath.isfinite(prev):
                if abs(cur - prev) <= 1e-15 * abs(cur) and (cur != 0 or log):
                    return float(cur)
                if not log and abs(cur) < _TINY and abs(prev) < _TINY:
                    return float(cur)  # below double range either way
            prev = cur
        return float(prev) if prev is not None else float("nan")
    except (ValueError, ZeroDivisionError, TypeError, OverflowError):
        return float("nan")


def _mp_array(fn: Callable, u: np.ndarray, log: bool = False) -> np.ndarray:
    """``fn`` (an mpmath lambdified form) elementwise, exactly; ``log(-fn)`` if ``log``."""
    flat = [_mp_one(fn, float(x), log) for x in np.ravel(u)]
    return np.asarray(flat, dtype=float).reshape(np.shape(u))


def _agrees(double: float, exact: float) -> bool:
    """A double-precision value agrees with the exact one, away from underflow."""
    return (
        math.isfinite(double)
        and math.isfinite(exact)
        and abs(exact) > _TINY
        and abs(double - exact) <= _REL * abs(exact)
    )


def _scan(grid: np.ndarray, good: Callable[[float], bool], need: int = 1) -> int:
    """Index of the first point of ``grid`` after which ``good`` fails (or ``need`` in a row hold).

    Walks ``grid`` in order and stops at the first point where ``good`` is False (``need == 1``:
    the returned index is that of the last good point, -1 if none) or, with ``need > 1``, at
    the first run of ``need`` good points (its first index; ``len(grid)`` if none).
    """
    run = 0
    for i, x in enumerate(grid):
        ok = good(float(x))
        if need == 1 and not ok:
            return i - 1
        run = run + 1 if ok else 0
        if need > 1 and run == need:
            return i - need + 1
    return len(grid) - 1 if need == 1 else len(grid)


def _trusted_interval(f: Callable, f_mp: Callable) -> tuple[float, float]:
    """Interval around ``u = 0`` on :data:`_GRID` where double precision agrees with mpmath."""

    def good(x: float) -> bool:
        with np.errstate(all="ignore"):
            return _agrees(float(f(np.array([x]))[0]), _mp_one(f_mp, x, False))

    right, left = _GRID[_GRID >= 0], _GRID[_GRID <= 0][::-1]
    i, j = _scan(right, good), _scan(left, good)
    if i < 0 or j < 0:
        return 0.0, -1.0  # empty
    return float(left[j]), float(right[i])


def _tail_from(tail: Callable[[float], float], f_mp: Callable) -> float:
    """First grid point ``u >= 0`` from which the tail form agrees with mpmath (3 in a row).

    Where the exact value is below double range the tail counts as agreeing: there it is used
    in log form, or its underflow to zero is the value's own.
    """
    grid = _GRID[_GRID >= 0]

    def good(x: float) -> bool:
        exact = _mp_one(f_mp, x, False)
        if math.isfinite(exact) and abs(exact) <= _TINY:
            return True
        return _agrees(tail(x), exact)

    k = _scan(grid, good, need=3)
    return float(grid[k]) if k < grid.size else float("inf")


@dataclass(frozen=True)
class StableForms:
    """Double precision where it is exact, the tail form far out, 50 digits in between.

    Built by :func:`stable_forms`; each method is elementwise on arrays.
    """

    value_f: Callable
    deriv_f: Callable
    value_mp: Callable
    deriv_mp: Callable
    value_ok: tuple[float, float]
    deriv_ok: tuple[float, float]
    tail: TailForm | None
    value_tail_from: float
    deriv_tail_from: float

    def _zones(self, u: np.ndarray, ok: tuple[float, float], tail_from: float):
        double = (u >= ok[0]) & (u <= ok[1])
        tail = ~double & (u >= tail_from) if self.tail is not None else np.zeros_like(double)
        return double, tail, ~(double | tail)

    def value(self, u: np.ndarray) -> np.ndarray:
        """``l(u)``."""
        out = np.empty(u.shape)
        double, tail, slow = self._zones(u, self.value_ok, self.value_tail_from)
        with np.errstate(all="ignore"):
            out[double] = self.value_f(u[double])
            if tail.any():
                t = self.tail
                out[tail] = (t.c / t.a) * np.exp(-t.a * u[tail])
        if slow.any():
            out[slow] = _mp_array(self.value_mp, u[slow])
        return out

    def derivative(self, u: np.ndarray) -> np.ndarray:
        """``l'(u)``."""
        if u.size and self.deriv_ok[0] <= u.min() and u.max() <= self.deriv_ok[1]:
            with np.errstate(all="ignore"):
                return self.deriv_f(u)  # the common case: all in double precision
        out = np.empty(u.shape)
        double, tail, slow = self._zones(u, self.deriv_ok, self.deriv_tail_from)
        with np.errstate(all="ignore"):
            out[double] = self.deriv_f(u[double])
            if tail.any():
                out[tail] = -self.tail.c * np.exp(-self.tail.a * u[tail])
        if slow.any():
            out[slow] = _mp_array(self.deriv_mp, u[slow])
        return out

    def log_neg_derivative(self, u: np.ndarray) -> np.ndarray:
        """``log(-l'(u))``, finite wherever ``l' < 0`` even when ``l'`` underflows."""
        out = np.empty(u.shape)
        double, tail, slow = self._zones(u, self.deriv_ok, self.deriv_tail_from)
        with np.errstate(all="ignore"):
            out[double] = np.log(-self.deriv_f(u[double]))
            if tail.any():
                out[tail] = np.log(self.tail.c) - self.tail.a * u[tail]
        if slow.any():
            out[slow] = _mp_array(self.deriv_mp, u[slow], log=True)
        return out


def _vectorised(fn: Callable) -> Callable:
    def call(u: np.ndarray) -> np.ndarray:
        out = np.asarray(fn(u), dtype=np.float64)
        if out.shape != np.shape(u):  # a constant expression
            out = np.broadcast_to(out, np.shape(u)).copy()
        return out

    return call


def stable_forms(expr: sp.Expr, tail: TailForm | None = None) -> StableForms:
    """Numerically stable value and derivative of a loss given as a sympy expression in ``u``.

    A plain ``lambdify`` of ``log(1 + exp(-u))`` is exactly 0 above ``u ~ 37`` and loses
    digits long before; ``erfc`` underflows at ``u ~ 27``. Here each form is compared, on a
    grid of ``u`` in ``[-50, 800]`` walked outward from ``u = 0``, with the same expression
    evaluated by mpmath (precision doubled until stable): double precision is used on the
    interval around ``u = 0`` where it agrees to ``1e-11`` (and stays above underflow);
    outside it, from the first point where the tail form of ``tail`` (when given) agrees, the tail
    form ``c e^{-a u}`` (``(c/a) e^{-a u}`` for the value, ``log c - a u`` for
    ``log(-l')``) is used; in between and beyond, mpmath computes the value exactly (slower,
    never underflowing).

    Parameters
    ----------
    expr : sympy.Expr
        ``l(u)`` in the symbol :data:`U`.
    tail : TailForm, optional
        The tight exponential tail of ``-l'``, when the loss has one.

    Returns
    -------
    StableForms
    """
    modules = ["scipy", "numpy"]
    d_expr = sp.diff(expr, U)
    value_f = _vectorised(sp.lambdify(U, expr, modules))
    deriv_f = _vectorised(sp.lambdify(U, d_expr, modules))
    value_mp = sp.lambdify(U, expr, "mpmath")
    deriv_mp = sp.lambdify(U, d_expr, "mpmath")
    value_ok = _trusted_interval(value_f, value_mp)
    deriv_ok = _trusted_interval(deriv_f, deriv_mp)
    v_from = d_from = float("inf")
    if tail is not None:
        c, a = tail.c, tail.a
        v_from = _tail_from(lambda x: c / a * math.exp(-a * x), value_mp)
        d_from = _tail_from(lambda x: -c * math.exp(-a * x), deriv_mp)
    return StableForms(
        value_f, deriv_f, value_mp, deriv_mp, value_ok, deriv_ok, tail, v_from, d_from
    )


@functools.lru_cache(maxsize=32)
def _from_expr(expr: sp.Expr, name: str | None, tail: TailForm | None = None) -> Loss:
    free = expr.free_symbols
    if not free <= {U} and not (len(free) == 1 and next(iter(free)).name == "u"):
        raise ValueError(
            f"name_or_expr must be an expression in the single symbol u, got {expr} "
            f"with symbols {sorted(map(str, free))}"
        )
    if free and U not in free:
        expr = expr.subs(next(iter(free)), U)
    forms = stable_forms(expr, tail)
    return Loss(
        name or str(expr),
        expr,
        forms.value,
        forms.derivative,
        forms.log_neg_derivative,
        tail="exponential" if tail is not None else "unknown",
    )


def from_expression(expr: sp.Expr, name: str | None = None, tail: TailForm | None = None) -> Loss:
    """A :class:`Loss` from a sympy expression in ``u``, with stable numerics.

    Parameters
    ----------
    expr : sympy.Expr
        ``l(u)`` in the symbol ``u``.
    name : str, optional
    tail : TailForm, optional
        The tight exponential tail of ``-l'`` (from the checker's symbolic analysis); used
        far out, where double precision underflows (see :func:`stable_forms`).
    """
    if not isinstance(expr, sp.Expr):
        raise TypeError(f"expr must be a sympy expression, got {type(expr).__name__}")
    if tail is not None and not isinstance(tail, TailForm):
        raise TypeError(f"tail must be a TailForm, got {type(tail).__name__}")
    return _from_expr(expr, name, tail)


def get_loss(name_or_expr: str | sp.Expr | Loss, name: str | None = None) -> Loss:
    """A :class:`Loss` from a registry name, a sympy expression in ``u`` or a Loss.

    Parameters
    ----------
    name_or_expr : str, sympy.Expr or Loss
        ``"logistic"``, ``"exp"``, ``"poly"``, ``"superexp"``; or an expression such as
        ``sympy.log(1 + sympy.exp(-u))`` (stable numpy forms by :func:`stable_forms`; the
        optimisers then use their slower Python path).
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
