"""Turn what a user gives (a loss name, an expression string, a sympy expression, a Loss)
into a :class:`separable.losses.Loss` and its expression in the real symbol ``u``.

Strings that are not registry names are read by :func:`parse_loss`, a reader built on
Python's :mod:`ast`: the text is parsed (never evaluated) and the tree is walked against a
whitelist -- numbers, the symbol ``u``, the constants ``e`` and ``pi``, ``+ - * / **``
(``^`` is read as ``**``), unary ``+``/``-`` and calls of the functions in :data:`FUNCTIONS`
with positional arguments. The sympy expression is built from the tree node by node; no
text reaches ``eval``, ``sympify`` or ``parse_expr``, so no input can run code. Anything
else (other names, attributes, subscripts, strings, lambdas, comparisons, keyword
arguments, text longer than :data:`MAX_LENGTH` characters, nesting deeper than
:data:`MAX_DEPTH`, integer powers above :data:`MAX_EXPONENT`) raises :class:`LossInputError`
naming what is not allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from fractions import Fraction

import sympy as sp

from separable.checker.symbolic import U
from separable.losses import LOSSES, Loss, get_loss

__all__ = [
    "parse_loss",
    "loss_expression",
    "LossInputError",
    "FUNCTIONS",
    "MAX_LENGTH",
    "MAX_DEPTH",
    "MAX_EXPONENT",
]

MAX_LENGTH = 500
"""Longest accepted expression, in characters."""
MAX_DEPTH = 40
"""Deepest accepted nesting of the syntax tree."""
MAX_EXPONENT = 64
"""Largest accepted ``|p|`` of a numeric exponent ``x**p`` (``u**10**9`` is refused)."""
MAX_NUMBER = 1e6
"""Largest accepted magnitude of a numeric literal."""


FUNCTIONS: dict[str, tuple[Callable[..., sp.Expr], tuple[int, ...]]] = {
    "exp": (sp.exp, (1,)),
    "log": (sp.log, (1,)),
    "ln": (sp.log, (1,)),
    "log1p": (lambda x: sp.log(1 + x), (1,)),
    "expm1": (lambda x: sp.exp(x) - 1, (1,)),
    "sqrt": (sp.sqrt, (1,)),
    "erf": (sp.erf, (1,)),
    "erfc": (sp.erfc, (1,)),
    "tanh": (sp.tanh, (1,)),
    "sinh": (sp.sinh, (1,)),
    "cosh": (sp.cosh, (1,)),
    "atan": (sp.atan, (1,)),
    "arctan": (sp.atan, (1,)),
    "abs": (sp.Abs, (1,)),
    "Abs": (sp.Abs, (1,)),
    "max": (sp.Max, (2, 3, 4)),
    "Max": (sp.Max, (2, 3, 4)),
    "min": (sp.Min, (2, 3, 4)),
    "Min": (sp.Min, (2, 3, 4)),
}
"""Callable names: the sympy function and the accepted numbers of arguments."""

_CONSTANTS = {"u": U, "e": sp.E, "E": sp.E, "pi": sp.pi}
_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


class LossInputError(ValueError):
    """A loss expression that the reader does not accept (the message says why)."""


def _fail(text: str, why: str) -> LossInputError:
    return LossInputError(f"loss {text!r} is not accepted: {why}")


def _number(node: ast.Constant, text: str) -> sp.Expr:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(text, f"the literal {value!r} is not a number")
    if abs(value) > MAX_NUMBER:
        raise _fail(text, f"the number {value!r} exceeds {MAX_NUMBER:g} in magnitude")
    if isinstance(value, int):
        return sp.Integer(value)
    exact = Fraction(repr(value))  # the decimal as written: 0.1 -> 1/10
    return sp.Rational(exact.numerator, exact.denominator)


def _check_power(exponent: sp.Expr, text: str) -> None:
    if exponent.is_number and abs(float(exponent)) > MAX_EXPONENT:
        raise _fail(text, f"the exponent {exponent} exceeds {MAX_EXPONENT} in magnitude")


def _build(node: ast.AST, text: str, depth: int) -> sp.Expr:
    """The sympy expression of one whitelisted node (recursively)."""
    if depth > MAX_DEPTH:
        raise _fail(text, f"it is nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant):
        return _number(node, text)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise _fail(text, f"the name {node.id!r} (only u, e, pi and function calls)")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _build(node.operand, text, depth + 1)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _build(node.left, text, depth + 1)
        right = _build(node.right, text, depth + 1)
        if isinstance(node.op, ast.Pow):
            _check_power(right, text)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Call):
        return _call(node, text, depth)
    what = type(node).__name__
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        what = f"the operator {type(node.op).__name__}"
    raise _fail(text, f"{what} (only numbers, u, + - * / ** and calls of {sorted(FUNCTIONS)})")


def _call(node: ast.Call, text: str, depth: int) -> sp.Expr:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        shown = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
        raise _fail(text, f"the call of {shown!r} (allowed functions: {sorted(FUNCTIONS)})")
    if node.keywords:
        raise _fail(text, f"keyword arguments in the call of {node.func.id!r}")
    fn, arity = FUNCTIONS[node.func.id]
    if any(isinstance(a, ast.Starred) for a in node.args) or len(node.args) not in arity:
        raise _fail(
            text, f"{node.func.id} takes {' or '.join(map(str, arity))} positional argument(s)"
        )
    return fn(*(_build(a, text, depth + 1) for a in node.args))


def parse_loss(text: str) -> sp.Expr:
    """Read a loss expression in ``u`` (e.g. ``"log(1+exp(-u))"``) into sympy, safely.

    Parameters
    ----------
    text : str
        Arithmetic in ``u`` with the functions of :data:`FUNCTIONS`; ``^`` means power.

    Returns
    -------
    sympy.Expr
        The expression in the real symbol :data:`~separable.checker.symbolic.U`.

    Raises
    ------
    TypeError
        If ``text`` is not a string.
    LossInputError
        (a ``ValueError``) for anything outside the whitelist, text that does not parse,
        an expression without ``u``, or one that is not a finite real expression.
    """
    if not isinstance(text, str):
        raise TypeError(f"loss must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _fail(text[:40] + "...", f"it is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise _fail(text, "it is empty")
    source = text.strip().replace("^", "**")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise _fail(text, f"it could not be parsed ({type(exc).__name__})") from None
    try:
        expr = _build(tree.body, text, 0)
    except RecursionError:
        raise _fail(text, f"it is nested deeper than {MAX_DEPTH} levels") from None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError) as exc:
        if isinstance(exc, LossInputError):
            raise
        raise _fail(text, f"sympy rejected it ({type(exc).__name__}: {exc})") from None
    if not isinstance(expr, sp.Expr) or expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo, sp.I):
        raise _fail(text, f"it is not a finite real expression (reads as {expr})")
    if U not in expr.free_symbols:
        raise _fail(text, "it does not depend on u")
    return expr


def loss_expression(loss: str | sp.Expr | Loss) -> tuple[Loss, sp.Expr]:
    """The :class:`~separable.losses.Loss` and its expression in the real symbol ``u``.

    Parameters
    ----------
    loss : str, sympy expression or Loss
        A registry name (``"logistic"``, ``"exp"``, ``"poly"``, ...), an expression string
        in ``u`` (read by :func:`parse_loss`), a sympy expression in ``u`` or a Loss.
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
