"""Compiled hot loops of the lattice walkers (numba), parallel over walkers.

Every site holds ``n_dir`` cumulative hop thresholds ``thr[site, j]`` (unsigned 64-bit):
a uniform 64-bit integer ``u`` moves the walker by ``offsets[count]`` where ``count`` is the
number of thresholds ``<= u`` (``offsets[n_dir] = 0``: stay). Decisions take 16 bits each, four
per 64-bit draw of a counter-based generator (SplitMix64: the output mix of a Weyl sequence,
one stream per walker). Comparing 16 bits is exact unless they equal a threshold's top 16
bits (probability ~ n_dir / 65536 per step); then 48 more bits are drawn, so every hop
probability is resolved to 2**-64. Walkers are processed in interleaved blocks per thread,
and the results do not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S16 = np.uint64(16)
_S48 = np.uint64(48)
_MASK16 = np.uint64(0xFFFF)
BLOCK = 6  # walkers interleaved per thread


@njit(inline="always")
def mix64(z):
    """SplitMix64 output function (a bijection of the 64-bit integers)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(inline="always")
def _refine(h, states, i):
    """The 64-bit uniform whose top 16 bits are ``h``; the low 48 from the next draw of walker i."""
    s = states[i] + GAMMA
    states[i] = s
    return (h << _S48) | (mix64(s) >> _S16)


@njit(inline="always")
def step_1d(thr, offsets, x, h, states, i):
    """One 1D decision of walker ``i`` at site ``x`` from 16 random bits ``h``; new site."""
    t0 = thr[x, 0]
    t1 = thr[x, 1]
    u = h << _S48
    if h == (t0 >> _S48) or h == (t1 >> _S48):  # rare: 16 bits cannot decide
        u = _refine(h, states, i)
    # right if u < t0, left if t0 <= u < t1, stay otherwise (branch-free)
    return x + 2 * np.int64(u < t0) - np.int64(u < t1)


@njit(inline="always")
def step_nd(thr, offsets, x, h, states, i):
    """One decision among ``thr.shape[1]`` directions (moves ``offsets``); new site."""
    n_dir = thr.shape[1]
    u = h << _S48
    tie = False
    for j in range(n_dir):
        tie |= h == (thr[x, j] >> _S48)
    if tie:
        u = _refine(h, states, i)
    c = 0
    for j in range(n_dir):
        c += np.int64(u >= thr[x, j])
    return x + offsets[c]


@njit(parallel=True, cache=True)
def run_walkers(thr, offsets, pos, state, times, out):
    """Advance every walker to each of ``times`` (increasing), writing ``out[r, w]``.

    ``thr`` (n_sites, n_dir) uint64, environments stacked along the sites, site 0 a
    sentinel; ``offsets`` (n_dir + 1,) int64 flat-index moves (1D: ``[1, -1, 0]``); ``pos``
    (n_walkers,) int64 site indices and ``state`` (n_walkers,) uint64 generator states, both
    updated in place; ``out`` (n_times, n_walkers) int64.

    Each thread takes blocks of BLOCK walkers and advances them step-major (one step of
    every walker of the block, then the next), so that the block's independent dependency
    chains overlap in the core; a short last block is padded with walkers parked on the
    sentinel site 0, which never move.
    """
    n_w = pos.size
    one_d = thr.shape[1] == 2 and offsets[0] == 1  # loop-invariant: the compiler unswitches it
    n_blocks = (n_w + BLOCK - 1) // BLOCK
    for b in prange(n_blocks):
        lo = b * BLOCK
        m = min(BLOCK, n_w - lo)
        xs = np.zeros(BLOCK, np.int64)
        ss = np.zeros(BLOCK, np.uint64)
        zs = np.zeros(BLOCK, np.uint64)
        for i in range(m):
            xs[i] = pos[lo + i]
            ss[i] = state[lo + i]
        t = 0
        for r in range(times.size):
            n = times[r] - t
            n_draws = (n + 3) // 4
            for g in range(n_draws):
                for i in range(BLOCK):  # one 64-bit draw per walker: four 16-bit decisions
                    s = ss[i] + GAMMA
                    ss[i] = s
                    zs[i] = mix64(s)
                k_max = 4 if g < n_draws - 1 else n - 4 * g
                for k in range(k_max):
                    shift = np.uint64(16 * k)
                    for i in range(BLOCK):
                        h = (zs[i] >> shift) & _MASK16
                        if one_d:
                            xs[i] = step_1d(thr, offsets, xs[i], h, ss, i)
                        else:
                            xs[i] = step_nd(thr, offsets, xs[i], h, ss, i)
            t = times[r]
            for i in range(m):
                out[r, lo + i] = xs[i]
        for i in range(m):
            pos[lo + i] = xs[i]
            state[lo + i] = ss[i]


@njit(parallel=True, cache=True)
def first_passage_1d(
    thr, offsets, pos, state, lower, upper, edge_lo, edge_hi, max_steps, t_hit, side
):
    """Run 1D walkers until they reach ``lower`` or ``upper`` (flat indices) or ``max_steps``.

    ``t_hit[w]`` gets the step of arrival (``max_steps`` when censored) and ``side[w]``
    +1 (upper), -1 (lower), 0 (censored) or 2 (met the edge of the environment).
    """
    n_w = pos.size
    for w in prange(n_w):
        x = pos[w]
        t = np.int64(0)
        outcome = 0
        while t < max_steps and outcome == 0:
            s = state[w] + GAMMA
            state[w] = s
            z = mix64(s)
            for k in range(4):
                if t >= max_steps:
                    break
                h = (z >> np.uint64(16 * k)) & _MASK16
                x = step_1d(thr, offsets, x, h, state, w)
                t += 1
                if x == upper:
                    outcome = 1
                elif x == lower:
                    outcome = -1
                elif x == edge_lo or x == edge_hi:
                    outcome = 2
                if outcome != 0:
                    break
        pos[w] = x
        t_hit[w] = t
        side[w] = outcome
