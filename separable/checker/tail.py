"""The tight exponential tail of -l' (JMLR Definition 2), its constants found by limits.

Write ``f = -l'`` on the last piece of the loss (the one reaching ``u -> +oo``). If
``f(u) = c e^{-a u} (1 + r(u))`` with ``r -> 0`` exponentially, then

* ``a = lim -f'/f``                      (the exponential rate),
* ``c = lim f e^{a u}``                  (the prefactor),
* ``mu = lim -r'/r``                     (the rate of the next term), and
  ``C = lim r e^{mu u}``                 (its constant, whose sign says which side it is on).

The upper bound ``f <= c (1 + e^{-mu+ u}) e^{-a u}`` constrains ``mu+`` only where ``r > 0``,
the lower bound ``f >= c (1 - e^{-mu- u}) e^{-a u}`` constrains ``mu-`` only where ``r < 0``;
the constrained one is ``mu`` (attained when ``|C| <= 1``; every smaller positive value works
otherwise) and the other may be any positive number. For the logistic loss
``r = -1/(1 + e^u)``, so ``mu- = 1`` and ``mu+`` is free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp

from separable.checker.symbolic import (
    DIGITS,
    U,
    clean_limit,
    guarded,
    limit_at_infinity,
    numeric,
    short,
    sign_at,
)
from separable.checker.verdicts import Counterexample, Verdict

__all__ = ["TailConstants", "tail_constants"]


@dataclass(frozen=True)
class TailConstants:
    """Outcome of the tail analysis.

    Attributes
    ----------
    verdict : Verdict
    evidence : str
    a, c : sympy expression or None
        Rate and prefactor of ``-l' ~ c e^{-a u}``.
    mu_plus, mu_minus : sympy expression or None
        Largest admissible values (``sympy.oo`` when any positive value works).
    attained : bool or None
        Whether the constrained ``mu`` itself is admissible (else any smaller one is).
    remainder : sympy expression or None
        ``r(u) = f e^{a u} / c - 1``.
    poly_rate : sympy expression or None
        For a failing, polynomially decaying tail: ``k`` with ``-l' ~ u^{-k}``.
    counterexample : Counterexample or None
    """

    verdict: Verdict
    evidence: str
    a: sp.Expr | None = None
    c: sp.Expr | None = None
    mu_plus: sp.Expr | None = None
    mu_minus: sp.Expr | None = None
    attained: bool | None = None
    remainder: sp.Expr | None = None
    poly_rate: sp.Expr | None = None
    counterexample: Counterexample | None = None

    def values(self) -> dict:
        """The constants as strings and floats, for a report."""
        out = {}
        for key in ("a", "c", "mu_plus", "mu_minus", "poly_rate"):
            v = getattr(self, key)
            if v is not None:
                out[key] = "any" if v == sp.oo else str(v)
                x = numeric(v) if v != sp.oo else None
                if x is not None:
                    out[key + "_value"] = x
        if self.attained is not None:
            out["mu_attained"] = self.attained
        return out


def _fmt(e: sp.Expr) -> str:
    return "any" if e == sp.oo else short(e)


def _positive_finite(e: sp.Expr | None) -> bool:
    return e is not None and e.is_finite is True and e.is_positive is True


def _lim(expr: sp.Expr, seconds: float) -> tuple[sp.Expr | None, str | None]:
    simplified, _ = guarded(lambda: sp.simplify(expr), seconds)
    return limit_at_infinity(simplified if simplified is not None else expr, +1, seconds)


def _ratio_at(f: sp.Expr, a: float, u0: float) -> float | None:
    return numeric(f * sp.exp(sp.Float(a, DIGITS) * U), sp.Float(u0, DIGITS))


def _not_positive(f: sp.Expr) -> TailConstants | None:
    """Fails when ``-l'`` is not positive far out (no tail at all)."""
    if f != 0 and sign_at(f, sp.Float(40, DIGITS)) == 1:
        return None
    far = numeric(f, sp.Float(40, DIGITS))
    cx = Counterexample(
        40.0,
        "-l'(u)",
        far if far is not None else math.nan,
        "-l'(u) >= c(1 - e^{-mu u}) e^{-a u} > 0 for large u",
    )
    return TailConstants(
        Verdict.FAILS, f"-l' = {sp.sstr(f)} is not positive for large u; {cx}", counterexample=cx
    )


