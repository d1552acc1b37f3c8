"""Benchmark of the proofs checker's exact zero finder (the step behind every sign verdict).

Ours: the real zeros of ``l'`` for losses that are rational in ``z = e^-u`` (sums of
exponential-tail pieces), found by real-root isolation of a polynomial in ``z``. Baseline:
``sympy.solveset`` on the same derivatives over the reals -- the obvious way to write it.
sympy's cache is cleared before each call of either side, so neither reuses the other's work.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.cache import clear_cache

from benchmarks import Benchmark
from separable.checker.symbolic import U, real_zeros


def _setup():
    e = sp.exp
    half = sp.Rational(1, 2)
    losses = [
        3 * e(-U) - 2 * e(-2 * U),
        e(-U) - sp.Rational(3, 2) * sp.log(1 + e(-U)) + e(-3 * U),
        2 * U - 3 * e(-2 * U) + e(-U),
        half * e(-3 * U) - 3 * e(-2 * U) + 2 * e(-U),
        sp.log(1 + e(-U)) + half * e(-2 * U),
    ]
    return [sp.diff(loss, U) for loss in losses]


def _ours(derivs):
    clear_cache()
    for f in derivs:
        real_zeros(f, sp.Interval(-sp.oo, sp.oo), 60.0)


def _baseline(derivs):
    clear_cache()
    for f in derivs:
        sp.solveset(f, U, sp.S.Reals)


BENCHMARKS = [
    Benchmark(
        name="separable.checker.zeros",
        goal="informational (>= 1x sympy.solveset)",
        setup=_setup,
        ours=_ours,
        baseline=_baseline,
        min_speedup=1.0,
        repeats=3,
    ),
]
