"""Exponentially long times in 1D: the strong-disorder renormalisation of the landscape.

Fisher, Le Doussal and Monthus (PRL 80, 3539 (1998); PRE 59, 4795 (1999)): at time ``t`` a
walker on a 1D potential ``V = U/T`` has crossed every barrier smaller than
``Gamma = log t`` and none larger; decimating the landscape until every remaining barrier is
at least ``Gamma`` leaves a sequence of alternating maxima and minima (the ``Gamma``-extrema),
and the walker sits at the bottom of the renormalised valley that contains its start. The
prediction is asymptotically exact as ``Gamma -> inf`` (corrections ``O(1/Gamma)``).

The ``Gamma``-extrema are found by a single pass (a "zig-zag" with hysteresis ``Gamma``,
:func:`zigzag`); those at a larger ``Gamma'`` are a subset of those at ``Gamma``, and the
path between two consecutive ``Gamma``-extrema stays between their values, so the pass for
``Gamma'`` runs on the short list of ``Gamma``-extrema only. A whole trace ``Gamma_1 <
Gamma_2 < ...`` therefore costs one pass over the window plus passes over ever shorter lists.

Windows: each environment is sampled on ``[-L, L]``; a valley is accepted only when both
its bounding maxima are confirmed interior extrema (not the first or the pending last one of
the pass). Otherwise the environment is redrawn on a doubled window. For the Brownian
potential the two halves come from their own random streams and a longer window extends the
same path (nothing is conditioned); an fBm path is drawn afresh on the larger window (an
event that the default window makes rare; :attr:`CoarseResult.n_extended` counts it).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from diffusion.metrics import Trace, fit_law
from diffusion.potentials import fbm_potential
from diffusion.theory import check_hurst, check_sigma, check_temperature

__all__ = [
    "zigzag",
    "decimate",
    "valley_bottom",
    "CoarseResult",
    "ExponentEstimate",
    "coarse_walk",
    "default_half_width",
    "LOG_TIME_RESOLUTION",
]

LOG_TIME_RESOLUTION = 100
"""Integer ticks per unit of ``Gamma = log t`` on the log-time axis of the traces."""


# ----------------------------------------------------------------------------- kernels
@njit(cache=True)
def _zigzag_kernel(v, idx, use_idx, m, threshold, out):
    """Alternating extrema of ``v[idx[:m]]`` (or ``v[:m]``) with swings >= threshold.

    Writes the positions (indices into ``v``) to ``out`` and returns how many: every
    confirmed extremum, then the pending candidate last. Returns 0 if no swing reaches the
    threshold.
    """
    p0 = idx[0] if use_idx else 0
    hi = p0
    lo = p0
    n = 0
    mode = 0
    cand = p0
    for j in range(1, m):
        p = idx[j] if use_idx else j
        y = v[p]
        if mode == 0:
            if y > v[hi]:
                hi = p
            if y < v[lo]:
                lo = p
            if v[hi] - v[lo] >= threshold:
                if hi < lo:
                    out[n] = hi
                    mode = -1
                    cand = lo
                else:
                    out[n] = lo
                    mode = 1
                    cand = hi
                n += 1
        elif mode == 1:
            if y > v[cand]:
                cand = p
            elif v[cand] - y >= threshold:
                out[n] = cand
                n += 1
                mode = -1
                cand = p
        else:
            if y < v[cand]:
                cand = p
            elif y - v[cand] >= threshold:
                out[n] = cand
                n += 1
                mode = 1
                cand = p
    if mode != 0:
        out[n] = cand
        n += 1
    return n


@njit(cache=True)
def _bottom(v, ext, n, origin):
    """Index in ``ext`` of the valley bottom around ``origin``; -1 if not confirmed interior."""
    if n < 5:
        return -1
    first_is_max = v[ext[0]] > v[ext[1]]
    # last extremum at or left of the origin
    j = -1
    for i in range(n):
        if ext[i] <= origin:
            j = i
        else:
            break
    if j < 0:
        return -1
    is_max = (j % 2 == 0) == first_is_max
    if not is_max:
        b = j
    elif ext[j] < origin:
        b = j + 1
    else:  # the start is itself a Gamma-maximum: take the deeper neighbouring valley
        if j - 1 < 0 or j + 1 >= n:
            return -1
        b = j - 1 if v[ext[j - 1]] < v[ext[j + 1]] else j + 1
    if b - 1 < 1 or b + 1 > n - 2:
        return -1
    return b


@njit(cache=True, nogil=True)
def _row_bottoms(v, origin, gammas, result, ok):
    """Valley bottom around ``origin`` at each Gamma (ascending) of one path; nested passes."""
    m = v.shape[0]
    ext = np.empty(m, np.int64)
    n = _zigzag_kernel(v, ext, False, m, gammas[0], ext)
    nxt = np.empty(max(n, 1), np.int64)
    for g in range(gammas.shape[0]):
        if g > 0 and n > 0:
            n = _zigzag_kernel(v, ext, True, n, gammas[g], nxt)
            ext, nxt = nxt, ext
        b = _bottom(v, ext, n, origin)
        ok[g] = b >= 0
        result[g] = ext[b] - origin if b >= 0 else 0


@njit(cache=True, parallel=True)
def _bottoms_kernel(paths, origins, lengths, gammas, result, ok):
    """For each row (a path with its start), the valley bottom at each Gamma (ascending)."""
    for r in prange(paths.shape[0]):
        _row_bottoms(paths[r, : lengths[r]], origins[r], gammas, result[r], ok[r])


@njit(cache=True)
def _gaussian_walk(seed, n, scale, out, start, step):
    """``out[start + step*k] = scale * (sum of k standard normals)``, k = 0..n; own stream."""
    np.random.seed(seed)  # numba's per-thread generator: the stream depends on the seed only
    acc = 0.0
    out[start] = 0.0
    for k in range(1, n + 1):
        acc += np.random.standard_normal()
        out[start + step * k] = scale * acc


@njit(cache=True, parallel=True)
def _brownian_bottoms_kernel(seeds, halves, sigma_v, gammas, result, ok):
    """Sample each two-sided Brownian landscape (own streams per side) and find its bottoms."""
    for r in prange(seeds.shape[0]):
        half = halves[r]
        v = np.empty(2 * half + 1)
        _gaussian_walk(seeds[r, 0], half, sigma_v, v, half, -1)
        _gaussian_walk(seeds[r, 1], half, sigma_v, v, half, 1)
        _row_bottoms(v, half, gammas, result[r], ok[r])


@njit(cache=True, nogil=True)
def _extend_walk(gen, sums, have, need):
    """``sums[k]`` = sum of the first ``k`` standard normals of ``gen``, for ``have < k <= need``.

    ``sums[:have + 1]`` is kept: a longer window continues the same stream."""
    acc = sums[have]
    for k in range(have + 1, need + 1):
        acc += gen.standard_normal()
        sums[k] = acc


@njit(cache=True, nogil=True)
def _assemble(left, right, half, scale, v):
    """``v`` on ``[-half, half]`` (start at index ``half``) from the two one-sided sums."""
    for k in range(half + 1):
        v[half - k] = scale * left[k]
        v[half + k] = scale * right[k]


def _stream_bottoms(
    gens: tuple[np.random.Generator, np.random.Generator],
    half: int,
    sigma_v: float,
    gammas: np.ndarray,
    max_sites: int,
) -> tuple[np.ndarray, int, int]:
    """Bottoms at every Gamma of one Brownian landscape grown outward until all are confirmed.

    Both halves start with ``half`` sites and double together (each continuing its own
    stream) until every valley is bounded by confirmed interior maxima. Returns the
    displacements, the final half-width and the number of doublings.
    """
    left = np.zeros(half + 1)
    right = np.zeros(half + 1)
    have, doublings = 0, 0
    res = np.zeros(gammas.size, np.int64)
    ok = np.zeros(gammas.size, np.bool_)
    while True:
        if 2 * half + 1 > max_sites:
            raise ValueError(
                f"an environment needs a window of more than max_env_sites={max_sites} sites "
                f"to confirm its valley at Gamma = {gammas[-1]:.4g}; raise max_env_sites"
            )
        if left.size < half + 1:
            left = np.concatenate([left[: have + 1], np.empty(half - have)])
            right = np.concatenate([right[: have + 1], np.empty(half - have)])
        _extend_walk(gens[0], left, have, half)
        _extend_walk(gens[1], right, have, half)
        have = half
        v = np.empty(2 * half + 1)
        _assemble(left, right, half, sigma_v, v)
        _row_bottoms(v, half, gammas, res, ok)
        if ok.all():
            return res, half, doublings
        half *= 2
        doublings += 1


# ----------------------------------------------------------------------------- public kernels
def _as_path(values: object, name: str = "values") -> np.ndarray:
    try:
        v = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be array-like of numbers, got {type(values).__name__}"
        ) from exc
    if v.ndim != 1 or v.size < 2:
        raise ValueError(
            f"{name} must be one-dimensional with at least 2 entries, got shape {v.shape}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite")
    return v


def _as_gammas(gammas: object) -> np.ndarray:
    g = np.atleast_1d(np.asarray(gammas, dtype=np.float64))
    if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ValueError(f"gammas must be finite positive numbers, got {gammas!r}")
    if g.size > 1 and np.any(np.diff(g) <= 0):
        raise ValueError("gammas must be strictly increasing")
    return g


def zigzag(values: object, threshold: float) -> np.ndarray:
    """Positions of the alternating extrema of a path whose swings are at least ``threshold``.

    A single pass with hysteresis: a candidate maximum is confirmed once the path has
    dropped ``threshold`` below it, a candidate minimum once it has risen ``threshold`` above
    it. Every confirmed extremum except the first is a ``threshold``-extremum of any longer
    path containing this one; the last entry is the pending, unconfirmed candidate.

    Parameters
    ----------
    values : array_like, shape (n,)
        The path (e.g. ``U/T`` on consecutive sites).
    threshold : float
        ``> 0``.

    Returns
    -------
    numpy.ndarray of int64
        Increasing indices, alternating between maxima and minima (empty if no swing
        reaches ``threshold``).
    """
    v = _as_path(values)
    thr = float(threshold)
    if not math.isfinite(thr) or thr <= 0:
        raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
    out = np.empty(v.size, np.int64)
    n = _zigzag_kernel(v, np.empty(1, np.int64), False, v.size, thr, out)
    return out[:n].copy()


def valley_bottom(values: object, origin: int, gammas: object) -> tuple[np.ndarray, np.ndarray]:
    """Bottom of the renormalised valley containing ``origin`` at each ``Gamma``.

    Parameters
    ----------
    values : array_like, shape (n,)
        The path ``V = U/T``.
    origin : int
        Index of the start.
    gammas : array_like
        Strictly increasing positive thresholds (``log t``).

    Returns
    -------
    displacement : numpy.ndarray of int64
        Bottom index minus ``origin`` for each ``Gamma`` (0 where undetermined).
    determined : numpy.ndarray of bool
        False where the valley is not bounded by two confirmed interior maxima of the path
        (the path is too short).
    """
    v = _as_path(values)
    if (
        isinstance(origin, bool)
        or not isinstance(origin, (int, np.integer))
        or not 0 <= origin < v.size
    ):
        raise ValueError(f"origin must be an index into values (0..{v.size - 1}), got {origin!r}")
    g = _as_gammas(gammas)
    res = np.zeros((1, g.size), np.int64)
    ok = np.zeros((1, g.size), np.bool_)
    _bottoms_kernel(
        v[None, :], np.array([origin], np.int64), np.array([v.size], np.int64), g, res, ok
    )
    return res[0], ok[0]


def decimate(values: object, threshold: float) -> np.ndarray:
    """Fisher's renormalisation done literally: decimate the smallest barrier, repeatedly.

    A pure-Python reference (a heap of bonds between consecutive extrema): the walker's
    landscape is reduced to its local extrema, then the bond with the smallest
    ``|V(a) - V(b)|`` is decimated -- both ends removed and their outer neighbours joined --
    until every bond is at least ``threshold``. An end bond loses only its end point. Slow;
    :func:`zigzag` gives the same interior extrema in one compiled pass.

    Parameters
    ----------
    values : array_like, shape (n,)
        The path.
    threshold : float
        ``> 0``.

    Returns
    -------
    numpy.ndarray of int64
        Indices of the surviving alternating extrema.
    """
    import heapq

    v = _as_path(values)
    thr = float(threshold)
    if not math.isfinite(thr) or thr <= 0:
        raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
    d = np.sign(np.diff(v))
    turn = np.flatnonzero(d[1:] * d[:-1] < 0) + 1
    ext = np.concatenate([[0], turn, [v.size - 1]]).tolist()
    m = len(ext)
    prev = list(range(-1, m - 1))
    nxt = list(range(1, m + 1))
    nxt[-1] = -1
    alive = [True] * m
    heap = [(abs(v[ext[i + 1]] - v[ext[i]]), i, i + 1) for i in range(m - 1)]
    heapq.heapify(heap)
    while heap:
        barrier, i, j = heapq.heappop(heap)
        if barrier >= thr:
            break
        if not (alive[i] and alive[j] and nxt[i] == j):
            continue  # a stale bond
        h, k = prev[i], nxt[j]
        if h < 0 and k < 0:
            break
        if h < 0:  # left end bond: drop the end point
            alive[i] = False
            prev[j] = -1
        elif k < 0:  # right end bond
            alive[j] = False
            nxt[i] = -1
        else:
            alive[i] = alive[j] = False
            nxt[h], prev[k] = k, h
            heapq.heappush(heap, (abs(v[ext[k]] - v[ext[h]]), h, k))
    return np.asarray([ext[i] for i in range(m) if alive[i]], dtype=np.int64)


# ----------------------------------------------------------------------------- sampling
@dataclass(frozen=True)
class CoarseResult:
    """Positions of walkers at exponentially long times, one walker per environment.

    Attributes
    ----------
    gamma : numpy.ndarray, shape (n_gamma,)
        ``Gamma = log t`` (``t`` in units of the inverse attempt rate).
    positions : numpy.ndarray of int64, shape (n_envs, n_gamma)
        Valley bottom minus start.
    kind : {'brownian', 'fbm'}
        Potential model.
    hurst : float
        Hurst exponent (0.5 for 'brownian').
    sigma : float
        Increment standard deviation of ``U``.
    temperature : float
        ``T``; the landscape is ``V = U/T``.
    half_width : numpy.ndarray of int64, shape (n_envs,)
        Final window half-width of each environment.
    n_extended : int
        Number of window enlargements that were needed.
    """

    gamma: np.ndarray
    positions: np.ndarray
    kind: str
    hurst: float
    sigma: float
    temperature: float
    half_width: np.ndarray
    n_extended: int

    @property
    def n_envs(self) -> int:
        return int(self.positions.shape[0])

    @property
    def sigma_v(self) -> float:
        """Increment standard deviation of ``V = U/T``."""
        return self.sigma / self.temperature

    def scale(self) -> np.ndarray:
        """Scaling length ``(Gamma/sigma_V)^(1/H)``: Sinai's ``(log t)^2/sigma_V^2`` for H = 1/2."""
        return (self.gamma / self.sigma_v) ** (1.0 / self.hurst)

    def scaled(self) -> np.ndarray:
        """``positions / scale()``; for a Brownian potential Kesten's ``sigma^2 x/(log t)^2``."""
        return self.positions / self.scale()[None, :]

    def mean_abs(self) -> np.ndarray:
        """``E|x_t|`` over environments at each ``Gamma``."""
        return np.mean(np.abs(self.positions), axis=0)

    def rms(self) -> np.ndarray:
        """Root-mean-square displacement over environments at each ``Gamma``."""
        return np.sqrt(np.mean(self.positions.astype(float) ** 2, axis=0))

    def log_time_trace(self, statistic: str = "rms") -> Trace:
        """Trace of the displacement on a log-time axis: ``round(LOG_TIME_RESOLUTION * Gamma)``.

        Times beyond ``2^62`` cannot be held as integers, but their logarithms can. On this
        axis the polylog law ``a + b (log t)^k`` is the ``power_offset`` law ``a + b' s^k``
        of the shared metrics (same ``k``), which is what :meth:`polylog_exponent` fits.
        ``distance`` is the RMS displacement (as for the direct walkers) or, with
        ``statistic='mean_abs'``, the mean absolute displacement (less sensitive to the heavy
        tails of the fBm valleys); extras hold ``mean_abs``, ``msd``, ``gamma`` (exact) and
        ``positions`` (shape (n_gamma, n_envs)).
        """
        if statistic not in ("rms", "mean_abs"):
            raise ValueError(f"statistic must be 'rms' or 'mean_abs', got {statistic!r}")
        ticks = np.round(LOG_TIME_RESOLUTION * self.gamma).astype(np.int64)
        if ticks.size > 1 and np.any(np.diff(ticks) <= 0):
            raise ValueError(f"gamma grid is finer than 1/{LOG_TIME_RESOLUTION}; no log-time trace")
        rms = self.rms()
        extras = {
            "mean_abs": self.mean_abs(),
            "msd": rms**2,
            "gamma": self.gamma,
            "positions": self.positions.T,
        }
        return Trace(ticks, rms if statistic == "rms" else extras["mean_abs"], extras)

    def polylog_exponent(
        self,
        gamma_min: float | None = None,
        gamma_max: float | None = None,
        *,
        offset: bool = True,
        statistic: str = "rms",
    ):
        """Fit ``rms(x_t) = a + b (log t)^k`` for ``gamma_min <= log t <= gamma_max``.

        Returns the :class:`~diffusion.metrics.LawFit` of the ``power_offset`` law on the
        log-time trace (``power``, i.e. ``b (log t)^k``, with ``offset=False``); its ``nu``
        is the exponent ``k``. ``statistic`` is passed to :meth:`log_time_trace`.
        """
        lo = None if gamma_min is None else LOG_TIME_RESOLUTION * gamma_min - 0.5
        hi = None if gamma_max is None else LOG_TIME_RESOLUTION * gamma_max + 0.5
        return fit_law(
            self.log_time_trace(statistic),
            "power_offset" if offset else "power",
            t_min=lo,
            t_max=hi,
        )

    def exponent_interval(
        self,
        gamma_min: float | None = None,
        gamma_max: float | None = None,
        *,
        offset: bool = True,
        statistic: str = "rms",
        n_boot: int = 100,
        level: float = 0.95,
        seed: int = 0,
    ) -> ExponentEstimate:
        """The polylog exponent with a bootstrap interval over environments.

        Environments are resampled with replacement and :meth:`polylog_exponent` is refitted;
        the interval is the percentile interval at ``level``. (The least-squares standard
        error of one fit ignores that all times share the same environments, so it is too
        small.)
        """
        if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 10:
            raise ValueError(f"n_boot must be an integer >= 10, got {n_boot!r}")
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        k = self.polylog_exponent(gamma_min, gamma_max, offset=offset, statistic=statistic).params[
            "nu"
        ]
        rng = np.random.default_rng(seed)
        ks = np.empty(n_boot)
        for i in range(n_boot):
            pick = rng.integers(0, self.n_envs, self.n_envs)
            boot = CoarseResult(
                self.gamma,
                self.positions[pick],
                self.kind,
                self.hurst,
                self.sigma,
                self.temperature,
                self.half_width[pick],
                self.n_extended,
            )
            ks[i] = boot.polylog_exponent(
                gamma_min, gamma_max, offset=offset, statistic=statistic
            ).params["nu"]
        lo, hi = np.quantile(ks, [(1 - level) / 2, (1 + level) / 2])
        return ExponentEstimate(
            float(k), (float(lo), float(hi)), float(np.std(ks, ddof=1)), int(n_boot), level
        )


