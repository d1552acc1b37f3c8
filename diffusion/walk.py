"""Lattice walkers on random potentials: Metropolis hopping at temperature T, and RWRE.

Many walkers move at once, in one shared environment or one environment each; the hot loop
is compiled (numba) and parallel over cores (:mod:`diffusion._kernels`).

Dynamics (discrete time, one attempted move per walker per step)
----------------------------------------------------------------
Metropolis on a d-dimensional potential (d = 1, 2, 3): pick one of the 2d neighbours with
probability 1/(2d) and move there with probability ``min(1, exp(-(U_new - U_old)/T))``. In
1D that is ``w(i -> i+-1) = 1/2 min(1, exp(-(U_{i+-1} - U_i)/T))``; a free walker has
``E x_t^2 = t``. Detailed balance holds with ``pi_i ~ exp(-U_i/T)``. Sites with ``U = +inf``
are walls.

RWRE: from site i hop right with ``p_i``, left with ``q_i = 1 - p_i``.

Edges
-----
The environment is a finite box. Walkers never meet its edge silently: the box is wrapped
in a layer of absorbing sentinel sites, and a walker that steps onto one stops there; after
the run, :class:`EdgeReachedError` (a ``ValueError``) reports when and where. With
``edge='strict'`` the run is refused beforehand unless no walker can reach the edge in
``t_max`` steps (distance from every start to the edge > ``t_max``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from diffusion import _kernels
from diffusion.metrics import Trace, log_schedule
from diffusion.potentials import Potential
from diffusion.validation import check_array, check_choice, check_int, check_real

__all__ = [
    "EdgeReachedError",
    "Lattice",
    "metropolis_lattice",
    "rwre_lattice",
    "simulate_walkers",
    "simulate_rwre",
    "final_positions",
    "FirstPassage",
    "first_passage_times",
    "sample_equilibrium",
    "measured_rate",
    "estimate_walk_seconds",
]

_TWO64 = 2.0**64
_U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)


class EdgeReachedError(ValueError):
    """A walker reached the edge of its finite environment before the requested time."""


# ----------------------------------------------------------------------------- validation
_MAX_COUNT = 2**62 - 1  # steps and walkers stay clear of int64 overflow in the kernels


def _check_times(times: object, t_max: int) -> np.ndarray:
    if times is None:
        return log_schedule(t_max, per_decade=10)
    check_array("times", times, ndim=1)  # numbers, one-dimensional, non-empty, finite
    arr = np.asarray(times)  # its own dtype, so large int64 times keep every digit
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"times must be an array of integers, got dtype {arr.dtype}")
    if np.any(arr != np.round(arr)):
        raise ValueError("times must hold integers")
    arr = arr.astype(np.int64)
    if arr[0] < 0 or np.any(np.diff(arr) <= 0):
        raise ValueError("times must be non-negative and strictly increasing")
    if arr[-1] > t_max:
        raise ValueError(f"times must not exceed t_max={t_max}, found {arr[-1]}")
    return arr


def _seed_sequence(seed: object) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0:
        return np.random.SeedSequence(int(seed))
    raise TypeError(f"seed must be a non-negative int or a SeedSequence, got {seed!r}")


# ----------------------------------------------------------------------------- lattices
@dataclass(frozen=True)
class Lattice:
    """Hop thresholds of one or more environments, ready for the compiled kernels.

    Attributes
    ----------
    thresholds : numpy.ndarray of uint64, shape (n_env, n_padded_sites, n_dir)
        Cumulative hop probabilities times 2**64, per flat (padded) site.
    offsets : numpy.ndarray of int64, shape (n_dir + 1,)
        Flat-index move of each direction; the last entry (0) is "stay".
    shape : tuple of int
        The environment box (without the sentinel layer).
    origin : tuple of int
        Index of the origin in the box.
    """

    thresholds: np.ndarray
    offsets: np.ndarray
    shape: tuple[int, ...]
    origin: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def n_env(self) -> int:
        return int(self.thresholds.shape[0])

    @property
    def padded_shape(self) -> tuple[int, ...]:
        return tuple(n + 2 for n in self.shape)

    def flat_index(self, coords: np.ndarray) -> np.ndarray:
        """Flat padded index of coordinates relative to the origin, shape (n, d) or (n,)."""
        c = np.asarray(coords, dtype=np.int64).reshape(-1, self.ndim) + np.asarray(self.origin) + 1
        return np.ravel_multi_index(tuple(c.T), self.padded_shape).astype(np.int64)

    def coordinates(self, flat: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`flat_index`: shape ``flat.shape`` (1D) or ``flat.shape + (d,)``."""
        c = (
            np.stack(np.unravel_index(flat, self.padded_shape), axis=-1)
            - np.asarray(self.origin)
            - 1
        )
        return c[..., 0] if self.ndim == 1 else c

    def stacked(self) -> np.ndarray:
        """Thresholds of all environments stacked along the sites: (n_env * n_sites, n_dir)."""
        return self.thresholds.reshape(-1, self.thresholds.shape[-1])

    def on_edge(self, flat: np.ndarray) -> np.ndarray:
        """Whether flat padded indices lie on the sentinel layer."""
        idx = np.unravel_index(flat, self.padded_shape)
        out = np.zeros(np.shape(flat), dtype=bool)
        for i, n in zip(idx, self.padded_shape, strict=True):
            out |= (i == 0) | (i == n - 1)
        return out

    def distance_to_edge(self, coords: np.ndarray) -> int:
        """Fewest steps from any of ``coords`` (relative to the origin) to the sentinel layer."""
        c = np.asarray(coords, dtype=np.int64).reshape(-1, self.ndim) + np.asarray(self.origin)
        lo = c.min(axis=0) + 1
        hi = np.asarray(self.shape) - c.max(axis=0)
        return int(min(lo.min(), hi.min()))


