"""Benchmarks of the coarse-grained (renormalised) Sinai walker at t = 1e30.

``diffusion.coarse_sinai_1e30``: 1,000 environments to ``t = 1e30`` (``Gamma = log t =
69.08``) -- an absolute goal, under 10 s.

``diffusion.coarse_vs_decimation``: the same question for 20 environments answered by the
literal renormalisation (a pure-Python heap that decimates the smallest barrier until all
are >= Gamma, :func:`diffusion.coarse.decimate`) on numpy-generated landscapes of the same
size, against the compiled zig-zag pass.
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks import Benchmark
from diffusion.coarse import coarse_walk, decimate, default_half_width

GAMMA = math.log(1e30)
N_ENVS = 1000
N_SMALL = 20


def _setup_big():
    coarse_walk(4, [5.0, GAMMA], seed=99)  # compile outside the timing
    return None


def _ours_big(_state):
    coarse_walk(N_ENVS, [GAMMA], seed=0)


def _setup_small():
    coarse_walk(4, [5.0, GAMMA], seed=99)
    half = default_half_width(GAMMA, 0.5, 1.0)
    return half


def _ours_small(half):
    coarse_walk(N_SMALL, [GAMMA], seed=0, half_width=half)


def _baseline_small(half):
    rng = np.random.default_rng(0)
    for _ in range(N_SMALL):
        v = np.concatenate([[0.0], np.cumsum(rng.standard_normal(2 * half))])
        v -= v[half]
        ext = decimate(v, GAMMA)
        j = int(np.searchsorted(ext, half, side="right")) - 1
        # bottom: the lower of the extremum at/left of the start and its right neighbour
        _ = ext[j] if v[ext[j]] < v[ext[min(j + 1, ext.size - 1)]] else ext[j + 1]


BENCHMARKS = [
    Benchmark(
        name="diffusion.coarse_sinai_1e30",
        goal="< 10 s for 1,000 environments to t = 1e30",
        setup=_setup_big,
        ours=_ours_big,
        baseline=None,
        work=N_ENVS,
        unit="env",
        max_seconds=10.0,
        repeats=3,
    ),
    Benchmark(
        name="diffusion.coarse_vs_decimation",
        goal="informational (>= 1x pure-Python decimation)",
        setup=_setup_small,
        ours=_ours_small,
        baseline=_baseline_small,
        work=N_SMALL,
        unit="env",
        min_speedup=1.0,
        repeats=3,
    ),
]