@dataclass(frozen=True)
class ExponentEstimate:
    """A fitted polylog exponent ``k`` with its bootstrap interval.

    Attributes
    ----------
    k : float
        Exponent fitted to all environments.
    ci : tuple of float
        Percentile bootstrap interval at ``level``.
    stderr : float
        Bootstrap standard deviation.
    n_boot : int
        Bootstrap resamples.
    level : float
        Interval level.
    """

    k: float
    ci: tuple[float, float]
    stderr: float
    n_boot: int
    level: float


def _env_seeds(seed: int | np.random.SeedSequence, n_envs: int) -> list[np.random.SeedSequence]:
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return ss.spawn(n_envs)


def _child(env_seed: np.random.SeedSequence, key: int) -> np.random.SeedSequence:
    """A fixed child stream of ``env_seed`` (independent of how often ``spawn`` was called)."""
    return np.random.SeedSequence(env_seed.entropy, spawn_key=env_seed.spawn_key + (key,))


def _fbm_path(
    env_seed: np.random.SeedSequence,
    half: int,
    hurst: float,
    sigma: float,
    temperature: float,
    attempt: int,
) -> np.ndarray:
    """Two-sided fBm landscape ``V = U/T`` on ``[-half, half]``, the start in the middle."""
    u = fbm_potential(
        2 * half + 1, hurst, sigma, seed=_child(env_seed, 2 + attempt), origin=half
    ).values
    return u / temperature


