"""Turn what a user gives (a loss name, an expression string, a sympy expression, a Loss)
into a :class:`separable.losses.Loss` and its expression in the real symbol ``u``.

Strings that are not registry names are parsed by sympy after a character allow-list (so
no Python beyond arithmetic and function calls reaches the parser); ``^`` means power and
``max``, ``min``, ``abs``, ``ln`` are accepted for ``Max``, ``Min``, ``Abs``, ``log``.
"""

from __future__ import annotations

import re
import tokenize

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from separable.checker.symbolic import U
from separable.losses import LOSSES, Loss, get_loss

__all__ = ["parse_loss", "loss_expression"]

_ALLOWED = re.compile(r"^[A-Za-z0-9_+\-*/^().,\s]+$")
_ALIASES = {"max": sp.Max, "min": sp.Min, "abs": sp.Abs, "ln": sp.log, "e": sp.E}


def parse_loss(text: str) -> sp.Expr:
    """Parse a loss expression in ``u`` (e.g. ``"log(1+exp(-u))"``) into sympy.

    Raises
    ------
    ValueError
        If the text is empty, holds characters outside arithmetic, does not parse, calls an
        unknown function, or has a variable other than ``u``.
    """
    if not isinstance(text, str):
        raise TypeError(f"loss must be a string, got {type(text).__name__}")
    if not text.strip() or not _ALLOWED.match(text) or "__" in text:
        raise ValueError(
            f"loss {text!r} is not an arithmetic expression in u "
            "(allowed: letters, digits, + - * / ^ ( ) . , and spaces)"
        )
    local = dict(_ALIASES)
    local["u"] = U
    try:
        expr = parse_expr(
            text, local_dict=local, transformations=standard_transformations + (convert_xor,)
        )
    except (
        SyntaxError,
        TypeError,
        ValueError,
        AttributeError,
        NameError,
        tokenize.TokenError,
    ) as exc:
        raise ValueError(
            f"loss {text!r} could not be parsed: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(expr, sp.Expr):
        raise ValueError(f"loss {text!r} is not an expression (parsed to {type(expr).__name__})")
    unknown = sorted({str(f.func) for f in expr.atoms(AppliedUndef)})
    if unknown:
        raise ValueError(f"loss {text!r} calls unknown function(s) {unknown}")
    others = sorted(str(s) for s in expr.free_symbols if s != U)
    if others:
        raise ValueError(f"loss {text!r} must be a function of u only; it has variable(s) {others}")
    if U not in expr.free_symbols:
        raise ValueError(f"loss {text!r} does not depend on u")
    return expr


def loss_expression(loss: str | sp.Expr | Loss) -> tuple[Loss, sp.Expr]:
    """The :class:`~separable.losses.Loss` and its expression in the real symbol ``u``.

    Parameters
    ----------
    loss : str, sympy expression or Loss
        A registry name (``"logistic"``, ``"exp"``, ``"poly"``, ...), an expression string
        in ``u``, a sympy expression in ``u`` or a Loss.
    """
    if isinstance(loss, str):
        key = loss.strip()
        if key in LOSSES:
            obj = LOSSES[key]
        else:
            parsed = parse_loss(key)
            # a built-in written out gets the built-in's stable, compiled forms
            same = [v for v in LOSSES.values() if v.expr == parsed]
            obj = same[0] if same else get_loss(parsed, name=key)
    elif isinstance(loss, (sp.Expr, Loss)):
        obj = get_loss(loss)
    else:
        raise TypeError(
            f"loss must be a name, an expression string, a sympy expression or a Loss, "
            f"got {type(loss).__name__}"
        )
    expr = obj.expr
    free = expr.free_symbols
    if free and U not in free:
        expr = expr.subs({s: U for s in free if s.name == "u"})
    return obj, expr