def _probabilities_to_thresholds(p: np.ndarray) -> np.ndarray:
    """Cumulative thresholds ``floor(sum_{i<=j} p_i 2**64)`` (saturating) along the last axis."""
    scaled = np.where(p >= 1.0, _TWO64 - 2048.0, np.floor(np.clip(p, 0.0, 1.0) * _TWO64))
    each = np.where(p >= 1.0, _U64_MAX, scaled.astype(np.uint64))
    out = np.empty(p.shape, dtype=np.uint64)
    acc = np.zeros(p.shape[:-1], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(p.shape[-1]):
            new = acc + each[..., j]
            acc = np.where(new < acc, _U64_MAX, new)  # saturate on wrap-around
            out[..., j] = acc
    return out


def _offsets(padded_shape: tuple[int, ...]) -> np.ndarray:
    strides = [int(np.prod(padded_shape[a + 1 :])) for a in range(len(padded_shape))]
    moves = []
    for s in strides:
        moves += [s, -s]
    return np.asarray(moves + [0], dtype=np.int64)


def _metropolis_probabilities(values: np.ndarray, temperature: float) -> np.ndarray:
    """Per padded site, the probability of each of the 2d moves; zero on the sentinel layer."""
    d = values.ndim
    padded = np.pad(values, 1, mode="edge")
    probs = np.zeros(padded.shape + (2 * d,))
    with np.errstate(invalid="ignore", over="ignore"):
        for a in range(d):
            for j, shift in enumerate((-1, 1)):  # neighbour at +1 (roll by -1), then at -1
                neighbour = np.roll(padded, shift, axis=a)
                du = neighbour - padded
                p = np.exp(-np.maximum(du, 0.0) / temperature) / (2 * d)
                probs[..., 2 * a + j] = np.where(np.isnan(p), 0.0, p)
    probs[~np.isfinite(padded)] = 0.0
    inner = tuple(slice(1, -1) for _ in range(d))
    mask = np.ones(padded.shape, dtype=bool)
    mask[inner] = False
    probs[mask] = 0.0  # sentinel layer: absorbing
    return probs.reshape(-1, 2 * d)


def metropolis_lattice(potentials: Potential | Sequence[Potential], temperature: float) -> Lattice:
    """Metropolis hop thresholds of one potential or of several of the same shape and origin.

    Parameters
    ----------
    potentials : Potential or sequence of Potential
        The environment(s).
    temperature : float
        T > 0.

    Returns
    -------
    Lattice
    """
    temp = check_real("temperature", temperature, 0.0, low_open=True)
    pots = [potentials] if isinstance(potentials, Potential) else list(potentials)
    if not pots or not all(isinstance(p, Potential) for p in pots):
        raise TypeError("potential must be a Potential or a non-empty sequence of Potentials")
    shape, origin = pots[0].shape, pots[0].origin
    for p in pots[1:]:
        if p.shape != shape or p.origin != origin:
            raise ValueError(
                f"all potentials must share shape and origin; got {p.shape}/{p.origin} "
                f"and {shape}/{origin}"
            )
    thr = np.stack(
        [_probabilities_to_thresholds(_metropolis_probabilities(p.values, temp)) for p in pots]
    )
    return Lattice(thr, _offsets(tuple(n + 2 for n in shape)), shape, origin)


def rwre_lattice(p: np.ndarray | Sequence[float], origin: int | None = None) -> Lattice:
    """RWRE hop thresholds from hop-right probabilities ``p``, (n_sites,) or (n_env, n_sites)."""
    arr = np.asarray(p, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(
            f"p must have shape (n_sites,) or (n_env, n_sites) with n_sites >= 2, got {np.shape(p)}"
        )
    if not np.all((arr > 0) & (arr < 1)):
        raise ValueError("p must lie in (0, 1)")
    n = arr.shape[1]
    org = n // 2 if origin is None else int(origin)
    if not 0 <= org < n:
        raise ValueError(f"origin must index a site of {n}, got {origin!r}")
    probs = np.zeros((arr.shape[0], n + 2, 2))
    probs[:, 1:-1, 0] = arr
    probs[:, 1:-1, 1] = 1.0 - arr
    return Lattice(_probabilities_to_thresholds(probs), _offsets((n + 2,)), (n,), (org,))


# ----------------------------------------------------------------------------- environments
PotentialLike = Potential | Sequence[Potential] | Callable[[np.random.SeedSequence], Potential]


def _environments(
    potential: PotentialLike, n_walkers: int, shared: bool, seq: np.random.SeedSequence
) -> list[Potential]:
    if isinstance(potential, Potential):
        return [potential]
    if callable(potential):
        n_env = 1 if shared else n_walkers
        pots = [potential(child) for child in seq.spawn(n_env)]
        if not all(isinstance(p, Potential) for p in pots):
            raise TypeError("a potential factory must return Potential objects")
        return pots
    if isinstance(potential, Sequence) and potential:
        return list(potential)
    raise TypeError(
        f"potential must be a Potential, a sequence of Potentials or a factory, "
        f"got {type(potential).__name__}"
    )


def _env_of(n_env: int, n_walkers: int) -> np.ndarray:
    if n_walkers % n_env:
        raise ValueError(
            f"n_walkers={n_walkers} must be a multiple of the number of environments ({n_env})"
        )
    return np.repeat(np.arange(n_env, dtype=np.int64), n_walkers // n_env)


def _starts(lattice: Lattice, start: object, n_walkers: int) -> np.ndarray:
    """Start coordinates relative to the origin, shape (n_walkers, d)."""
    d = lattice.ndim
    if start is None:
        return np.zeros((n_walkers, d), dtype=np.int64)
    arr = np.asarray(start)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"start must hold integer coordinates, got dtype {arr.dtype}")
    if d == 1 and arr.ndim <= 1:
        arr = arr.reshape(-1, 1)
    if arr.shape in ((d,), (1, d)):
        arr = np.broadcast_to(arr.reshape(1, d), (n_walkers, d))
    if arr.shape != (n_walkers, d):
        raise ValueError(
            f"start must have shape ({n_walkers}, {d}) or ({d},) (or ({n_walkers},) in 1D), "
            f"got {np.shape(start)}"
        )
    box = arr + np.asarray(lattice.origin)
    if np.any(box < 0) or np.any(box >= np.asarray(lattice.shape)):
        raise ValueError(
            f"start must lie inside the environment box {lattice.shape} (origin {lattice.origin})"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


# ----------------------------------------------------------------------------- core run
def _run(
    lattice: Lattice,
    env_of: np.ndarray,
    starts: np.ndarray,
    times: np.ndarray,
    t_max: int,
    seq: np.random.SeedSequence,
    edge: str,
) -> np.ndarray:
    """Flat positions at ``times``, shape (len(times), n_walkers), with the edge checks."""
    check_choice("edge", edge, ("detect", "strict"))
    if edge == "strict" and lattice.distance_to_edge(starts) <= t_max:
        raise ValueError(
            f"t_max={t_max} is too long for the environment: a walker can reach its edge in "
            f"{lattice.distance_to_edge(starts)} steps (box {lattice.shape}); pass a larger "
            f"environment or a smaller t_max"
        )
    n_sites = int(np.prod(lattice.padded_shape))
    base = env_of * n_sites  # environments are stacked along the sites
    pos = lattice.flat_index(starts) + base
    state = seq.generate_state(env_of.size, dtype=np.uint64)
    out = np.empty((times.size, env_of.size), dtype=np.int64)
    _kernels.run_walkers(lattice.stacked(), lattice.offsets, pos, state, times, out)
    out -= base[None, :]
    hit = lattice.on_edge(out)
    if hit.any():
        r, w = np.argwhere(hit)[0]
        raise EdgeReachedError(
            f"walker {w} reached the edge of its environment (box {lattice.shape}, "
            f"origin {lattice.origin}) "
            f"by t={times[r]} (t_max={t_max}): pass a larger environment or a smaller t_max"
        )
    return out


def _trace(lattice: Lattice, flat: np.ndarray, starts: np.ndarray, times: np.ndarray) -> Trace:
    coords = lattice.coordinates(flat)
    disp = coords - (starts[:, 0] if lattice.ndim == 1 else starts)[None]
    sq = disp.astype(float) ** 2 if lattice.ndim == 1 else np.sum(disp.astype(float) ** 2, axis=-1)
    msd = sq.mean(axis=1)
    extras = {"positions": coords, "msd": msd, "mean_abs": np.sqrt(sq).mean(axis=1)}
    return Trace(times, np.sqrt(msd), extras)


def simulate_walkers(
    potential: PotentialLike,
    temperature: float,
    t_max: int,
    n_walkers: int,
    *,
    times: np.ndarray | Sequence[int] | None = None,
    seed: int | np.random.SeedSequence = 0,
    shared_environment: bool = True,
    start: np.ndarray | None = None,
    edge: str = "detect",
) -> Trace:
    """Metropolis walkers on a potential, recorded at log-spaced times.

    Parameters
    ----------
    potential : Potential, sequence of Potential, or callable
        One environment shared by all walkers; or several (same shape and origin), the
        walkers split evenly among them; or a factory ``f(seed_sequence) -> Potential``
        called once (``shared_environment=True``) or once per walker (``False``).
    temperature : float
        T > 0.
    t_max : int
        Last time (steps); the default ``times`` end there.
    n_walkers : int
        Number of walkers (>= 1).
    times : array_like of int, optional
        Strictly increasing recording times <= ``t_max``; ``log_schedule(t_max, 10)`` by
        default. A time 0 records the start.
    seed : int or SeedSequence
        Seeds the walkers' generators (one stream per walker, so results do not depend on
        the number of threads) and the factory's environments.
    shared_environment : bool
        With a factory: one environment for all walkers (True) or one per walker (False).
    start : array_like of int, optional
        Start coordinates relative to the origin, shape (n_walkers,) in 1D or
        (n_walkers, d), or one site for all; the origin by default.
    edge : {'detect', 'strict'}
        ``'detect'``: raise :class:`EdgeReachedError` after the run if any walker reached
        the edge of its box. ``'strict'``: refuse beforehand unless the edge is more than
        ``t_max`` steps from every start.

    Returns
    -------
    Trace
        ``distance`` is the root-mean-square displacement from the start over walkers;
        ``extras['positions']`` the coordinates relative to the origin, shape
        (len(t), n_walkers) in 1D or (len(t), n_walkers, d); ``extras['msd']`` the mean
        squared displacement and ``extras['mean_abs']`` the mean |displacement|.

    Raises
    ------
    ValueError
        For T <= 0, a bad count or schedule, or when the environment cannot hold the run
        (:class:`EdgeReachedError`).
    """
    temp = check_real("temperature", temperature, 0.0, low_open=True)
    t_max = check_int("t_max", t_max, 1, _MAX_COUNT)
    n_walkers = check_int("n_walkers", n_walkers, 1, _MAX_COUNT)
    times = _check_times(times, t_max)
    seq = _seed_sequence(seed)
    env_seq, walk_seq = seq.spawn(2)
    pots = _environments(potential, n_walkers, shared_environment, env_seq)
    lattice = metropolis_lattice(pots, temp)
    starts = _starts(lattice, start, n_walkers)
    box = tuple((starts + np.asarray(lattice.origin)).T)
    if any(not np.all(np.isfinite(p.values[box])) for p in pots):
        raise ValueError("start must not be a wall (a site where the potential is +inf)")
    flat = _run(lattice, _env_of(lattice.n_env, n_walkers), starts, times, t_max, walk_seq, edge)
    return _trace(lattice, flat, starts, times)


def simulate_rwre(
    p: np.ndarray | Sequence[float],
    t_max: int,
    n_walkers: int,
    *,
    times: np.ndarray | Sequence[int] | None = None,
    seed: int | np.random.SeedSequence = 0,
    start: np.ndarray | None = None,
    origin: int | None = None,
    edge: str = "detect",
) -> Trace:
    """Walkers in a random environment: hop right with ``p_i``, left with ``1 - p_i``.

    Parameters
    ----------
    p : array_like, shape (n_sites,) or (n_env, n_sites)
        Hop-right probabilities in (0, 1) (e.g. :func:`diffusion.potentials.rwre_environment`);
        a 2D array gives one environment per group of walkers.
    t_max, n_walkers, times, seed, start, edge
        As in :func:`simulate_walkers`.
    origin : int, optional
        Origin site; the centre ``n_sites // 2`` by default.

    Returns
    -------
    Trace
        As in :func:`simulate_walkers`.
    """
    t_max = check_int("t_max", t_max, 1, _MAX_COUNT)
    n_walkers = check_int("n_walkers", n_walkers, 1, _MAX_COUNT)
    times = _check_times(times, t_max)
    lattice = rwre_lattice(p, origin)
    starts = _starts(lattice, start, n_walkers)
    flat = _run(
        lattice, _env_of(lattice.n_env, n_walkers), starts, times, t_max, _seed_sequence(seed), edge
    )
    return _trace(lattice, flat, starts, times)


def final_positions(
    potential: PotentialLike,
    temperature: float,
    t: int,
    n_walkers: int,
    *,
    seed: int | np.random.SeedSequence = 0,
    shared_environment: bool = True,
    start: np.ndarray | None = None,
    edge: str = "detect",
) -> np.ndarray:
    """Positions (relative to the origin) of Metropolis walkers at time ``t`` only.

    Same arguments as :func:`simulate_walkers`; returns shape (n_walkers,) in 1D or
    (n_walkers, d).
    """
    trace = simulate_walkers(
        potential,
        temperature,
        t,
        n_walkers,
        times=[t],
        seed=seed,
        shared_environment=shared_environment,
        start=start,
        edge=edge,
    )
    return trace.extras["positions"][0]


# ----------------------------------------------------------------------------- first passage
@dataclass(frozen=True)
class FirstPassage:
    """First-passage times of walkers started at one site.

    Attributes
    ----------
    times : numpy.ndarray of int64
        Step of first arrival at a target (``max_steps`` where censored).
    side : numpy.ndarray of int8
        +1 reached ``upper``, -1 reached ``lower``, 0 censored (no arrival by ``max_steps``).
    max_steps : int
        The cap.
    """

    times: np.ndarray
    side: np.ndarray
    max_steps: int

    @property
    def n_censored(self) -> int:
        return int(np.sum(self.side == 0))

    def mean(self) -> tuple[float, float]:
        """Mean first-passage time and its standard error; refuses censored samples."""
        if self.n_censored:
            raise ValueError(
                f"{self.n_censored} walkers did not arrive within max_steps={self.max_steps}; "
                f"the mean would be biased -- raise max_steps"
            )
        t = self.times.astype(float)
        return float(t.mean()), float(t.std(ddof=1) / np.sqrt(t.size)) if t.size > 1 else float(
            "nan"
        )

    def fraction_upper(self) -> float:
        """Fraction of arrived walkers that reached ``upper`` (the splitting probability)."""
        arrived = self.side != 0
        return float(np.mean(self.side[arrived] == 1)) if arrived.any() else float("nan")


def first_passage_times(
    potential: Potential,
    temperature: float,
    n_walkers: int,
    *,
    upper: int,
    lower: int | None = None,
    start: int = 0,
    max_steps: int = 10**9,
    seed: int | np.random.SeedSequence = 0,
) -> FirstPassage:
    """First-passage times of 1D Metropolis walkers to ``upper`` (or ``lower``).

    Parameters
    ----------
    potential : Potential
        A 1D potential (``+inf`` entries are reflecting walls).
    temperature : float
        T > 0.
    n_walkers : int
        Number of independent walkers, all started at ``start``.
    upper : int
        Absorbing site (coordinate relative to the origin), ``> start``.
    lower : int, optional
        A second absorbing site ``< start``; none by default.
    start : int
        Start coordinate, relative to the origin.
    max_steps : int
        Cap on each walker's run; walkers that have not arrived are censored.
    seed : int or SeedSequence
        Seeds the walkers' generators.

    Returns
    -------
    FirstPassage

    Raises
    ------
    EdgeReachedError
        If a walker reaches the edge of the environment (no ``lower`` and no wall).
    """
    if not isinstance(potential, Potential) or potential.ndim != 1:
        raise TypeError("potential must be a one-dimensional Potential")
    n_walkers = check_int("n_walkers", n_walkers, 1, _MAX_COUNT)
    max_steps = check_int("max_steps", max_steps, 1, _MAX_COUNT)
    lattice = metropolis_lattice(potential, temperature)
    for name, value in (("upper", upper), ("start", start)) + (
        (("lower", lower),) if lower is not None else ()
    ):
        value = check_int(name, value)
        if not -lattice.origin[0] <= value < lattice.shape[0] - lattice.origin[0]:
            raise ValueError(
                f"{name}={value} lies outside the environment (coordinates "
                f"{-lattice.origin[0]}..{lattice.shape[0] - 1 - lattice.origin[0]})"
            )
    if not upper > start or (lower is not None and not lower < start):
        raise ValueError(
            f"need lower < start < upper, got lower={lower}, start={start}, upper={upper}"
        )
    up = int(lattice.flat_index(np.array([upper]))[0])
    lo = int(lattice.flat_index(np.array([lower]))[0]) if lower is not None else -1
    pos = np.full(n_walkers, lattice.flat_index(np.array([start]))[0], dtype=np.int64)
    state = _seed_sequence(seed).generate_state(n_walkers, dtype=np.uint64)
    t_hit = np.empty(n_walkers, dtype=np.int64)
    side = np.empty(n_walkers, dtype=np.int8)
    _kernels.first_passage_1d(
        lattice.stacked(),
        lattice.offsets,
        pos,
        state,
        lo,
        up,
        0,
        lattice.shape[0] + 1,
        max_steps,
        t_hit,
        side,
    )
    if np.any(side == 2):
        w = int(np.argmax(side == 2))
        raise EdgeReachedError(
            f"walker {w} reached the edge of the environment (box {lattice.shape}) at "
            f"step {t_hit[w]} before reaching upper={upper}: pass a larger environment, "
            f"a wall or a lower target"
        )
    return FirstPassage(t_hit, side, max_steps)


# ----------------------------------------------------------------------------- equilibrium
def sample_equilibrium(
    potential: Potential,
    temperature: float,
    n_walkers: int,
    *,
    seed: int | np.random.SeedSequence = 0,
    region: tuple[slice, ...] | slice | None = None,
) -> np.ndarray:
    """Start coordinates drawn from ``pi ~ exp(-U/T)`` restricted to a region of the box.

    Parameters
    ----------
    potential : Potential
        The environment.
    temperature : float
        T > 0.
    n_walkers : int
        Number of draws.
    seed : int or SeedSequence
        Source of randomness.
    region : slice or tuple of slices, optional
        Box indices to draw from (e.g. one period of a periodic potential); the whole box by
        default.

    Returns
    -------
    numpy.ndarray of int64
        Coordinates relative to the origin, shape (n_walkers,) in 1D or (n_walkers, d).
    """
    temp = check_real("temperature", temperature, 0.0, low_open=True)
    n_walkers = check_int("n_walkers", n_walkers, 1, _MAX_COUNT)
    if not isinstance(potential, Potential):
        raise TypeError(f"potential must be a Potential, got {type(potential).__name__}")
    if region is None:
        region = tuple(slice(None) for _ in range(potential.ndim))
    elif isinstance(region, slice):
        region = (region,)
    grids = np.meshgrid(
        *[np.arange(n)[s] for n, s in zip(potential.shape, region, strict=True)], indexing="ij"
    )
    sub = potential.values[tuple(region)]
    logw = -sub / temp
    w = np.exp(logw - logw[np.isfinite(logw)].max()).ravel()
    rng = np.random.default_rng(_seed_sequence(seed))
    pick = rng.choice(w.size, size=n_walkers, p=w / w.sum())
    coords = np.stack([g.ravel()[pick] for g in grids], axis=-1) - np.asarray(potential.origin)
    return coords[:, 0] if potential.ndim == 1 else coords


# ----------------------------------------------------------------------------- time estimate
def measured_rate(n_walkers: int = 512, steps: int = 20_000) -> float:
    """Walker-steps per second of the compiled Metropolis kernel, measured now.

    One Brownian landscape of 4,001 sites, ``n_walkers`` walkers for ``steps`` steps, after a
    warm-up call that loads the compiled kernel. Large environments (one per walker, long
    times) miss the caches and run slower, so a time derived from this rate is optimistic.

    Returns
    -------
    float
        Walker-steps per second.
    """
    from diffusion.potentials import brownian_potential

    n_walkers = check_int("n_walkers", n_walkers, 1, _MAX_COUNT)
    steps = check_int("steps", steps, 1, _MAX_COUNT)
    pot = brownian_potential(4001, 1.0, seed=0)
    simulate_walkers(pot, 1.0, 10, 8, times=[10])
    start = time.perf_counter()
    simulate_walkers(pot, 1.0, steps, n_walkers, times=[steps])
    return n_walkers * steps / max(time.perf_counter() - start, 1e-9)


def estimate_walk_seconds(n_walkers: int, t_max: float, rate: float | None = None) -> float:
    """Seconds a direct walk of ``n_walkers`` walkers to ``t_max`` takes at ``rate``.

    Parameters
    ----------
    n_walkers : int
        Walkers (>= 1).
    t_max : float
        Last time (steps, >= 1).
    rate : float, optional
        Walker-steps per second; :func:`measured_rate` when None.
    """
    n_walkers = check_int("n_walkers", n_walkers, 1, _MAX_COUNT)
    t_max = check_real("t_max", t_max, 1.0)
    rate = measured_rate() if rate is None else check_real("rate", rate, 0.0, low_open=True)
    return n_walkers * t_max / rate
