"""One walk over many seeds: independent replicas, and their mean +- sd.

A :class:`WalkSweepConfig` is a :class:`~diffusion.experiments.WalkConfig` whose single
``seed`` is replaced by ``seeds``. :func:`run_walk_sweep` is a run like any other (folder
``walksweep-<hash>``, :mod:`diffusion.records`) whose computation runs the walk of every seed
(:func:`diffusion.experiments.run_walk`, each its own ``walk-<hash>`` folder, reused when it
is finished) and aggregates them. This is the project's "independent replicas" error bar:
every seed draws new environments and new walkers, so the spread over seeds is the spread of
the whole experiment -- for the shared-environment models ('bounded', 'field'), whose
within-run bootstrap is impossible, it is the only one.

What the sweep folder holds
---------------------------
``summary.json``
    ``seeds`` and ``runs`` (the child folder names, in seed order); ``parameters``: for every
    growth-law parameter fitted in the children (``"<law>.<param>"``, e.g. ``"polylog.k"``)
    and ``scalars``: for every number in the child summaries (nested keys joined by dots,
    e.g. ``"theory.kesten_mean_abs_measured"``) -- each as ``{"mean", "sd", "n", "values"}``
    over the seeds where it is a finite number (``sd`` with ``ddof=1``, ``None`` for
    ``n < 2``; ``values`` per seed, ``None`` where missing); ``distance_last`` the same for
    the distance at the last recorded time; ``choice_frequency``, how often each law was
    the reported one; ``common_grid``.
``records.npz``
    When the children share one time grid (they do: equal configurations give equal
    schedules), a trace on it: ``distance`` the mean over seeds, extras ``sd`` (over seeds,
    ``ddof=1``; NaN for one seed) and ``per_seed`` (times x seeds), so ``run.trace()`` is
    the mean trace. Otherwise each child's ``t``/``distance`` under the prefix
    ``seed<s>.``.

``force`` recomputes the aggregate only; finished children are always reused (force a
child with :func:`~diffusion.experiments.run_walk`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from diffusion.experiments import METHODS, POTENTIALS, WalkConfig, run_walk
from diffusion.metrics import Trace
from diffusion.records import Run, find_run, load_run, register_runner, run_or_load
from diffusion.runtime import Runtime, check_runtime
from diffusion.validation import check_int

__all__ = [
    "WalkSweepConfig",
    "run_walk_sweep",
    "walk_children",
    "aggregate",
    "sweep_table",
    "parse_seeds",
    "add_parser",
]


@dataclass(frozen=True)
class WalkSweepConfig:
    """One walk experiment over several seeds (every field but ``seeds`` as in WalkConfig).

    Every field but ``seeds`` means what it means in
    :class:`diffusion.experiments.WalkConfig`, which validates it.

    Parameters
    ----------
    potential : {'sinai', 'fbm', 'bounded', 'field'}
        Model (see :mod:`diffusion.experiments`).
    hurst : float
        H in (0, 1) for 'fbm' and the fractional field (ignored otherwise).
    dim : int
        Lattice dimension, 1 to 3 (only 'field' allows 2 and 3).
    walkers : int
        Number of walkers of each seed (for 'coarse': environments, one walker each).
    t_max : float
        Last time; up to 1e12 for 'direct', any finite value > 10 for 'coarse'.
    method : {'direct', 'coarse'}
        Simulation method.
    temperature : float
        ``T > 0``.
    sigma : float
        Scale of the potential, ``>= 0`` (``> 0`` for 'coarse').
    correlation_length : float
        Range of 'bounded' (integer sites) and of the short-range 'field'.
    field_kind : {'short', 'fractional'}
        Covariance of 'field'.
    per_decade : int
        Recorded times per decade of t.
    half_width : int or None
        Half-width of the environment box; chosen from ``t_max`` when None.
    seeds : tuple of int
        Distinct seeds >= 0, one walk each; kept sorted, so their order does not name a
        different sweep.
    """

    KIND: ClassVar[str] = "walksweep"

    potential: str = "sinai"
    hurst: float = 0.5
    dim: int = 1
    walkers: int = 1000
    t_max: float = 1e8
    method: str = "direct"
    temperature: float = 1.0
    sigma: float = 1.0
    correlation_length: float = 0.0
    field_kind: str = "short"
    per_decade: int = 10
    half_width: int | None = None
    seeds: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self) -> None:
        seeds = self.seeds
        if isinstance(seeds, (str, bytes, Mapping)) or not isinstance(
            seeds, (Sequence, np.ndarray, range)
        ):
            raise TypeError(
                f"seeds must be a sequence of integers, got {type(seeds).__name__} ({seeds!r})"
            )
        seeds = tuple(check_int(f"seeds[{i}]", s, 0) for i, s in enumerate(seeds))
        if not seeds:
            raise ValueError("seeds must hold at least one seed, got ()")
        if len(set(seeds)) != len(seeds):
            repeated = sorted({s for s in seeds if seeds.count(s) > 1})
            raise ValueError(f"seeds must be distinct, got {seeds!r} (repeated: {repeated})")
        object.__setattr__(self, "seeds", tuple(sorted(seeds)))
        child = self.walk_config(self.seeds[0])  # WalkConfig validates and normalises
        for name in _shared_fields():
            object.__setattr__(self, name, getattr(child, name))

    def walk_config(self, seed: int) -> WalkConfig:
        """The walk of one seed."""
        return WalkConfig(**{name: getattr(self, name) for name in _shared_fields()}, seed=seed)

    def walk_configs(self) -> tuple[WalkConfig, ...]:
        """The walks of all seeds, in seed order."""
        return tuple(self.walk_config(s) for s in self.seeds)

    @classmethod
    def from_walk(cls, config: WalkConfig, seeds: Sequence[int]) -> WalkSweepConfig:
        """The sweep of ``config`` (its ``seed`` ignored) over ``seeds``."""
        if not isinstance(config, WalkConfig):
            raise TypeError(f"config must be a WalkConfig, got {type(config).__name__}")
        return cls(**{name: getattr(config, name) for name in _shared_fields()}, seeds=seeds)


def _shared_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(WalkConfig) if f.name != "seed")


# ----------------------------------------------------------------------------- children
def _walk_folder(config: WalkConfig, runs: str, runtime: Runtime) -> str:
    """Run one child in a worker; its folder name (the parent loads it: no big pickles)."""
    return run_walk(config, runs, runtime=runtime).path.name


def walk_children(
    config: WalkSweepConfig, runs: str | os.PathLike = "runs", runtime: Runtime | None = None
) -> list[Run]:
    """The finished walk of every seed, in seed order: reused when finished, else computed.

    Unfinished children run ``runtime.jobs`` at once (joblib processes, each with
    ``runtime.threads`` numba threads, or its share of the cores); with
    ``runtime.progress`` one line per finished child goes to stderr.
    """
    runtime = Runtime(progress=False) if runtime is None else runtime
    runs = Path(runs)
    configs = config.walk_configs()
    out: list[Run | None] = [find_run(runs, c) for c in configs]
    todo = [i for i, r in enumerate(out) if r is None]
    start = time.perf_counter()

    def report(i: int, done: int) -> None:
        if runtime.progress:
            print(
                f"[walksweep] {done}/{len(todo)} seeds computed ({len(configs) - len(todo)} "
                f"reused, {time.perf_counter() - start:.0f} s); last: seed {config.seeds[i]} "
                f"-> {out[i].path.name}",
                file=sys.stderr,
                flush=True,
            )

    if runtime.jobs == 1 or len(todo) <= 1:
        quiet = dataclasses.replace(runtime, progress=False)
        for done, i in enumerate(todo, 1):
            out[i] = run_walk(configs[i], runs, runtime=quiet)
            report(i, done)
    else:
        from joblib import Parallel, delayed

        jobs = min(runtime.jobs, len(todo))
        threads = runtime.threads or max(1, (os.cpu_count() or 1) // jobs)
        child = dataclasses.replace(runtime, jobs=1, threads=threads, progress=False)
        calls = (delayed(_walk_folder)(configs[i], str(runs), child) for i in todo)
        results = Parallel(n_jobs=jobs, return_as="generator")(calls)
        for done, (i, name) in enumerate(zip(todo, results, strict=True), 1):
            out[i] = load_run(runs / name)
            report(i, done)
    return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------- aggregate
def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(float(value))
    )


def _numbers(obj: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every finite number in nested dicts, with its dotted key (lists are not entered)."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _numbers(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
    elif _is_number(obj):
        yield prefix, float(obj)


def _stats(values: Sequence[float | None]) -> dict:
    """Mean, sample sd (ddof=1) and count over the seeds where a value is present."""
    present = np.array([v for v in values if v is not None], dtype=float)
    n = int(present.size)
    return {
        "mean": float(present.mean()) if n else None,
        "sd": float(present.std(ddof=1)) if n >= 2 else None,
        "n": n,
        "values": list(values),
    }


def _over_seeds(per_seed: list[dict[str, float]]) -> dict[str, dict]:
    keys = list(dict.fromkeys(k for d in per_seed for k in d))
    return {k: _stats([d.get(k) for d in per_seed]) for k in keys}


def _fit_parameters(summary: Mapping) -> dict[str, float]:
    fits = (summary.get("fit") or {}).get("fits") or {}
    return {
        f"{law}.{name}": float(value)
        for law, fit in fits.items()
        for name, value in (fit.get("params") or {}).items()
        if _is_number(value)
    }


def aggregate(seeds: Sequence[int], children: Sequence[Run]) -> tuple[dict, dict]:
    """``(records, summary)`` of a sweep from its children's runs (see the module docstring)."""
    seeds = [int(s) for s in seeds]
    traces = [r.trace() for r in children]
    common = all(np.array_equal(tr.t, traces[0].t) for tr in traces)
    records: dict[str, np.ndarray] = {"seeds": np.asarray(seeds, dtype=np.int64)}
    if common:
        per_seed = np.column_stack([tr.distance.astype(float) for tr in traces])
        sd = (
            per_seed.std(axis=1, ddof=1) if len(traces) >= 2 else np.full(per_seed.shape[0], np.nan)
        )
        mean = Trace(traces[0].t, per_seed.mean(axis=1), {"sd": sd, "per_seed": per_seed})
        records.update(mean.to_arrays())
    else:
        for s, tr in zip(seeds, traces, strict=True):
            records.update(Trace(tr.t, tr.distance).to_arrays(f"seed{s}."))
    choices = Counter(str((r.summary.get("fit") or {}).get("choice")) for r in children)
    summary = {
        "seeds": seeds,
        "n_seeds": len(seeds),
        "runs": [r.path.name for r in children],
        "common_grid": bool(common),
        "t_last": [int(tr.t[-1]) for tr in traces],
        "distance_last": _stats([float(tr.distance[-1]) for tr in traces]),
        "choice_frequency": dict(choices),
        "parameters": _over_seeds([_fit_parameters(r.summary) for r in children]),
        "scalars": _over_seeds([dict(_numbers(r.summary)) for r in children]),
        "sd": "sample standard deviation over seeds (ddof=1); None for fewer than 2 values",
    }
    return records, summary


