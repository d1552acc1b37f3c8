"""Overdamped Langevin dynamics on a continuous potential, and its first-passage times.

``dx = -grad U(x) dt + sqrt(2 T) dW`` (unit mobility), integrated by Euler--Maruyama for many
walkers at once (numpy, vectorised over walkers); the stationary density is ``exp(-U/T)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from diffusion.metrics import Trace, log_schedule
from diffusion.validation import check_array, check_int, check_real

__all__ = ["LangevinResult", "langevin", "LangevinPassage", "langevin_first_passage"]

ArrayFn = Callable[[np.ndarray], np.ndarray]


def _positions(x0: object) -> np.ndarray:
    x = np.array(check_array("x0", x0), dtype=float)  # a copy: the walkers move in place
    if x.ndim == 0:
        x = x.reshape(1)
    if x.ndim not in (1, 2):
        raise ValueError(
            f"x0 must be positions of shape (n_walkers,) or (n_walkers, d), got shape {x.shape}"
        )
    return x


def _rng(seed: object) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(
        seed, (Integral, np.random.SeedSequence, np.random.Generator)
    ):
        raise TypeError(f"seed must be an int, SeedSequence or Generator, got {seed!r}")
    return np.random.default_rng(seed)


@dataclass(frozen=True)
class LangevinResult:
    """Recorded Langevin trajectories.

    Attributes
    ----------
    steps : numpy.ndarray of int64
        Recorded step numbers (time = ``steps * dt``).
    dt : float
        Time step.
    positions : numpy.ndarray
        Shape (len(steps), n_walkers) or (len(steps), n_walkers, d).
    energy : numpy.ndarray or None
        ``U`` at the recorded positions, shape (len(steps), n_walkers); None without a
        potential function.
    x0 : numpy.ndarray
        Start positions.
    """

    steps: np.ndarray
    dt: float
    positions: np.ndarray
    energy: np.ndarray | None
    x0: np.ndarray

    @property
    def time(self) -> np.ndarray:
        return self.steps * self.dt

    def trace(self) -> Trace:
        """RMS displacement from the start over walkers against the step number."""
        disp = self.positions - self.x0[None]
        sq = disp**2 if disp.ndim == 2 else np.sum(disp**2, axis=-1)
        extras = {"positions": self.positions, "msd": sq.mean(axis=1)}
        if self.energy is not None:
            extras["energy"] = self.energy
        return Trace(self.steps, np.sqrt(sq.mean(axis=1)), extras)


def langevin(
    potential_fn: ArrayFn | None,
    grad_fn: ArrayFn,
    x0: np.ndarray | float,
    temperature: float,
    dt: float,
    n_steps: int,
    seed: int | np.random.Generator = 0,
    times: np.ndarray | None = None,
) -> LangevinResult:
    """Euler--Maruyama integration of overdamped Langevin dynamics for many walkers.

    ``x <- x - grad_fn(x) dt + sqrt(2 T dt) xi`` with standard normal ``xi``.

    Parameters
    ----------
    potential_fn : callable or None
        ``U(x)`` evaluated on an array of positions (recorded as ``energy``); optional.
    grad_fn : callable
        ``U'(x)`` (or the gradient, same shape as ``x``) evaluated on an array of positions.
    x0 : array_like
        Start positions, shape (n_walkers,) or (n_walkers, d).
    temperature : float
        T > 0.
    dt : float
        Time step > 0.
    n_steps : int
        Number of steps.
    seed : int or Generator
        Source of the noise.
    times : array_like of int, optional
        Steps at which to record (increasing, <= n_steps); ``log_schedule(n_steps)`` with
        step 0 by default.

    Returns
    -------
    LangevinResult
    """
    temp = check_real("temperature", temperature, 0.0, low_open=True)
    step = check_real("dt", dt, 0.0, low_open=True)
    n = check_int("n_steps", n_steps, 1)
    x = _positions(x0)
    rec = log_schedule(n, 10, start=0) if times is None else np.asarray(times, dtype=np.int64)
    if rec.ndim != 1 or rec.size == 0 or rec[0] < 0 or rec[-1] > n or np.any(np.diff(rec) <= 0):
        raise ValueError(f"times must be increasing steps in [0, n_steps={n}]")
    rng = _rng(seed)
    noise = np.sqrt(2 * temp * step)
    start = x.copy()
    out = np.empty((rec.size,) + x.shape)
    energy = np.empty((rec.size, x.shape[0])) if potential_fn is not None else None
    done = 0
    for r, target in enumerate(rec):
        for _ in range(target - done):
            x = x - grad_fn(x) * step + noise * rng.standard_normal(x.shape)
        done = int(target)
        out[r] = x
        if energy is not None:
            energy[r] = np.asarray(potential_fn(x)).reshape(x.shape[0])
    return LangevinResult(rec, step, out, energy, start)


@dataclass(frozen=True)
class LangevinPassage:
    """First-passage times of 1D Langevin walkers to a target.

    Attributes
    ----------
    times : numpy.ndarray of float
        Time (``steps * dt``) of first arrival; ``max_steps * dt`` where censored.
    arrived : numpy.ndarray of bool
        Whether each walker arrived within ``max_steps``.
    dt : float
        Time step.
    """

    times: np.ndarray
    arrived: np.ndarray
    dt: float

    def mean(self) -> tuple[float, float]:
        """Mean first-passage time and its standard error; refuses censored samples."""
        if not self.arrived.all():
            raise ValueError(
                f"{int((~self.arrived).sum())} walkers did not arrive; raise max_steps"
            )
        return float(self.times.mean()), float(self.times.std(ddof=1) / np.sqrt(self.times.size))

    def rate(self) -> tuple[float, float]:
        """Escape rate and its standard error, treating arrivals as exponential (censored MLE).

        ``k = (number arrived) / (total time observed, censored walkers included)``, standard
        error ``k / sqrt(number arrived)``. Appropriate for escape over a barrier, whose
        waiting time is exponential up to a short transient.
        """
        n = int(self.arrived.sum())
        if n == 0:
            raise ValueError("no walker arrived; raise max_steps")
        k = n / float(self.times.sum())
        return k, k / np.sqrt(n)


def langevin_first_passage(
    grad_fn: ArrayFn,
    x0: float,
    target: float,
    temperature: float,
    dt: float,
    n_walkers: int,
    max_steps: int,
    seed: int | np.random.Generator = 0,
    chunk: int = 256,
) -> LangevinPassage:
    """First time 1D Langevin walkers started at ``x0`` reach ``target``.

    Walkers that have arrived are dropped from the integration every ``chunk`` steps; the
    arrival step inside a chunk is exact (the first step at or beyond the target).

    Parameters
    ----------
    grad_fn : callable
        ``U'(x)`` on an array of positions.
    x0, target : float
        Start and absorbing point (``target`` on either side of ``x0``).
    temperature, dt : float
        T > 0 and the time step > 0.
    n_walkers : int
        Number of independent walkers.
    max_steps : int
        Cap on the number of steps; later arrivals are censored.
    seed : int or Generator
        Source of the noise.
    chunk : int
        Steps between removals of arrived walkers.

    Returns
    -------
    LangevinPassage
    """
    temp = check_real("temperature", temperature, 0.0, low_open=True)
    step = check_real("dt", dt, 0.0, low_open=True)
    n_w = check_int("n_walkers", n_walkers, 1)
    cap = check_int("max_steps", max_steps, 1)
    chunk = check_int("chunk", chunk, 1)
    start, goal = check_real("x0", x0), check_real("target", target)
    if start == goal:
        raise ValueError(f"x0 and target must be distinct, got x0={x0!r}, target={target!r}")
    sign = 1.0 if goal > start else -1.0
    rng = _rng(seed)
    noise = np.sqrt(2 * temp * step)
    hit = np.full(n_w, cap, dtype=np.int64)
    active = np.arange(n_w)
    x = np.full(n_w, start)
    done = 0
    while active.size and done < cap:
        n = min(chunk, cap - done)
        first = np.full(active.size, -1, dtype=np.int64)
        for k in range(n):
            x = x - grad_fn(x) * step + noise * rng.standard_normal(x.size)
            new = (first < 0) & (sign * (x - goal) >= 0)
            first[new] = done + k + 1
        arrived = first >= 0
        hit[active[arrived]] = first[arrived]
        active, x = active[~arrived], x[~arrived]
        done += n
    arrived_mask = np.ones(n_w, dtype=bool)
    arrived_mask[active] = False
    return LangevinPassage(hit * step, arrived_mask, step)
