"""Train many runs: the one place where the sweeps (table, distance, lawmap) fan out.

:func:`train_many` trains (or reuses) a list of ``deep.train.TrainConfig`` in order, ``n_jobs``
at a time through joblib (processes; each gets its share of the CPU threads), and reports
progress -- runs done, elapsed time and an estimate of the time left -- one line per finished
run. Every run is an ordinary trainer run folder, so an interrupted sweep resumes: finished
runs are reused and an unfinished one continues from its checkpoint.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from diffusion.records import Run

__all__ = ["train_many"]


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
    if n_jobs == 1:
        for c in configs:
            out.append(_train_one(c, str(runs), 0, runtime))
            report(len(out), out[-1])
        return out
    from joblib import Parallel, delayed

    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    jobs = (delayed(_train_one)(c, str(runs), threads, runtime) for c in configs)
    for run in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
        out.append(run)
        report(len(out), run)
    return out
