"""Train many runs: the one place where the sweeps (table, distance, lawmap) fan out.

:func:`train_many` trains (or reuses) a list of ``deep.train.TrainConfig`` in order, ``n_jobs``
at a time through joblib, and reports progress -- runs done, elapsed time and an estimate of
the time left -- one line per finished run. Every run is an ordinary trainer run folder, so an
interrupted sweep resumes: finished runs are reused and an unfinished one continues from its
checkpoint.

The joblib backend is an execution choice (:data:`BACKENDS`), never part of a run's
identity: ``"loky"`` (processes on this machine; each gets its share of the CPU threads) or
``"dask"`` (the workers of a ``dask.distributed`` cluster: a scheduler address, or a
``LocalCluster`` started for the sweep; ``pip install -e '.[cluster]'``). With dask the run
folder must be on a file system that every worker sees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from diffusion.records import Run, find_run, run_dir, save_run, to_jsonable

__all__ = [
    "BACKENDS",
    "train_many",
    "parallel_backend",
    "add_backend_arguments",
    "save_sweep",
    "print_result",
    "finite_or_none",
]

BACKENDS = ("loky", "dask")
"""joblib backends a sweep can run on."""


@contextlib.contextmanager
def parallel_backend(backend: str = "loky", scheduler: str | None = None) -> Iterator[None]:
    """Run the joblib calls of the block on ``backend``.

    Parameters
    ----------
    backend : {"loky", "dask"}
        ``"dask"`` connects to ``scheduler`` (``"tcp://host:8786"``) or, when it is ``None``,
        starts a ``dask.distributed.LocalCluster`` for the block and closes it after.
    scheduler : str, optional
        Address of a running dask scheduler (only with ``backend="dask"``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "loky":
        if scheduler is not None:
            raise ValueError("scheduler is only used with backend='dask'")
        yield
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise ValueError(
            "backend 'dask' needs dask.distributed: pip install -e '.[cluster]'"
        ) from None
    from joblib import parallel_config

    client = Client(scheduler) if scheduler else Client(processes=True, threads_per_worker=1)
    try:
        with parallel_config(backend="dask"):
            yield
    finally:
        client.close()


def _train_one(config: Any, runs: str, threads: int, runtime: Any) -> Run:
    import torch

    from .train import train

    if threads > 0:
        torch.set_num_threads(threads)
    return train(config, runs, runtime=runtime)


def train_many(
    configs: list[Any],
    runs: str | os.PathLike,
    *,
    runtime: Any = None,
    n_jobs: int = 1,
    label: str | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
) -> list[Run]:
    """Train (or reuse) ``configs``; the finished runs, in the same order.

    Parameters
    ----------
    configs : list of deep.train.TrainConfig
        The runs.
    runs : path
        Folder of the run folders.
    runtime : deep.train.Runtime, optional
        Device, data root, threads of every run (a quiet CPU/auto runtime by default).
    n_jobs : int
        Runs trained at once (joblib processes); 1 trains in this process.
    label : str, optional
        When given, one progress line per finished run goes to stderr, prefixed ``[label]``.
    backend : {"loky", "dask"}
        Where the runs execute when ``n_jobs > 1`` or ``backend="dask"`` (see
        :func:`parallel_backend`).
    scheduler : str, optional
        Address of a dask scheduler (``backend="dask"``; a local cluster when omitted).

    Returns
    -------
    list of diffusion.records.Run
    """
    from .train import Runtime

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    runtime = runtime or Runtime(progress=False)
    runs = Path(runs)
    runs.mkdir(parents=True, exist_ok=True)
    total, start = len(configs), time.perf_counter()

    def report(done: int, run: Run) -> None:
        if label is None:
            return
        elapsed = time.perf_counter() - start
        left = elapsed / done * (total - done)
        acc = run.summary.get("final_val_acc")
        acc_text = f", val acc {100 * acc:.2f}" if isinstance(acc, float) else ""
        print(
            f"[{label}] {done}/{total} runs done ({elapsed:.0f} s, about {left:.0f} s left); "
            f"last: {run.path.name} (B={run.config.get('batch_size')}{acc_text})",
            file=sys.stderr,
            flush=True,
        )

    out: list[Run] = []
    if n_jobs == 1 and backend == "loky":
        for c in configs:
            out.append(_train_one(c, str(runs), 0, runtime))
            report(len(out), out[-1])
        return out
    from joblib import Parallel, delayed

    threads = max(1, (os.cpu_count() or 1) // n_jobs) if backend == "loky" else 1
    # dask workers may start elsewhere: they get the absolute folder, the caller its own path
    where = str(runs.resolve()) if backend == "dask" else str(runs)
    jobs = (delayed(_train_one)(c, where, threads, runtime) for c in configs)
    with parallel_backend(backend, scheduler):
        for run in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
            out.append(dataclasses.replace(run, path=runs / run.path.name))
            report(len(out), out[-1])
    return out


def add_backend_arguments(parser: Any) -> None:
    """Add ``--backend`` and ``--scheduler`` to a sweep's command line."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="loky",
        help="where the runs execute: loky (processes here) or dask (a cluster)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="dask scheduler address, e.g. tcp://host:8786 (default: a local cluster)",
    )


def save_sweep(
    runs: str | os.PathLike, config: Any, records: dict, summary: dict, *, force: bool = False
) -> Path:
    """Write a sweep's own run folder unless it already holds exactly this summary.

    A sweep's summary is derived from its training runs (fits and checks), so it is rewritten
    whenever it would read differently -- for instance after the checks gained a number --
    and left alone otherwise (``force`` rewrites it anyway). Only rank 0 writes under
    ``torchrun``.
    """
    path = run_dir(runs, config)
    if int(os.environ.get("RANK", "0")) != 0:
        return path
    stored = None if force else find_run(runs, config)
    if stored is None or stored.summary != to_jsonable(summary, "summary"):
        save_run(runs, config, records, summary)
    return path


def print_result(result: Any, as_json: bool, footer: str) -> None:
    """Print a sweep's result: its summary as JSON, or its table and ``footer``."""
    if as_json:
        print(json.dumps(to_jsonable(result.as_dict(), "result"), indent=1))
    else:
        print(result.table())
        print(footer)


def finite_or_none(value: float | None) -> float | None:
    """``value``, or ``None`` where it is missing or not finite (JSON has no NaN)."""
    return float(value) if value is not None and math.isfinite(value) else None