def _stream_seeds(env_seeds: list[np.random.SeedSequence]) -> np.ndarray:
    """Two 32-bit seeds per environment (left and right half of a Brownian landscape)."""
    return np.array(
        [[_child(e, k).generate_state(1, np.uint32)[0] for k in (0, 1)] for e in env_seeds],
        dtype=np.int64,
    )


def default_half_width(
    gamma_max: float, hurst: float, sigma_v: float, kind: str = "brownian"
) -> int:
    """Initial window half-width ``f (Gamma_max/sigma_V)^(1/H)`` (at least 64 sites).

    The reach of the valley around the start (its bounding maxima and the extrema that
    confirm them) in units of ``(Gamma/sigma_V)^(1/H)`` has a tail that grows fast as
    ``H -> 1`` (a smooth path keeps one slope over long stretches). ``f`` is about its 99th
    percentile measured on fBm paths: ``f = 12`` for the Brownian potential (extended without
    redrawing when short), ``f = 10^(3.5 H - 0.5)`` for fBm (3.5 at H = 0.3, 450 at H = 0.9).
    """
    factor = 12.0 if kind == "brownian" else 10.0 ** (3.5 * hurst - 0.5)
    return int(max(64, math.ceil(factor * (gamma_max / sigma_v) ** (1.0 / hurst))))