def _rate(f: sp.Expr, seconds: float) -> tuple[sp.Expr | None, TailConstants | None]:
    """``a = lim -f'/f``, or the outcome when it is not a positive finite number."""
    a, err = _lim(-sp.diff(f, U) / f, seconds)
    if not clean_limit(a):
        return None, TailConstants(
            Verdict.UNDETERMINED, f"rate a = lim -f'/f not found: {err or a}"
        )
    if a == sp.oo:
        val = _ratio_at(f, 1.0, 10.0)
        cx = Counterexample(
            10.0, "-l'(u) e^{u}", val or 0.0, "-l'(u) >= c(1 - e^{-mu u}) e^{-u} (a = c = 1)"
        )
        return None, TailConstants(
            Verdict.FAILS,
            f"-l' decays faster than any exponential (lim -f'/f = oo); {cx}",
            a=a,
            counterexample=cx,
        )
    if not _positive_finite(a):
        return None, _slower_than_exponential(f, a, seconds)
    return a, None


def _slower_than_exponential(f: sp.Expr, a: sp.Expr, seconds: float) -> TailConstants:
    """Fails with ``a = 0``: says whether the tail is polynomial, ``-l' ~ C u^-k``."""
    k, _ = _lim(-U * sp.diff(f, U) / f, seconds)
    poly = ""
    if k is not None and k.is_finite and k.is_positive:
        const, _ = _lim(f * U**k, seconds)
        lead = _fmt(const) if const is not None else "C"
        poly = f"; -l' ~ {lead} u^(-{_fmt(k)}) (polynomial tail)"
    val = _ratio_at(f, 1.0, 40.0)
    cx = Counterexample(
        40.0,
        "-l'(u) e^{u}",
        val if val is not None else math.inf,
        "-l'(u) <= c(1 + e^{-mu u}) e^{-u} (a = c = 1, so at most 2)",
    )
    return TailConstants(
        Verdict.FAILS,
        f"-l' is not exponentially small: a = lim -f'/f = {_fmt(a)}{poly}; {cx}",
        a=a,
        poly_rate=k if poly else None,
        counterexample=cx,
    )


def _prefactor(
    f: sp.Expr, a: sp.Expr, seconds: float
) -> tuple[sp.Expr | None, TailConstants | None]:
    """``c = lim -l' e^{a u}``, or the outcome when it is not a positive finite number."""
    c, err = _lim(f * sp.exp(a * U), seconds)
    if not clean_limit(c):
        return None, TailConstants(
            Verdict.UNDETERMINED,
            f"a = {_fmt(a)}, but c = lim -l' e^(a u) not found: {err or c}",
            a=a,
        )
    if _positive_finite(c):
        return c, None
    val = _ratio_at(f, float(a), 40.0)
    cx = Counterexample(
        40.0,
        f"-l'(u) e^({_fmt(a)} u)",
        val if val is not None else math.inf,
        "c(1 - e^{-mu u}) <= -l'(u) e^{a u} <= c(1 + e^{-mu u}) with 0 < c < oo",
    )
    return None, TailConstants(
        Verdict.FAILS,
        f"a = {_fmt(a)} but c = lim -l' e^(a u) = {_fmt(c)} (not a tight tail); {cx}",
        a=a,
        c=c,
        counterexample=cx,
    )


