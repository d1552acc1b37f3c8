"""The loss reader: whitelisted arithmetic in u becomes sympy; nothing else runs or parses."""

from __future__ import annotations

import builtins
import string

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import separable.checker.loss_input as li
from separable.checker.loss_input import LossInputError, parse_loss
from separable.checker.symbolic import U


class Ran(BaseException):
    """Raised by a trapped builtin: something tried to run code (never caught by the reader)."""


@pytest.fixture
def trapped(monkeypatch):
    """eval/exec and sympy's text parsers raise :class:`Ran`."""

    def trap(*args, **kwargs):
        raise Ran(args[:1])

    for name in ("eval", "exec"):
        monkeypatch.setattr(builtins, name, trap)
    monkeypatch.setattr(sp, "sympify", trap)
    monkeypatch.setattr(sp, "parse_expr", trap, raising=False)
    monkeypatch.setattr("sympy.parsing.sympy_parser.parse_expr", trap)
    yield


@pytest.mark.parametrize(
    "text, expected",
    [
        ("log(1+exp(-u))", sp.log(1 + sp.exp(-U))),
        ("2*log(1+exp(-u))", 2 * sp.log(1 + sp.exp(-U))),
        ("log(1+exp(-2*u))", sp.log(1 + sp.exp(-2 * U))),
        ("-log(erfc(-u/sqrt(2))/2)", -sp.log(sp.erfc(-U / sp.sqrt(2)) / 2)),
        ("(u-1)^2", (U - 1) ** 2),
        ("max(0, 1-u)**2", sp.Max(0, 1 - U) ** 2),
        ("e^(-u) + 0.5*exp(-pi*u)", sp.exp(-U) + sp.Rational(1, 2) * sp.exp(-sp.pi * U)),
    ],
)
def test_whitelisted_expressions_read_as_sympy(trapped, text, expected):
    """Catches: a reader that mis-builds a node (``^`` as xor, a float 0.5 kept inexact)."""
    assert sp.simplify(parse_loss(text) - expected) == 0


@pytest.mark.parametrize(
    "text, why",
    [
        ("open(chr(47)+chr(116)+chr(109)+chr(112),chr(119))", "the call of 'open'"),
        ("exec(chr(112)+chr(114))", "the call of 'exec'"),
        ("__import__('os').system('true')", "Attribute"),
        ("u.__class__", "Attribute"),
        ("exp(-v)", "the name 'v'"),
        ("exp(x=u)", "keyword arguments"),
        ("(lambda: 1)()", "the call of 'Lambda'"),
        ("[u][0]", "Subscript"),
        ("'u'", "not a number"),
        ("u if u else u", "IfExp"),
        ("u < 1", "Compare"),
        ("u ** 10 ** 9", "exponent 1000000000 exceeds 64"),
        ("u" + "+u" * 300, "longer than 500"),
        ("(" * 30 + "u" + ")" * 30 + "+" + "exp(" * 45 + "u" + ")" * 45, "nested deeper"),
        ("log(0)*u", "not a finite real expression"),
        ("3", "does not depend on u"),
        ("log(1+exp(-u)", "could not be parsed"),
    ],
)
def test_hostile_or_malformed_input_is_refused_by_name(tmp_path, monkeypatch, trapped, text, why):
    """Catches: parse_expr/sympify on raw text (the trap fires: ``Ran`` propagates), an
    allow-list that lets ``open``/``exec`` through, or a refusal that does not say why."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LossInputError, match="is not accepted") as info:
        parse_loss(text)
    assert why in str(info.value)
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet=string.printable, max_size=80))
def test_arbitrary_printable_text_never_runs_and_raises_only_the_input_error(text):
    """Any printable text either reads as an expression in u or raises LossInputError;
    a trapped eval, exec or sympify raising ``Ran`` would escape.

    Catches: a reader that evaluates text, or lets another exception type through
    (SyntaxError, TypeError from sympy, RecursionError).
    """
    saved = {n: getattr(builtins, n) for n in ("eval", "exec")}

    def trap(*args, **kwargs):
        raise Ran(args[:1])

    try:
        for n in saved:
            setattr(builtins, n, trap)
        li.sp.sympify, real_sympify = trap, li.sp.sympify
        try:
            expr = parse_loss(text)
        except LossInputError:
            return
        finally:
            li.sp.sympify = real_sympify
    finally:
        for n, f in saved.items():
            setattr(builtins, n, f)
    assert isinstance(expr, sp.Expr) and U in expr.free_symbols
