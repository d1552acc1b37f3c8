"""Benchmark of the shared ruler: the growth-law selection on a long trace.

The closed-form (profiled) fits of ``fit_growth`` against fitting each law from a generic
starting point with ``scipy.optimize.curve_fit`` -- the obvious way to write it.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import curve_fit

from benchmarks import Benchmark
from diffusion.metrics import LAWS, fit_growth, log_schedule


def _setup():
    rng = np.random.default_rng(0)
    t = log_schedule(1e8, 40).astype(float)
    d = 1.0 + 0.5 * np.log(t) ** 2 + rng.normal(0, 0.2, t.size)
    return t, d


def _ours(state):
    t, d = state
    fit_growth((t.astype(np.int64), d))


def _baseline(state):
    t, d = state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for law in LAWS.values():
            try:
                curve_fit(law.func, t, d, p0=np.ones(len(law.params)), maxfev=20000)
            except RuntimeError:
                pass


BENCHMARKS = [
    Benchmark(
        name="metrics.fit_growth",
        goal="informational (>= 1x curve_fit from ones)",
        setup=_setup, ours=_ours, baseline=_baseline, min_speedup=1.0, repeats=5,
    ),
]