def _remainder(f: sp.Expr, a: sp.Expr, c: sp.Expr, seconds: float) -> TailConstants:
    """``mu±`` from the remainder ``r = -l' e^{a u}/c - 1 ~ C e^{-mu u}`` (module docstring)."""
    r, _ = guarded(lambda: sp.simplify(f * sp.exp(a * U) / c - 1), seconds)
    if r is None:
        r = f * sp.exp(a * U) / c - 1
    head = f"-l' = c e^(-a u)(1 + r), a = {_fmt(a)}, c = {_fmt(c)}"
    known = {"a": a, "c": c, "remainder": r}
    if r == 0:
        return TailConstants(
            Verdict.HOLDS, f"{head}, r = 0: mu+ and mu- any", mu_plus=sp.oo, mu_minus=sp.oo, **known
        )
    mu, err = _lim(-sp.diff(r, U) / r, seconds)
    if not clean_limit(mu):
        return TailConstants(
            Verdict.UNDETERMINED, f"{head}, r = {r}: its rate not found ({err or mu})", **known
        )
    if mu == sp.oo:
        return TailConstants(
            Verdict.HOLDS,
            f"{head}, r = {r} decays faster than any exponential: mu+- any",
            mu_plus=sp.oo,
            mu_minus=sp.oo,
            **known,
        )
    if not _positive_finite(mu):
        val = numeric(r, sp.Float(20.0, DIGITS))
        cx = Counterexample(
            20.0,
            "r(u)",
            val if val is not None else math.inf,
            f"|r(u)| <= e^(-mu u) for some mu > 0 (e^(-20) = {math.exp(-20.0):.3g} at mu = 1)",
        )
        return TailConstants(
            Verdict.FAILS,
            f"{head}, but r = {r} is not exponentially small (lim -r'/r = {_fmt(mu)}); {cx}",
            counterexample=cx,
            **known,
        )
    return _sided(r, mu, head, known, seconds)


def _sided(r: sp.Expr, mu: sp.Expr, head: str, known: dict, seconds: float) -> TailConstants:
    """Which of ``mu+``/``mu-`` the remainder's sign constrains, and whether ``mu`` is attained."""
    C, err = _lim(r * sp.exp(mu * U), seconds)
    if not clean_limit(C) or C == 0 or not C.is_finite:
        return TailConstants(
            Verdict.UNDETERMINED,
            f"{head}, r = {r}, mu = {_fmt(mu)}, C = lim r e^(mu u) unclear ({err or C})",
            **known,
        )
    attained = bool(abs(C) < 1)
    if abs(C) == 1:  # equality in the leading term: compare at a large u
        v = numeric(sp.Abs(r) * sp.exp(mu * U) - 1, sp.Float(30, DIGITS))
        attained = v is not None and v <= 0
    if C < 0:
        mu_plus, mu_minus, side = sp.oo, mu, "mu-"
    else:
        mu_plus, mu_minus, side = mu, sp.oo, "mu+"
    note = "" if attained else f" (|C| > 1: every {side} < {_fmt(mu)} works)"
    evidence = (
        f"{head}, r = {r} ~ {_fmt(C)} e^(-{_fmt(mu)} u): {side} = {_fmt(mu)}{note}, "
        f"{'mu+' if side == 'mu-' else 'mu-'} any"
    )
    return TailConstants(
        Verdict.HOLDS,
        evidence,
        mu_plus=mu_plus,
        mu_minus=mu_minus,
        attained=attained,
        **known,
    )


def tail_constants(f: sp.Expr, seconds: float) -> TailConstants:
    """Decide whether ``f = -l'`` has a tight exponential tail and find its constants.

    The steps, each of which may end the analysis with a failure (and a counterexample) or an
    undetermined verdict: ``-l' > 0`` far out; the rate ``a = lim -f'/f`` (``oo``: faster than
    any exponential; ``0``: polynomial or slower); the prefactor ``c = lim f e^{a u}``; the
    remainder's rate ``mu = lim -r'/r`` and the sign of ``C = lim r e^{mu u}``, which says
    whether ``mu`` constrains ``mu+`` or ``mu-`` (module docstring).

    Parameters
    ----------
    f : sympy expression in :data:`~separable.checker.symbolic.U`
        ``-l'`` on the piece that reaches ``+oo``.
    seconds : float
        Time limit of each symbolic step.
    """
    failed = _not_positive(f)
    if failed is not None:
        return failed
    a, failed = _rate(f, seconds)
    if failed is not None:
        return failed
    c, failed = _prefactor(f, a, seconds)
    if failed is not None:
        return failed
    return _remainder(f, a, c, seconds)
