"""Guarded symbolic steps: time limits, piecewise decomposition, real zeros and signs.

sympy's ``solveset`` and ``limit`` can run for a very long time on hard expressions, so every
call goes through :func:`guarded`, which gives up after a time limit and says so. A property
of the form "f(u) < 0 for every real u" is then decided by the intermediate value theorem:
find the real zeros of ``f`` exactly, check that ``f`` is continuous, and evaluate its sign
at one point of each interval between consecutive zeros (at 50 significant digits). When
sympy cannot find the zeros, a dense numerical scan still finds violations (a verified
counterexample is a proof of failure), but it can never prove that a property holds: the
verdict is then *undetermined*.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import sympy as sp

__all__ = [
    "U",
    "SymbolicTimeout",
    "CheckTimeout",
    "deadline",
    "remaining",
    "guarded",
    "pieces",
    "numeric",
    "real_zeros",
    "ZeroSet",
    "SignResult",
    "check_sign",
    "one_sided_limit",
    "limit_at_infinity",
    "continuity",
    "sign_at",
    "clean_limit",
    "short",
]

U = sp.Symbol("u", real=True)
"""The loss variable: the margin ``u = y w^T x``."""

DIGITS = 50
_T = TypeVar("_T")


class SymbolicTimeout(Exception):
    """A symbolic step ran past its time limit."""


class CheckTimeout(Exception):
    """The whole check ran past its deadline (see :func:`deadline`)."""


_DEADLINE: list[float] = []
"""Stack of absolute deadlines (``time.monotonic()``) of the checks in progress."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def remaining() -> float:
    """Seconds left before the innermost deadline (``inf`` when none is set)."""
    return _DEADLINE[-1] - time.monotonic() if _DEADLINE else math.inf