def run_walk_sweep(
    config: WalkSweepConfig,
    runs: str | os.PathLike = "runs",
    *,
    runtime: Runtime | None = None,
    force: bool = False,
) -> Run:
    """Run (or reuse) the walk of every seed and their aggregate, under ``runs``.

    Parameters
    ----------
    config : WalkSweepConfig
        The sweep (its hash, seeds included, names the folder ``walksweep-<hash>``).
    runs : path
        Parent folder of the sweep's folder and of its children's ``walk-<hash>`` folders.
    runtime : diffusion.runtime.Runtime, optional
        ``jobs`` children at once, ``threads`` numba threads each, ``progress`` one line
        per computed child on stderr (default: ``Runtime(progress=False)``); the deep
        layer's fields are ignored. Never part of any run's identity.
    force : bool
        Recompute the aggregate even when the sweep folder is finished; finished children
        are reused all the same.

    Returns
    -------
    diffusion.records.Run
        ``run.summary`` as in the module docstring; ``run.trace()`` the mean trace over
        seeds (extras ``sd``, ``per_seed``) when the children share a time grid.
    """
    if not isinstance(config, WalkSweepConfig):
        raise TypeError(f"config must be a WalkSweepConfig, got {type(config).__name__}")
    runtime = check_runtime(runtime, Runtime(progress=False))

    def compute(cfg: WalkSweepConfig) -> tuple[dict, dict]:
        return aggregate(cfg.seeds, walk_children(cfg, runs, runtime))

    return run_or_load(runs, config, compute, force=force)


