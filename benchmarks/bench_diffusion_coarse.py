"""Benchmarks of the coarse-grained (renormalised) Sinai walker at t = 1e30.

``diffusion.coarse_sinai_1e30``: 1,000 environments to ``t = 1e30`` (``Gamma = log t =
69.08``) -- an absolute goal, under 10 s.

``diffusion.coarse_sinai_1e100``: method "stream" (landscapes grown outward from the start,
one window in memory), 1,000 environments traced at t = 1e10, 1e20, 1e30, 1e50 and 1e100 --
under 10 s. ``diffusion.coarse_sinai_1e300``: the same to t = 1e300 (windows of millions of
sites; the window method refuses it) -- under 60 s, one timed run.
``diffusion.coarse_stream_vs_window_1e30``: the two methods on 1,000 environments to 1e30.

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


_TRACE_1E100 = [math.log(10.0**e) for e in (10, 20, 30, 50, 100)]
_TRACE_1E300 = [*_TRACE_1E100, math.log(1e200), math.log(1e300)]


def _setup_stream():
    coarse_walk(4, [5.0, GAMMA], seed=99, method="stream")  # compile outside the timing
    return None


def _stream(trace):
    def run(_state):
        coarse_walk(N_ENVS, trace, seed=0, method="stream")

    return run


def _window_1e30(_state):
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
        name="diffusion.coarse_sinai_1e100",
        goal="< 10 s for 1,000 environments traced to t = 1e100",
        setup=_setup_stream,
        ours=_stream(_TRACE_1E100),
        work=N_ENVS,
        unit="env",
        max_seconds=10.0,
        repeats=3,
    ),
    Benchmark(
        name="diffusion.coarse_sinai_1e300",
        goal="< 60 s for 1,000 environments traced to t = 1e300",
        setup=_setup_stream,
        ours=_stream(_TRACE_1E300),
        work=N_ENVS,
        unit="env",
        max_seconds=60.0,
        repeats=1,
        warmup=False,
    ),
    Benchmark(
        name="diffusion.coarse_stream_vs_window_1e30",
        goal="informational (stream vs window method, 1e30)",
        setup=_setup_stream,
        ours=_stream([GAMMA]),
        baseline=_window_1e30,
        work=N_ENVS,
        unit="env",
        min_speedup=1.0,
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