def _arm_deadline() -> None:
    """Point SIGALRM at the innermost deadline (raising :class:`CheckTimeout`)."""
    left = remaining()
    if left <= 0:
        raise CheckTimeout("the check ran past its time limit")

    def _raise(signum, frame):  # pragma: no cover - timing dependent
        raise CheckTimeout("the check ran past its time limit")

    signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, left)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`CheckTimeout` in the block once ``seconds`` have passed (main thread).

    Symbolic steps inside (:func:`guarded`) get at most the time that is left; numerical
    work is interrupted by the alarm between Python bytecodes.
    """
    if not _main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGALRM)
    _DEADLINE.append(time.monotonic() + seconds)
    try:
        _arm_deadline()
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _DEADLINE.pop()
        signal.signal(signal.SIGALRM, previous)
        if _DEADLINE:
            _arm_deadline()


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`SymbolicTimeout` inside the block after ``seconds`` (main thread only).

    Within a :func:`deadline` the limit is cut to the time left, and the deadline's alarm is
    re-armed afterwards. Outside the main thread no alarm can be delivered, and the block
    runs unguarded.
    """
    if seconds <= 0 or not _main_thread():
        yield
        return
    limit = min(seconds, remaining())
    if limit <= 0:
        raise CheckTimeout("the check ran past its time limit")

    def _raise(signum, frame):  # pragma: no cover - timing dependent
        raise SymbolicTimeout(f"gave up after {limit:g} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if _DEADLINE:
            _arm_deadline()


def guarded(fn: Callable[[], _T], seconds: float) -> tuple[_T | None, str | None]:
    """Run one symbolic step with a time limit.

    Returns
    -------
    value, error : tuple
        ``(result, None)`` on success; ``(None, reason)`` when the step timed out or sympy
        raised (``NotImplementedError``, ``TypeError``, ... are common on hard inputs).

    Raises
    ------
    CheckTimeout
        When the enclosing :func:`deadline` has passed.
    """
    try:
        with _time_limit(seconds):
            return fn(), None
    except CheckTimeout:
        raise
    except SymbolicTimeout as exc:
        if remaining() <= 0:
            raise CheckTimeout("the check ran past its time limit") from None
        return None, f"timed out ({exc})"
    except RecursionError:
        return None, "sympy recursed too deeply"
    except Exception as exc:  # noqa: BLE001 - sympy raises many kinds on hard inputs
        return None, f"sympy could not do it ({type(exc).__name__}: {exc})".strip()


# ----------------------------------------------------------------------------- pieces
def _intervals(s: sp.Set) -> list[sp.Interval]:
    if isinstance(s, sp.Interval):
        return [s]
    if s is sp.S.Reals:
        return [sp.Interval(-sp.oo, sp.oo)]
    if isinstance(s, sp.Union):
        return [iv for arg in s.args for iv in _intervals(arg)]
    if isinstance(s, sp.FiniteSet) or s is sp.S.EmptySet:
        return []  # isolated points: they belong to a neighbouring piece's closure
    raise ValueError(f"cannot split the set {s} into intervals")


def pieces(expr: sp.Expr) -> list[tuple[sp.Expr, sp.Interval]]:
    """Split ``expr`` into smooth pieces on intervals of the real line.

    ``Max``, ``Min``, ``Abs``, ``Heaviside`` and ``sign`` are rewritten as ``Piecewise`` and
    folded; each branch is returned with the interval(s) where it is the active one, sorted
    from left to right. A piece-free expression is one piece on the whole line.
    """
    folded = sp.piecewise_fold(expr.rewrite(sp.Piecewise))
    if not isinstance(folded, sp.Piecewise):
        return [(folded, sp.Interval(-sp.oo, sp.oo))]
    out = []
    for branch, where in folded.as_expr_set_pairs(sp.S.Reals):
        for iv in _intervals(where):
            if iv.measure != 0:
                out.append((sp.simplify(branch), iv))
    out.sort(key=lambda p: float(p[1].inf) if p[1].inf.is_finite else -math.inf)
    return out


# ----------------------------------------------------------------------------- numbers
def numeric(expr: sp.Expr, point: Any = None, digits: int = DIGITS) -> float | None:
    """Value of ``expr`` (at ``u = point``) as a float, or ``None`` if not a finite real."""
    try:
        e = expr if point is None else expr.subs(U, point)
        v = sp.N(e, digits)
        re, im = v.as_real_imag()
        if not (re.is_number and im.is_number):
            return None
        if abs(complex(im)) > 10.0 ** (-digits // 2) * max(1.0, abs(complex(re))):
            return None
        x = float(re)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
        return None
    return x if math.isfinite(x) else None


def sign_at(expr: sp.Expr, point: Any, digits: int = DIGITS) -> int | None:
    """Sign (-1, 0, +1) of the real number ``expr(point)`` at ``digits`` digits, exponent unbounded.

    Unlike :func:`numeric` this does not pass through a float, so ``e^-1000`` is positive.
    """
    try:
        v = sp.N(expr.subs(U, point) if point is not None else expr, digits)
        re, im = v.as_real_imag()
        if not (re.is_number and im.is_number) or (
            im != 0 and abs(im) > abs(re) * 10.0 ** (-digits // 2)
        ):
            return None
        if re.is_zero:
            return 0
        return 1 if re > 0 else -1
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
        return None


def clean_limit(value: sp.Expr | None) -> bool:
    """Whether a limit is a definite extended real: a number or +-oo (not AccumBounds etc.)."""
    if value is None or isinstance(value, sp.AccumBounds) or value.has(sp.AccumBounds):
        return False
    if value in (sp.oo, -sp.oo):
        return True
    return bool(value.is_number) and numeric(value) is not None


def short(expr: sp.Expr, width: int = 40) -> str:
    """``expr`` as text, or its value when the exact form is longer than ``width``."""
    text = sp.sstr(expr)
    if len(text) <= width:
        return text
    x = numeric(expr)
    return f"{x:.10g} (exact form in the JSON)" if x is not None else text[:width] + "..."


def _real_points(s: sp.Set, within: sp.Interval) -> tuple[list[sp.Expr], list[sp.Interval]] | None:
    """Points and intervals of a solution set, or ``None`` if it is not explicit."""
    if s is sp.S.EmptySet:
        return [], []
    if isinstance(s, sp.FiniteSet):
        pts = []
        for e in s.args:
            x = numeric(e)
            if x is None:
                continue  # a non-real root
            if within.contains(sp.Float(x, DIGITS)) is sp.false:
                continue
            pts.append(e)
        return pts, []
    if isinstance(s, sp.Interval):
        return [], [s]
    if isinstance(s, sp.Union):
        pts: list[sp.Expr] = []
        ivs: list[sp.Interval] = []
        for arg in s.args:
            sub = _real_points(arg, within)
            if sub is None:
                return None
            pts += sub[0]
            ivs += sub[1]
        return pts, ivs
    if isinstance(s, sp.Intersection):
        finite = [a for a in s.args if isinstance(a, sp.FiniteSet)]
        others = [a for a in s.args if not isinstance(a, sp.FiniteSet)]
        if len(finite) == 1 and all(isinstance(a, sp.Interval) or a is sp.S.Reals for a in others):
            return _real_points(finite[0], within)
    return None  # ConditionSet, ImageSet, ...: not explicit


@dataclass(frozen=True)
class ZeroSet:
    """Real zeros of a function on an interval: isolated points and whole intervals."""

    points: tuple[sp.Expr, ...]
    intervals: tuple[sp.Interval, ...]

    @property
    def empty(self) -> bool:
        return not self.points and not self.intervals

    def boundaries(self) -> list[float]:
        """Sorted numeric values of the points and the interval ends."""
        vals = [numeric(p) for p in self.points]
        for iv in self.intervals:
            vals += [numeric(e) for e in (iv.inf, iv.sup) if e.is_finite]
        return sorted({v for v in vals if v is not None})


def _exp_rational_zeros(f: sp.Expr, interval: sp.Interval) -> ZeroSet | None:
    """Zeros of an ``f`` that is a rational function of ``z = e^-u``, by real-root isolation.

    Exponential-tail losses and their sums give such derivatives; the zeros are then
    ``u = -log(r)`` for the positive real roots ``r`` of the numerator (exact ``CRootOf``).
    """
    z = sp.Dummy("z", positive=True)
    g = sp.expand_log(sp.powsimp(f.subs(U, -sp.log(z))), force=True)
    if g.free_symbols - {z} or not g.is_rational_function(z):
        return None
    num, den = sp.fraction(sp.cancel(sp.together(g)))
    if num == 0:
        return ZeroSet((), (interval,))
    roots = [r for r in sp.Poly(num, z).real_roots() if r.is_positive]
    pts = []
    for r in dict.fromkeys(roots):
        x = -sp.log(r)
        v = numeric(x)
        if (
            v is not None
            and interval.contains(sp.Float(v, DIGITS)) is not sp.false
            and numeric(den, -x) != 0
        ):
            pts.append(x)
    return ZeroSet(tuple(sorted(pts, key=numeric)), ())


def real_zeros(f: sp.Expr, interval: sp.Interval, seconds: float) -> tuple[ZeroSet | None, str]:
    """Real zeros of ``f`` on ``interval``: exactly by real-root isolation when ``f`` is
    rational in ``e^-u``, else by ``solveset``; ``None`` if neither gives an explicit set."""
    direct, _ = guarded(lambda: _exp_rational_zeros(f, interval), seconds)
    if direct is not None:
        shown = ", ".join(
            sp.sstr(p) if len(sp.sstr(p)) < 40 else f"{numeric(p):.6g}" for p in direct.points
        )
        return direct, f"zeros {{{shown}}} (real roots in e^-u)"
    sol, err = guarded(lambda: sp.solveset(sp.simplify(f), U, interval), seconds)
    if sol is None:
        return None, err or "no solution set"
    parsed = _real_points(sol, interval)
    if parsed is None:
        return None, f"solveset returned an implicit set {sol}"
    pts = sorted(parsed[0], key=lambda e: numeric(e))
    return ZeroSet(tuple(pts), tuple(parsed[1])), f"zeros {sol}"


def continuity(
    f: sp.Expr, interval: sp.Interval, seconds: float
) -> tuple[bool | None, sp.Set | None, str]:
    """Whether ``f`` is continuous on ``interval``; the points where it is not; how decided."""
    from sympy.calculus.util import continuous_domain

    dom, err = guarded(lambda: continuous_domain(f, U, interval), seconds)
    if dom is None:
        return None, None, err or ""
    missing = sp.Complement(interval, dom)
    if missing == sp.S.EmptySet:
        return True, missing, "continuous"
    return False, missing, f"not continuous on {missing}"


# ----------------------------------------------------------------------------- signs
@dataclass(frozen=True)
class SignResult:
    """Whether ``f`` has the wanted strict sign on an interval.

    Attributes
    ----------
    holds : bool or None
        ``True`` proved (zeros + continuity + signs between zeros), ``False`` with a
        witness, ``None`` undetermined.
    witness : float or None
        A point where the sign is wrong (``f`` there is ``witness_value``).
    witness_value : float or None
    method : str
        How the answer was reached.
    """

    holds: bool | None
    witness: float | None
    witness_value: float | None
    method: str


def _test_points(bounds: list[float], interval: sp.Interval) -> list[float]:
    lo = float(interval.inf) if interval.inf.is_finite else None
    hi = float(interval.sup) if interval.sup.is_finite else None
    inner = [b for b in bounds if (lo is None or b > lo) and (hi is None or b < hi)]
    edges = [lo] + inner + [hi]
    pts = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if a is None and b is None:
            pts.append(0.0)
        elif a is None:
            pts.append(b - 1.0)
        elif b is None:
            pts.append(a + 1.0)
        else:
            pts.append(a + (b - a) / 2)
    return pts


def _scan(
    f: sp.Expr, interval: sp.Interval, want: int, n: int = 4001
) -> tuple[float, float] | None:
    """Dense numerical scan for a point of the wrong sign (verified at high precision).

    The verification takes the sign at 50 digits with an unbounded exponent
    (:func:`sign_at`): a value such as ``-e^-745``, which is ``-0.0`` as a double, is negative.
    """
    lo = max(float(interval.inf), -60.0) if interval.inf.is_finite else -60.0
    hi = min(float(interval.sup), 60.0) if interval.sup.is_finite else 60.0
    grid = np.concatenate([np.linspace(lo, hi, n), np.linspace(max(lo, -3), min(hi, 3), n)])
    fn = sp.lambdify(U, f, ["scipy", "numpy"])
    with np.errstate(all="ignore"):
        vals = np.broadcast_to(np.asarray(fn(grid), dtype=complex), grid.shape)
    bad = np.isfinite(vals) & (np.abs(vals.imag) < 1e-12) & (want * vals.real <= 0)
    for x in grid[bad][:20]:
        point = sp.Float(float(x), DIGITS)
        sign = sign_at(f, point)
        if sign is not None and want * sign <= 0:
            v = numeric(f, point)
            return float(x), v if v is not None else 0.0
    return None


def check_sign(f: sp.Expr, interval: sp.Interval, want: int, seconds: float) -> SignResult:
    """Decide whether ``want * f(u) > 0`` for every ``u`` in ``interval``.

    Parameters
    ----------
    f : sympy expression in :data:`U`
    interval : sympy Interval
    want : {+1, -1}
        The strict sign required.
    seconds : float
        Time limit for each symbolic step.
    """
    quick = f.is_positive if want > 0 else f.is_negative
    if quick:
        return SignResult(True, None, None, "sympy's assumptions decide the sign")
    zeros, how = real_zeros(f, interval, seconds)
    if zeros is None:
        found = _scan(f, interval, want)
        if found:
            return SignResult(False, found[0], found[1], f"numerical scan ({how})")
        return SignResult(None, None, None, f"no violation on a dense grid, but {how}")
    cont, _, why = continuity(f, interval, seconds)
    witnesses = []
    for x in _test_points(zeros.boundaries(), interval):
        v = numeric(f, sp.Float(x, DIGITS))
        if v is not None and want * v <= 0:
            witnesses.append((x, v))
    if witnesses:
        return SignResult(False, witnesses[0][0], witnesses[0][1], "sign between exact zeros")
    if not zeros.empty:
        x = zeros.boundaries()[0]
        return SignResult(False, x, numeric(f, sp.Float(x, DIGITS)) or 0.0, f"exact zero ({how})")
    if cont:
        return SignResult(True, None, None, "no real zero, continuous, sign checked at a point")
    found = _scan(f, interval, want)
    if found:
        return SignResult(False, found[0], found[1], f"numerical scan ({why})")
    return SignResult(None, None, None, f"no zero found but continuity unknown ({why})")


# ----------------------------------------------------------------------------- limits
def one_sided_limit(
    f: sp.Expr, point: sp.Expr, side: str, seconds: float
) -> tuple[sp.Expr | None, str | None]:
    """``lim f(u)`` as ``u -> point`` from ``side`` ('+' or '-'), guarded."""
    return guarded(lambda: sp.limit(f, U, point, side), seconds)


def limit_at_infinity(f: sp.Expr, sign: int, seconds: float) -> tuple[sp.Expr | None, str | None]:
    """``lim f(u)`` as ``u -> sign * oo``, guarded; ``AccumBounds`` are returned as they are."""
    return guarded(lambda: sp.limit(f, U, sp.oo if sign > 0 else -sp.oo), seconds)
