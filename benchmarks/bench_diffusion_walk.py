"""Lattice walkers: walker-steps per second of the compiled walkers against plain numpy.

The baseline is the obvious vectorised numpy Metropolis walker: per-site hop probabilities
precomputed (as ours are), then for every step one uniform per walker from
``numpy.random.Generator.random``, two gathers and a branch-free update of all positions.
Both sides move the same walkers the same number of steps on the same potential.
"""

from __future__ import annotations

import numpy as np

from benchmarks import Benchmark
from diffusion.potentials import brownian_potential, gaussian_field
from diffusion.walk import simulate_walkers

N_WALKERS = 8192
N_STEPS = 10_000
N_WALKERS_2D = 4096
N_STEPS_2D = 2_000


def _setup_1d():
    pot = brownian_potential(20_001, 1.0, seed=0)
    u = np.pad(pot.values, 1, mode="edge")
    right = 0.5 * np.exp(-np.clip(u[2:] - u[1:-1], 0, None))
    left = 0.5 * np.exp(-np.clip(u[:-2] - u[1:-1], 0, None))
    return {"potential": pot, "right": right, "left": left, "origin": pot.origin[0]}


def _ours_1d(state):
    simulate_walkers(state["potential"], 1.0, N_STEPS, N_WALKERS, times=[N_STEPS], seed=1)


def _numpy_1d(state):
    rng = np.random.default_rng(1)
    right, left = state["right"], state["left"]
    x = np.full(N_WALKERS, state["origin"], dtype=np.int64)
    for _ in range(N_STEPS):
        u = rng.random(N_WALKERS)
        pr = right[x]
        x += (u < pr).astype(np.int64) - ((u >= pr) & (u < pr + left[x]))
    return x


def _setup_2d():
    pot = gaussian_field((501, 501), "short", correlation_length=2.0, seed=0)
    d = pot.ndim
    u = np.pad(pot.values, 1, mode="edge")
    inner = (slice(1, -1),) * d
    probs = []
    for axis in range(d):
        for shift in (-1, 1):
            du = np.roll(u, shift, axis=axis)[inner] - u[inner]
            probs.append(np.exp(-np.clip(du, 0, None)) / (2 * d))
    cum = np.cumsum(np.stack([p.ravel() for p in probs], axis=1), axis=1)
    offsets = np.array([pot.shape[1], -pot.shape[1], 1, -1, 0], dtype=np.int64)
    origin = np.ravel_multi_index(pot.origin, pot.shape)
    return {"potential": pot, "cum": cum, "offsets": offsets, "origin": origin}


def _ours_2d(state):
    simulate_walkers(state["potential"], 1.0, N_STEPS_2D, N_WALKERS_2D, times=[N_STEPS_2D], seed=1)


def _numpy_2d(state):
    rng = np.random.default_rng(1)
    cum, offsets = state["cum"], state["offsets"]
    x = np.full(N_WALKERS_2D, state["origin"], dtype=np.int64)
    for _ in range(N_STEPS_2D):
        u = rng.random(N_WALKERS_2D)
        x += offsets[(u[:, None] >= cum[x]).sum(axis=1)]
    return x


BENCHMARKS = [
    Benchmark(
        name="diffusion.walk_1d",
        goal=">= 6x numpy (and >= 400 M walker-steps/s on 2 cores)",
        setup=_setup_1d,
        ours=_ours_1d,
        baseline=_numpy_1d,
        work=float(N_WALKERS * N_STEPS),
        unit="step",
        min_speedup=6.0,
        repeats=3,
    ),
    Benchmark(
        name="diffusion.walk_2d",
        goal="informational (>= 1x numpy)",
        setup=_setup_2d,
        ours=_ours_2d,
        baseline=_numpy_2d,
        work=float(N_WALKERS_2D * N_STEPS_2D),
        unit="step",
        min_speedup=1.0,
        repeats=3,
    ),
]
