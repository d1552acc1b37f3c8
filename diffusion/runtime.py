"""Where and how a run executes, shared by every layer: :class:`Runtime`.

A run's identity is its configuration (a frozen dataclass whose hash names the run folder,
:mod:`diffusion.records`). Everything that changes how fast or where a run is computed but
not what it computes -- device, data folder, processes, threads, progress output,
checkpoint cadence -- is a :class:`Runtime`, which is never hashed: the same configuration
run with two runtimes finds the same folder.

Every runner takes it the same way, ``run(config, runs, *, runtime=None, force=False)``
(:func:`diffusion.records.run`), and uses the fields that apply to it:

==========================  ======================================================================
field                       used by
==========================  ======================================================================
``device``, ``data_root``   the deep layer (torch device, folder of user data files)
``jobs``                    sweeps: child runs computed at once (joblib processes)
``threads``                 numba threads of a walk, torch intra-op threads of a training run
``progress``                progress bars / lines where a runner has progress to report
``checkpoint_interval_s``,  the deep trainer's checkpoint cadence
``checkpoint_every``
==========================  ======================================================================

A runner ignores the fields that do not apply to it (each runner's docstring says which).
This module imports no layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from diffusion.validation import check_bool, check_choice, check_int, check_real

__all__ = ["Runtime", "DEVICES", "check_runtime"]

DEVICES = ("auto", "cpu", "cuda")
"""Accepted values of :attr:`Runtime.device`."""


@dataclass(frozen=True)
class Runtime:
    """Where and how a run executes; never part of its identity (not hashed).

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` is CUDA when available (deep layer only).
    data_root : str or pathlib.Path, optional
        Folder of user data files (``mnist``, ``cifar10``, ``cifar100``, ``imagenet``).
    jobs : int
        Child runs of a sweep computed at once (joblib processes); 1 computes them in this
        process, one after the other.
    threads : int, optional
        Threads of one run: numba threads for a walk, torch intra-op threads for training
        (the process's setting is restored after); ``None`` leaves it alone.
    progress : bool
        Report progress (a bar or one line per finished child) where a runner has any.
    checkpoint_interval_s : float
        Write a checkpoint when this many seconds have passed since the last one (and always
        at the end), so an interrupted run resumes mid-run; ``inf`` for only at the end.
    checkpoint_every : int, optional
        Also write a checkpoint every so many steps.

    Raises
    ------
    TypeError
        A field of the wrong type (``threads=2.0``, ``progress=1``).
    ValueError
        A field out of range (``device="gpu"``, ``jobs=0``, ``checkpoint_interval_s=-1``).
    """

    device: str = "auto"
    data_root: str | Path | None = None
    jobs: int = 1
    threads: int | None = None
    progress: bool = True
    checkpoint_interval_s: float = 60.0
    checkpoint_every: int | None = None

    def __post_init__(self) -> None:
        check_choice("device", self.device, DEVICES)
        if self.data_root is not None and not isinstance(self.data_root, (str, Path)):
            raise TypeError(
                f"data_root must be a path or None, got {type(self.data_root).__name__} "
                f"({self.data_root!r})"
            )
        object.__setattr__(self, "jobs", check_int("jobs", self.jobs, 1))
        for name in ("threads", "checkpoint_every"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_int(name, getattr(self, name), 1))
        object.__setattr__(self, "progress", check_bool("progress", self.progress))
        interval = self.checkpoint_interval_s
        if isinstance(interval, float) and interval == math.inf:
            return  # inf: a checkpoint only at the end
        try:
            interval = check_real("checkpoint_interval_s", interval, 0)
        except ValueError:
            raise ValueError(
                f"checkpoint_interval_s must be a number >= 0 (inf: only at the end), "
                f"got {interval!r}"
            ) from None
        object.__setattr__(self, "checkpoint_interval_s", interval)


def check_runtime(runtime: object, default: Runtime | None = None) -> Runtime | None:
    """A runner's ``runtime`` argument: itself if a :class:`Runtime`, ``default`` if ``None``.

    Raises
    ------
    TypeError
        When ``runtime`` is neither ``None`` nor a :class:`Runtime`.
    """
    if runtime is None:
        return default
    if not isinstance(runtime, Runtime):
        raise TypeError(
            f"runtime must be a diffusion.runtime.Runtime or None, got {type(runtime).__name__}"
        )
    return runtime