def coarse_walk(
    n_envs: int,
    gammas: object,
    *,
    kind: str = "brownian",
    hurst: float = 0.5,
    sigma: float = 1.0,
    temperature: float = 1.0,
    seed: int = 0,
    half_width: int | None = None,
    max_sites: int = 4_000_000,
    max_total_sites: float | None = None,
    method: str = "window",
    max_env_sites: int = 200_000_000,
) -> CoarseResult:
    """Where walkers are at times ``t = exp(Gamma)``: one walker in each of ``n_envs`` environments.

    Parameters
    ----------
    n_envs : int
        Number of independent environments (>= 1).
    gammas : array_like
        Strictly increasing ``Gamma = log t > 0`` (``t = 1e30`` is ``Gamma = 69.08``).
    kind : {'brownian', 'fbm'}
        Sinai's Brownian potential or fractional Brownian motion with ``hurst``.
    hurst : float
        H in (0, 1); ignored (taken as 0.5) for 'brownian'.
    sigma : float
        Standard deviation of one increment of ``U`` (> 0).
    temperature : float
        ``T > 0``; the walker sees ``V = U/T``.
    seed : int
        Environment ``i`` uses the ``i``-th child of ``SeedSequence(seed)``: results do not
        depend on batching.
    half_width : int, optional
        Initial window half-width; default :func:`default_half_width`.
    max_sites : int
        Sites processed per batch (memory bound).
    max_total_sites : float, optional
        Refuse runs whose windows would hold more sites than this in all (default 5e9 for
        'brownian', generated in compiled code, 5e8 for 'fbm', one FFT per environment):
        the valley size ``(Gamma/sigma_V)^(1/H)`` grows very fast for small H.
        Method ``"window"`` only.
    method : {'window', 'stream'}
        ``"window"``: batches of environments on windows of :func:`default_half_width`
        (doubled where short), the landscape drawn by numba's legacy generator.
        ``"stream"`` ('brownian' only): one environment at a time, each half of the landscape
        drawn from its own ``numpy.random.Generator`` (PCG64, ziggurat normals, several
        times faster) on a window of a quarter of the default width that doubles -- the
        streams continue, nothing is redrawn -- until the valley is confirmed at every
        ``Gamma``. Memory is one window, whatever ``n_envs``; ``t = 1e300`` fits. The same
        zig-zag pass answers both methods, so on the same landscape they agree exactly; the
        landscapes themselves differ (other random streams), so results agree in distribution.
    max_env_sites : int
        Method ``"stream"``: refuse an environment whose window would exceed this many sites
        (about 24 bytes each at the peak).

    Raises
    ------
    ValueError
        For bad arguments, or when the run would exceed ``max_total_sites``.

    Returns
    -------
    CoarseResult
    """
    if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
    if kind not in ("brownian", "fbm"):
        raise ValueError(f"kind must be 'brownian' or 'fbm', got {kind!r}")
    if method not in ("window", "stream"):
        raise ValueError(f"method must be 'window' or 'stream', got {method!r}")
    if method == "stream" and kind != "brownian":
        raise ValueError(f"method='stream' needs kind='brownian', got kind={kind!r}")
    h = 0.5 if kind == "brownian" else check_hurst(hurst)
    s = check_sigma(sigma, allow_zero=False)
    T = check_temperature(temperature)
    g = _as_gammas(gammas)
    sigma_v = s / T
    half0 = default_half_width(g[-1], h, sigma_v, kind) if half_width is None else int(half_width)
    if half0 < 2:
        raise ValueError(f"half_width must be >= 2, got {half_width!r}")
    if method == "stream":
        return _coarse_stream(n_envs, g, s, T, seed, half_width, max_env_sites)
    cap = (
        float(max_total_sites)
        if max_total_sites is not None
        else (5e9 if kind == "brownian" else 5e8)
    )
    total = float(n_envs) * (2 * half0 + 1)
    if total > cap:
        factor = (2 * half0 + 1) / (g[-1] / sigma_v) ** (1.0 / h)
        g_ok = sigma_v * (cap / (n_envs * factor)) ** h
        raise ValueError(
            f"gammas up to {g[-1]:.4g} (t = {math.exp(g[-1]):.3g}) with n_envs={n_envs} and "
            f"hurst={h:g} need windows of {total:.3g} sites in all (limit {cap:.3g}); with "
            f"these settings log t <= {g_ok:.3g} (t <= {math.exp(min(g_ok, 700.0)):.3g}) fits: "
            "lower t_max or n_envs"
        )
    seeds = _env_seeds(seed, n_envs)
    stream_seeds = _stream_seeds(seeds) if kind == "brownian" else None
    positions = np.zeros((n_envs, g.size), np.int64)
    halves = np.full(n_envs, half0, np.int64)
    todo = np.arange(n_envs)
    attempt = 0
    n_extended = 0
    while todo.size:
        half = int(halves[todo[0]])
        width = 2 * half + 1
        per_batch = max(1, max_sites // width)
        failed = []
        for start in range(0, todo.size, per_batch):
            rows = todo[start : start + per_batch]
            res = np.zeros((rows.size, g.size), np.int64)
            ok = np.zeros((rows.size, g.size), np.bool_)
            if kind == "brownian":
                _brownian_bottoms_kernel(
                    stream_seeds[rows], np.full(rows.size, half, np.int64), sigma_v, g, res, ok
                )
            else:
                paths = np.empty((rows.size, width))
                for i, env in enumerate(rows):
                    paths[i] = _fbm_path(seeds[env], half, h, s, T, attempt)
                _bottoms_kernel(
                    paths,
                    np.full(rows.size, half, np.int64),
                    np.full(rows.size, width, np.int64),
                    g,
                    res,
                    ok,
                )
            good = ok.all(axis=1)
            positions[rows[good]] = res[good]
            failed.extend(rows[~good].tolist())
        todo = np.asarray(failed, dtype=np.int64)
        if todo.size:
            n_extended += int(todo.size)
            halves[todo] *= 2
            attempt += 1
    return CoarseResult(g, positions, kind, h, s, T, halves, n_extended)


STREAM_WIDTH_FRACTION = 0.25
"""Initial window of method ``"stream"`` as a fraction of :func:`default_half_width`."""


def _coarse_stream(
    n_envs: int,
    g: np.ndarray,
    sigma: float,
    temperature: float,
    seed: int,
    half_width: int | None,
    max_env_sites: object,
) -> CoarseResult:
    """Method ``"stream"`` of :func:`coarse_walk` (arguments already checked)."""
    if (
        isinstance(max_env_sites, bool)
        or not isinstance(max_env_sites, (int, np.integer))
        or max_env_sites < 5
    ):
        raise ValueError(f"max_env_sites must be an integer >= 5, got {max_env_sites!r}")
    sigma_v = sigma / temperature
    if half_width is None:
        half0 = default_half_width(g[-1], 0.5, sigma_v)
        half0 = max(64, int(STREAM_WIDTH_FRACTION * half0))
    else:
        half0 = int(half_width)

    def one(env: np.random.SeedSequence) -> tuple[np.ndarray, int, int]:
        gens = tuple(np.random.Generator(np.random.PCG64(_child(env, k))) for k in (0, 1))
        return _stream_bottoms(gens, half0, sigma_v, g, int(max_env_sites))

    # the kernels release the GIL: environments run on numba's thread count
    with ThreadPoolExecutor(max_workers=numba.get_num_threads()) as pool:
        done = list(pool.map(one, _env_seeds(seed, n_envs)))
    positions = np.array([d[0] for d in done], dtype=np.int64).reshape(n_envs, g.size)
    halves = np.array([d[1] for d in done], dtype=np.int64)
    n_extended = int(sum(d[2] for d in done))
    return CoarseResult(g, positions, "brownian", 0.5, sigma, temperature, halves, n_extended)
