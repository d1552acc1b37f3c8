"""The loss assumptions A2 and A3 of JMLR 2018, checked symbolically with sympy.

Each check returns a :class:`~separable.checker.verdicts.CheckItem` with a verdict (holds,
fails, undetermined), the evidence (the limit, the bound, the expression) and, when it fails,
a counterexample point evaluated numerically at 50 digits:

=================  ============================================================
``positive``        l(u) > 0 for every real u
``differentiable``  l is differentiable on the real line (pieces glue in l and l')
``decreasing``      l'(u) < 0 for every real u
``vanishes``        l(u) -> 0 and l'(u) -> 0 as u -> +oo
``slope at -oo``    lim_{u -> -oo} l'(u) != 0
``smooth``          l' is beta-Lipschitz; the smallest beta = sup |l''| found exactly
                    where sympy can (logistic: 1/4). With no global beta but a finite
                    K = sup l''/l (the exp-loss), the step footnote applies instead.
``exp tail``        -l' has a tight exponential tail; constants (c, a, mu+, mu-)
=================  ============================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from separable.checker.symbolic import (
    DIGITS,
    U,
    check_sign,
    clean_limit,
    continuity,
    guarded,
    limit_at_infinity,
    numeric,
    one_sided_limit,
    pieces,
    real_zeros,
    short,
)
from separable.checker.tail import TailConstants, tail_constants
from separable.checker.verdicts import CheckItem, Counterexample, Verdict

__all__ = ["LossAssumptions", "check_loss", "check_decreasing", "Supremum", "supremum_abs"]

NAMES = (
    "A2 positive",
    "A2 differentiable",
    "A2 decreasing",
    "A2 vanishes at +oo",
    "A2 slope at -oo",
    "A2 beta-smooth",
    "A3 exp tail",
)


@dataclass(frozen=True)
class LossAssumptions:
    """The verdicts on one loss.

    Attributes
    ----------
    expr : sympy expression
        The loss in the real symbol ``u``.
    items : tuple of CheckItem
        One per assumption, in the order of the table in the module docstring.
    beta : sympy expression or None
        ``sup |l''|`` (exact where ``beta_exact``), ``None`` without a global bound.
    beta_exact : bool
    footnote_K : sympy expression or None
        ``sup l''/l`` when there is no global beta but this is finite (the exp-loss footnote:
        the step bound becomes ``eta < 1 / (K L(w0) max_n ||x_n||^2)``).
    tail : TailConstants
    """

    expr: sp.Expr
    items: tuple[CheckItem, ...]
    beta: sp.Expr | None
    beta_exact: bool
    footnote_K: sp.Expr | None
    tail: TailConstants

    def item(self, name: str) -> CheckItem:
        """The item ``name``: ``'A2 positive'`` or untagged (``'positive'``, ``'exp tail'``)."""
        for it in self.items:
            if it.name == name or it.name.split(" ", 1)[1].startswith(name):
                return it
        raise KeyError(f"no assumption named {name!r}; names are {[i.name for i in self.items]}")

    @property
    def holds(self) -> bool:
        """Whether every assumption (A2 and A3) holds."""
        return all(it.verdict is Verdict.HOLDS for it in self.items)

    @property
    def beta_value(self) -> float | None:
        return None if self.beta is None else numeric(self.beta)


# ----------------------------------------------------------------------------- helpers
def _dq(expr: sp.Expr, x: float, h: float = 1e-15) -> tuple[float, float]:
    """One-sided difference quotients of ``expr`` at ``x`` (at 50 digits)."""
    p = sp.Float(x, DIGITS)
    hh = sp.Float(h, DIGITS)
    f0 = numeric(expr, p)
    fl, fr = numeric(expr, p - hh), numeric(expr, p + hh)
    if f0 is None or fl is None or fr is None:
        return math.nan, math.nan
    left = float((sp.Float(f0, DIGITS) - sp.Float(fl, DIGITS)) / hh)
    right = float((sp.Float(fr, DIGITS) - sp.Float(f0, DIGITS)) / hh)
    return left, right


def _aggregate(
    name: str, results: list[tuple[str, bool | None, Counterexample | None, str]], ok_text: str
) -> CheckItem:
    """Combine per-piece outcomes: any failure fails, else any unknown is undetermined."""
    for where, ok, cx, how in results:
        if ok is False:
            return CheckItem(
                name,
                Verdict.FAILS,
                f"{where}: {how}; {cx}" if cx else f"{where}: {how}",
                counterexample=cx,
            )
    unknown = [f"{where}: {how}" for where, ok, _, how in results if ok is None]
    if unknown:
        return CheckItem(name, Verdict.UNDETERMINED, "; ".join(unknown))
    return CheckItem(
        name, Verdict.HOLDS, ok_text + " (" + "; ".join(how for *_, how in results) + ")"
    )


def _piece_label(expr: sp.Expr, iv: sp.Interval, n_pieces: int) -> str:
    return f"l = {sp.sstr(expr)}" if n_pieces == 1 else f"on {iv}: l = {sp.sstr(expr)}"


def _sign_check(
    name: str, parts, deriv: int, want: int, relation: str, ok_text: str, seconds: float
) -> CheckItem:
    results = []
    for expr, iv in parts:
        g = sp.diff(expr, U, deriv) if deriv else expr
        res = check_sign(g, iv, want, seconds)
        cx = None
        qty = "l'(u)" if deriv else "l(u)"
        if res.holds is False:
            cx = Counterexample(res.witness, qty, res.witness_value, f"{qty} {relation}")
        results.append((_piece_label(expr, iv, len(parts)), res.holds, cx, res.method))
    return _aggregate(name, results, ok_text)


# ----------------------------------------------------------------------------- checks
def _differentiable(expr: sp.Expr, parts, seconds: float) -> CheckItem:
    name = "A2 differentiable"
    for piece, iv in parts:
        for k, label in ((0, "l"), (1, "l'")):
            g = sp.diff(piece, U, k)
            cont, missing, why = continuity(g, iv.interior, seconds)
            if cont is False:
                pt = missing.inf if missing is not None and missing != sp.S.EmptySet else None
                x = numeric(pt) if pt is not None else None
                cx = None
                if x is not None:
                    cx = Counterexample(
                        x,
                        "one-sided difference quotients of l",
                        _dq(expr, x),
                        f"{label} defined and finite at u",
                    )
                return CheckItem(
                    name, Verdict.FAILS, f"{label} = {sp.sstr(g)} is {why}", counterexample=cx
                )
            if cont is None:
                return CheckItem(
                    name, Verdict.UNDETERMINED, f"continuity of {label} = {sp.sstr(g)}: {why}"
                )
    for (left, ivl), (right, _) in zip(parts[:-1], parts[1:], strict=True):
        b = ivl.sup
        for k, label in ((0, "l"), (1, "l'")):
            lv, e1 = one_sided_limit(sp.diff(left, U, k), b, "-", seconds)
            rv, e2 = one_sided_limit(sp.diff(right, U, k), b, "+", seconds)
            if lv is None or rv is None:
                return CheckItem(
                    name, Verdict.UNDETERMINED, f"one-sided limits of {label} at u={b}: {e1 or e2}"
                )
            diff = numeric(lv - rv)
            if diff is None or abs(diff) > 1e-30:
                x = float(numeric(b))
                cx = Counterexample(
                    x,
                    "one-sided derivatives (l'(u-), l'(u+))",
                    _dq(expr, x),
                    "l'(u-) = l'(u+)" if k else "l(u-) = l(u+)",
                )
                kind = "a kink" if k else "a jump"
                return CheckItem(
                    name,
                    Verdict.FAILS,
                    f"{kind} at u = {b}: {label}(u-) = {lv}, {label}(u+) = {rv}; {cx}",
                    counterexample=cx,
                )
    where = "" if len(parts) == 1 else f"; {len(parts)} pieces glue in l and l'"
    return CheckItem(name, Verdict.HOLDS, f"l and l' continuous on every piece{where}")


def _vanishes(parts, seconds: float) -> CheckItem:
    name = "A2 vanishes at +oo"
    last = parts[-1][0]
    lims = []
    for k, label in ((0, "l"), (1, "l'")):
        g = sp.diff(last, U, k)
        val, err = limit_at_infinity(g, +1, seconds)
        if val is None:
            return CheckItem(name, Verdict.UNDETERMINED, f"lim {label} at +oo: {err}")
        lims.append(f"lim {label} = {val}")
        if val != 0:
            u0 = 100.0
            v = numeric(g, sp.Float(u0, DIGITS))
            cx = Counterexample(
                u0, f"{label}(u)", v if v is not None else math.inf, f"{label}(u) -> 0 as u -> +oo"
            )
            return CheckItem(
                name, Verdict.FAILS, f"lim_(u->+oo) {label} = {val}, not 0; {cx}", counterexample=cx
            )
    return CheckItem(name, Verdict.HOLDS, ", ".join(lims) + " as u -> +oo")


def _slope_at_minus_inf(parts, seconds: float) -> CheckItem:
    name = "A2 slope at -oo"
    g = sp.diff(parts[0][0], U)
    val, err = limit_at_infinity(g, -1, seconds)
    if val is None:
        return CheckItem(name, Verdict.UNDETERMINED, f"lim l' at -oo: {err}")
    if isinstance(val, sp.AccumBounds) and (val.min > 0 or val.max < 0):
        return CheckItem(name, Verdict.HOLDS, f"l' oscillates in {val} as u -> -oo, away from 0")
    if not clean_limit(val):
        probes = {x: numeric(g, sp.Float(x, DIGITS)) for x in (-20.0, -40.0, -60.0)}
        return CheckItem(
            name,
            Verdict.UNDETERMINED,
            f"lim_(u->-oo) l' has no definite value ({val}); l' at u = -20, -40, -60: "
            + ", ".join(f"{v:.3g}" if v is not None else "undefined" for v in probes.values()),
        )
    if val == 0:
        u0 = -100.0
        v = numeric(g, sp.Float(u0, DIGITS))
        cx = Counterexample(u0, "l'(u)", v if v is not None else 0.0, "lim_(u->-oo) l'(u) != 0")
        return CheckItem(name, Verdict.FAILS, f"lim_(u->-oo) l' = 0; {cx}", counterexample=cx)
    return CheckItem(name, Verdict.HOLDS, f"lim_(u->-oo) l' = {val} != 0")


@dataclass(frozen=True)
class Supremum:
    """``sup |g|`` over the real line.

    Attributes
    ----------
    value : sympy expression or None
        Exact supremum (``sympy.oo`` if unbounded), ``None`` when only estimated.
    estimate : float
        Its numerical value (``inf`` if unbounded).
    bounded : bool or None
        Proved bounded, proved unbounded, or unknown.
    where : str
        Where it is reached (a point or a limit).
    """

    value: sp.Expr | None
    estimate: float
    bounded: bool | None
    where: str


def supremum_abs(parts: list[tuple[sp.Expr, sp.Interval]], seconds: float) -> Supremum:
    """``sup |g|`` of a piecewise function from its critical points and end limits.

    The candidates are ``g`` at the real zeros of ``g'`` and the limits of ``g`` at the ends
    of each piece; when every candidate is exact so is the supremum. When sympy cannot find
    the critical points, finite end limits and continuity still prove boundedness, and the
    supremum is estimated on a dense grid.
    """
    cands: list[tuple[sp.Expr | None, float, str]] = []
    exact = proved = True
    for g, iv in parts:
        dg, _ = guarded(lambda g=g: sp.simplify(sp.diff(g, U)), seconds)
        zeros, _ = real_zeros(dg if dg is not None else sp.diff(g, U), iv, seconds)
        if zeros is None:
            exact = False
            lo = max(float(iv.inf), -60.0) if iv.inf.is_finite else -60.0
            hi = min(float(iv.sup), 60.0) if iv.sup.is_finite else 60.0
            grid = np.linspace(lo, hi, 24001)
            with np.errstate(all="ignore"):
                vals = np.abs(
                    np.broadcast_to(
                        np.asarray(sp.lambdify(U, g, ["scipy", "numpy"])(grid), float), grid.shape
                    )
                )
            if np.any(np.isfinite(vals)):
                i = int(np.nanargmax(np.where(np.isfinite(vals), vals, -1)))
                cands.append((None, float(vals[i]), f"u ~ {grid[i]:.4g} (grid)"))
        else:
            for p in zeros.points:
                v, _ = guarded(lambda p=p, g=g: sp.simplify(g.subs(U, p)), seconds)
                x = numeric(v) if v is not None else None
                if x is not None:
                    cands.append((v, abs(x), f"u = {sp.sstr(p)}"))
            for z in zeros.intervals:
                p = z.inf if z.inf.is_finite else (z.sup if z.sup.is_finite else sp.Integer(0))
                v = sp.simplify(g.subs(U, p))
                x = numeric(v)
                if x is not None:
                    cands.append((v, abs(x), f"u in {z}"))
        for end, side in ((iv.inf, "+"), (iv.sup, "-")):
            if end.is_finite:
                lim, _ = one_sided_limit(g, end, side, seconds)
            else:
                lim, _ = limit_at_infinity(g, 1 if end == sp.oo else -1, seconds)
            if not clean_limit(lim):
                exact = proved = False
                if end.is_finite:
                    probes = [float(end) + (h if side == "+" else -h) for h in (1e-3, 1e-6, 1e-9)]
                else:
                    probes = [(1.0 if end == sp.oo else -1.0) * r for r in (20.0, 40.0, 60.0)]
                vals = [numeric(g, sp.Float(x, DIGITS)) for x in probes]
                if any(v is None for v in vals):
                    return Supremum(None, math.inf, None, f"g undefined near u -> {end}")
                mags = [abs(v) for v in vals]
                if mags[0] > 0 and mags[1] > 100 * mags[0] and mags[2] > 100 * mags[1]:
                    return Supremum(
                        None,
                        math.inf,
                        False,
                        f"u -> {end} (no limit; |g| = {mags[0]:.3g}, {mags[1]:.3g}, {mags[2]:.3g} "
                        f"at u = {probes[0]:g}, {probes[1]:g}, {probes[2]:g})",
                    )
                cands.append((None, max(mags), f"near u = {end}"))
                continue
            if lim.is_infinite or lim in (sp.oo, -sp.oo, sp.zoo):
                return Supremum(sp.oo, math.inf, False, f"u -> {end}")
            x = numeric(lim)
            if x is not None:
                cands.append((sp.Abs(lim), abs(x), f"u -> {end}"))
    if not cands:
        return Supremum(None, math.nan, None, "no candidate")
    best = max(cands, key=lambda c: c[1])
    value = sp.nsimplify(sp.simplify(sp.Abs(best[0]))) if exact and best[0] is not None else None
    if (
        value is not None
        and numeric(value) is not None
        and abs(numeric(value) - best[1]) > 1e-12 * max(1, best[1])
    ):
        value = sp.simplify(sp.Abs(best[0]))
    return Supremum(value, best[1], True if proved else None, best[2])


def _smooth(
    expr: sp.Expr, parts, differentiable: CheckItem, seconds: float
) -> tuple[CheckItem, Supremum | None, Supremum | None]:
    name = "A2 beta-smooth"
    if differentiable.verdict is Verdict.FAILS:
        return (
            CheckItem(
                name,
                Verdict.FAILS,
                f"l' is not continuous, so not Lipschitz ({differentiable.evidence})",
                counterexample=differentiable.counterexample,
            ),
            None,
            None,
        )
    sup = supremum_abs([(sp.diff(p, U, 2), iv) for p, iv in parts], seconds)
    if sup.bounded:
        how = (
            f"beta = sup|l''| = {short(sup.value)} exactly"
            if sup.value is not None
            else f"l'' continuous with finite limits, so bounded; beta = sup|l''| ~ "
            f"{sup.estimate:.6g} (numerical)"
        )
        return (
            CheckItem(
                name,
                Verdict.HOLDS,
                f"{how}, at {sup.where}",
                values={
                    "beta": sp.sstr(sup.value) if sup.value is not None else None,
                    "beta_value": sup.estimate,
                    "beta_exact": sup.value is not None,
                },
            ),
            sup,
            None,
        )
    if sup.bounded is None:
        return (
            CheckItem(name, Verdict.UNDETERMINED, f"sup|l''| not decided ({sup.where})"),
            sup,
            None,
        )
    ratio = [(sp.simplify(sp.diff(p, U, 2) / p), iv) for p, iv in parts]
    k_sup = supremum_abs(ratio, seconds)
    if k_sup.bounded:
        K = k_sup.value if k_sup.value is not None else sp.Float(k_sup.estimate, 6)
        return (
            CheckItem(
                name,
                Verdict.HOLDS,
                f"no global beta (|l''| -> oo as {sup.where}); footnote: l'' <= K l with "
                f"K = {short(K)}, so L is K L(w0) max||x||^2-smooth below L(w0) and "
                f"eta < 1/(K L(w0) max||x||^2) suffices "
                f"(eta < 1/L(w0) for unit-norm data)",
                values={"beta": None, "footnote_K": sp.sstr(K), "footnote_K_value": k_sup.estimate},
            ),
            sup,
            k_sup,
        )
    u0 = None
    direction = -1.0 if "-oo" in sup.where else 1.0
    g = sp.diff(expr, U, 2)
    for k in range(0, 12):
        x = direction * 2.0**k
        v = numeric(g, sp.Float(x, DIGITS))
        if v is not None and abs(v) > 1e6:
            u0, val = x, v
            break
    cx = Counterexample(u0, "l''(u)", val, "|l''(u)| <= beta") if u0 is not None else None
    ratio_note = "unbounded too" if k_sup.bounded is False else "not shown bounded"
    return (
        CheckItem(
            name,
            Verdict.FAILS,
            f"|l''| -> oo as {sup.where} and l''/l is {ratio_note} (no footnote)",
            counterexample=cx,
        ),
        sup,
        k_sup,
    )


def _validate(loss: sp.Expr, seconds: float) -> list[tuple[sp.Expr, sp.Interval]]:
    if not isinstance(loss, sp.Expr):
        raise TypeError(f"loss must be a sympy expression, got {type(loss).__name__}")
    if loss.free_symbols - {U}:
        raise ValueError(
            f"loss must be an expression in the real symbol u only, got symbols {loss.free_symbols}"
        )
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    parts, err = guarded(lambda: pieces(loss), seconds)
    if parts is None or not parts:
        raise ValueError(f"loss {loss} could not be split into smooth pieces: {err}")
    return parts


def check_decreasing(loss: sp.Expr, *, seconds: float = 10.0) -> CheckItem:
    """The A2 monotonicity check alone: ``l'(u) < 0`` for every real ``u``.

    Decided by the real zeros of ``l'`` (sympy), continuity and the sign between zeros;
    a failure carries a point where ``l' >= 0``.
    """
    parts = _validate(loss, seconds)
    return _sign_check("A2 decreasing", parts, 1, -1, "< 0", "l' < 0 everywhere", seconds)


def check_loss(loss: sp.Expr, *, seconds: float = 10.0) -> LossAssumptions:
    """Check the loss assumptions A2 and A3 of JMLR 2018 on a sympy expression in ``u``.

    Parameters
    ----------
    loss : sympy expression
        The loss as a function of the margin, in the real symbol
        :data:`~separable.checker.symbolic.U` (see
        :func:`~separable.checker.loss_input.loss_expression` for names, strings, Loss objects).
    seconds : float
        Time limit of each symbolic step; a step past it falls back to numerical evidence.

    Returns
    -------
    LossAssumptions
    """
    parts = _validate(loss, seconds)
    positive = _sign_check("A2 positive", parts, 0, +1, "> 0", "l > 0 everywhere", seconds)
    differentiable = _differentiable(loss, parts, seconds)
    decreasing = check_decreasing(loss, seconds=seconds)
    vanishes = _vanishes(parts, seconds)
    slope = _slope_at_minus_inf(parts, seconds)
    smooth, beta_sup, k_sup = _smooth(loss, parts, differentiable, seconds)
    tail = tail_constants(sp.simplify(-sp.diff(parts[-1][0], U)), seconds)
    tail_item = CheckItem(
        "A3 exp tail",
        tail.verdict,
        tail.evidence,
        values=tail.values(),
        counterexample=tail.counterexample,
    )
    beta = beta_sup.value if beta_sup is not None and beta_sup.bounded else None
    if beta is None and beta_sup is not None and beta_sup.bounded:
        beta = sp.Float(beta_sup.estimate, 15)
    K = None
    if k_sup is not None and k_sup.bounded:
        K = k_sup.value if k_sup.value is not None else sp.Float(k_sup.estimate, 15)
    return LossAssumptions(
        expr=loss,
        items=(positive, differentiable, decreasing, vanishes, slope, smooth, tail_item),
        beta=beta,
        beta_exact=bool(beta_sup is not None and beta_sup.value is not None and beta_sup.bounded),
        footnote_K=K,
        tail=tail,
    )