register_runner(WalkSweepConfig, run_walk_sweep)


# ----------------------------------------------------------------------------- text
def _pm(stats: Mapping) -> str:
    if stats["mean"] is None:
        return "-"
    sd = "n/a" if stats["sd"] is None else f"{stats['sd']:.3g}"
    return f"{stats['mean']:.4g} ± {sd} (n={stats['n']})"


def sweep_table(summary: Mapping) -> str:
    """Plain-text view of a sweep summary: growth-law parameters as mean ± sd over seeds."""
    lines = [
        f"seeds {summary['seeds']} ({summary['n_seeds']} independent replicas; mean ± sd, ddof=1)",
        f"reported law: {', '.join(f'{k} x{v}' for k, v in summary['choice_frequency'].items())}",
        f"distance at the last time: {_pm(summary['distance_last'])}",
    ]
    rows = dict(summary["parameters"])
    for key in ("polylog_exponent_measured", "theory.kesten_mean_abs_measured"):
        if key in summary["scalars"]:
            rows[key] = summary["scalars"][key]
    width = max((len(k) for k in rows), default=0)
    lines += [f"  {key:<{width}}  {_pm(stats)}" for key, stats in rows.items()]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI
def parse_seeds(text: str) -> tuple[int, ...]:
    """``"5"`` -> seeds 0..4; ``"0,1,2"`` (or ``"7,"``) -> those seeds.

    Raises
    ------
    argparse.ArgumentTypeError
        For anything else (negative seeds, a count below 1, words).
    """
    try:
        values = [int(p) for p in text.replace(",", " ").split()]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(
            f"--seeds must be a count N (seeds 0..N-1) or comma-separated seeds >= 0, got {text!r}"
        )
    if len(values) == 1 and "," not in text:
        if values[0] < 1:
            raise argparse.ArgumentTypeError(f"--seeds count must be >= 1, got {text!r}")
        return tuple(range(values[0]))
    return tuple(values)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``python -m diffusion sweep``: one walk over many seeds, mean ± sd.

    The walk options are the fields of :class:`WalkSweepConfig`, help from its docstring
    (:mod:`diffusion.options`); ``func`` is :func:`main`.
    """
    from diffusion.options import add_config_options, add_runs_option

    p = subparsers.add_parser(
        "sweep",
        help="one walk over many seeds: the fits' mean ± sd over independent replicas",
        description=__doc__.split("\n\n")[0]
        + " Writes the children's walk folders and the sweep's folder under --runs.",
    )
    add_config_options(
        p,
        WalkSweepConfig,
        choices={"potential": POTENTIALS, "method": METHODS, "field_kind": ("short", "fractional")},
        converters={"seeds": parse_seeds},
        help={
            "potential": "random potential: sinai (Brownian), fbm (fractional Brownian, "
            "--hurst), bounded (i.i.d. on [0, sigma], --correlation-length) or field "
            "(Gaussian field in --dim dimensions, --field-kind)",
            "seeds": "N for seeds 0..N-1, or a comma-separated list such as 0,1,2 (default: 0,1,2)",
        },
    )
    add_runs_option(p)
    p.add_argument("--jobs", type=int, default=1, help="seeds computed at once (default: 1)")
    p.add_argument(
        "--threads", type=int, default=None, help="numba threads per walk (default: all)"
    )
    p.add_argument(
        "--force", action="store_true", help="recompute the aggregate (finished seeds are reused)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run the ``sweep`` subcommand from its parsed options; the exit status."""
    from diffusion.options import config_from_args

    try:
        config = config_from_args(WalkSweepConfig, args)
        runtime = Runtime(jobs=args.jobs, threads=args.threads, progress=not args.json)
    except (TypeError, ValueError) as exc:
        print(f"python -m diffusion sweep: error: {exc}", file=sys.stderr)
        return 2
    run = run_walk_sweep(config, args.runs, runtime=runtime, force=args.force)
    if args.json:
        print(json.dumps({"run": str(run.path), "summary": run.summary}, indent=2, sort_keys=True))
        return 0
    print(f"sweep: {run.path}")
    print(sweep_table(run.summary))
    return 0
