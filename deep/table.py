"""The large-batch table: SB, LB, LB+LR, LB+LR+GBN, LB+LR+GBN+RA over several seeds.

For every recipe of a profile (:mod:`deep.profiles`) and every column, one training run per
seed is made with ``deep.train.train``; a finished run folder is reused, so an interrupted
table resumes where it stopped. SB is also trained twice as long (the control of
``sb_converged``). Independent runs go through joblib in parallel (``n_jobs``), each worker
with its share of the CPU threads. The final validation accuracies are summarised as
mean +- std over seeds (sample std, ``ddof=1``) in a table shaped like the paper's, written
as markdown, CSV and JSON (atomically), together with the paper's claims as two-sided,
named checks (:mod:`deep.checks`): ``sb_converged``, ``lb_below_sb`` (paired by seed) and
``ra_matches_sb``. +LR and +GBN are reported as they come.

The table is itself a run folder (``table-<hash>``, the one run protocol of
:mod:`diffusion.records`): a :class:`TableConfig` holds what its numbers depend on (the
profile, rows, seeds, overrides, control, sharpness -- never where it runs), and
:func:`run_table_config` trains or reuses the training runs and keeps the table's
``summary.json`` (the document of ``table.json``, child runs named by folder) and
``records.npz`` (every cell's accuracies and seeds). A second table with the same settings is
read from its folder, nothing retrained; ``diffusion.records.run(TableConfig(...))`` finds it
from any entry point.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from diffusion.records import (
    Run,
    atomic_write_bytes,
    atomic_write_json,
    config_hash,
    config_to_dict,
    find_run,
    package_version,
    register_runner,
    run_dir,
    run_or_load,
    save_run,
    to_jsonable,
)
from diffusion.runtime import Runtime, check_runtime
from diffusion.validation import check_bool, check_int

from .checks import (
    Check,
    lb_below_sb,
    paired_differences,
    ra_matches_sb,
    sb_converged,
    validation_noise_floor,
)
from .profiles import (
    REGIMES,
    Profile,
    Recipe,
    convergence_settings,
    get_profile,
    regime_settings,
)
from .sweep import add_backend_arguments, finite_or_none, parallel_backend, train_many

__all__ = [
    "TableConfig",
    "run_table_config",
    "table_result",
    "Cell",
    "RowResult",
    "TableResult",
    "table_configs",
    "run_table",
    "final_accuracy",
    "format_markdown",
    "add_parser",
    "TABLE_FILES",
    "CSV_COLUMNS",
]

TABLE_FILES = ("table.md", "table.csv", "table.json")
"""Files written by :func:`run_table` into its output folder."""

CSV_COLUMNS = (
    "network",
    "model",
    "dataset",
    "regime",
    "batch_size",
    "n_seeds",
    "mean",
    "std",
    "accuracies",
    "paper",
)
"""Header of ``table.csv`` (one line per cell; accuracies in percent, ``;``-separated)."""

_SHORT = {
    "SB": "SB",
    "LB": "LB",
    "LB+LR": "+LR",
    "LB+LR+GBN": "+GBN",
    "LB+LR+GBN+RA": "+RA",
    "LB+LIN+WU": "+LIN+WU",
    "LB+LR-CLIP": "+LR-clip",
}

SHARPNESS_SETTINGS = {"n_samples": 1024, "epsilon": 1e-3, "maxiter": 10, "tol": 1e-4}
"""How the table's sharpness columns are measured (:func:`deep.sharpness.sharpness_of_run`):
the top Hessian eigenvalue and Keskar's epsilon-sharpness at the final weights, on a seeded
subset of 1,024 training samples; the same settings as the ``sharpness`` figure, whose kept
measurements are shared."""

CONTROL = "SB@2E"
"""Name of the control cell: SB trained :data:`deep.profiles.CONVERGENCE_FACTOR` times longer."""


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Cell:
    """One cell: a recipe under one regime, over seeds.

    Attributes
    ----------
    regime : str
        Column name (one of :data:`deep.profiles.REGIMES`).
    batch_size : int
        Batch size of the column.
    accuracies : tuple of float
        Final validation accuracy of each seed, in percent.
    seeds : tuple of int
        The seeds, in the order of ``accuracies``.
    runs : tuple of str
        Run folders, in the same order.
    steps : tuple of int
        Optimisation steps each run took.
    epochs : float
        Epochs of the regime (after regime adaptation); NaN when unknown.
    sharpness : tuple of float
        Top Hessian eigenvalue of each run's final weights (empty unless measured; see
        :data:`SHARPNESS_SETTINGS`).
    eps_sharpness : tuple of float
        Keskar's epsilon-sharpness (percent) of each run (empty unless measured).
    """

    regime: str
    batch_size: int
    accuracies: tuple[float, ...]
    seeds: tuple[int, ...]
    runs: tuple[str, ...]
    steps: tuple[int, ...]
    epochs: float = math.nan
    sharpness: tuple[float, ...] = ()
    eps_sharpness: tuple[float, ...] = ()

    @property
    def mean(self) -> float:
        """Mean accuracy over seeds (percent)."""
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (percent; 0 for one seed)."""
        return float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else 0.0

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "regime": self.regime,
            "batch_size": self.batch_size,
            "mean": self.mean,
            "std": self.std,
            "accuracies": list(self.accuracies),
            "seeds": list(self.seeds),
            "runs": list(self.runs),
            "steps": list(self.steps),
            "epochs": finite_or_none(self.epochs),
            "sharpness": list(self.sharpness),
            "eps_sharpness": list(self.eps_sharpness),
        }


@dataclass(frozen=True)
class RowResult:
    """One row of the table: a recipe and its cells, with the paper's claims checked.

    Attributes
    ----------
    recipe : Recipe
        The row's recipe.
    cells : dict of str to Cell
        One cell per regime that was run.
    checks : dict of str to deep.checks.Check
        ``sb_converged``, ``lb_below_sb``, ``ra_matches_sb`` (those whose columns ran).
    control : Cell or None
        SB trained ``CONVERGENCE_FACTOR`` times longer (``None`` when not run).
    n_val : int
        Size of the validation split (0 when unknown).
    """

    recipe: Recipe
    cells: dict[str, Cell]
    checks: dict[str, Check]
    control: Cell | None = None
    n_val: int = 0

    @property
    def noise_floor(self) -> float:
        """Binomial standard error (points) of one SB accuracy on the validation split."""
        if not self.n_val or "SB" not in self.cells:
            return math.nan
        return validation_noise_floor(self.cells["SB"].mean, self.n_val)

    @property
    def comparisons(self) -> dict[str, dict]:
        """Warm-up against clipping: each extra column minus ``LB+LR``, paired by seed.

        Measurements, not claims: ``{"LB+LIN+WU - LB+LR": {"mean", "se", "differences",
        "seeds"}, ...}`` for the extra columns that ran.
        """
        base = self.cells.get("LB+LR")
        out: dict[str, dict] = {}
        for regime in ("LB+LIN+WU", "LB+LR-CLIP"):
            cell = self.cells.get(regime)
            if base is None or cell is None:
                continue
            seeds, d = paired_differences(cell.accuracies, cell.seeds, base.accuracies, base.seeds)
            se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else math.nan
            out[f"{regime} - LB+LR"] = {
                "mean": float(d.mean()) if d.size else math.nan,
                "se": se,
                "differences": d.tolist(),
                "seeds": seeds,
            }
        return out

    @property
    def passed(self) -> bool:
        """Every check of the row was judged and holds."""
        return bool(self.checks) and all(c.passed is True for c in self.checks.values())

    def as_dict(self) -> dict:
        """JSON-able view."""
        r = self.recipe
        return {
            "network": r.name,
            "model": r.model,
            "dataset": r.data,
            "small_batch": r.small_batch,
            "large_batch": r.large_batch,
            "ghost_size": r.ghost_size,
            "epochs": r.epochs,
            "milestones": list(r.milestones),
            "lr": r.lr,
            "paper": list(r.paper) if r.paper else None,
            "note": r.note,
            "cells": {k: c.as_dict() for k, c in self.cells.items()},
            "control": self.control.as_dict() if self.control else None,
            "n_val": self.n_val,
            "validation_noise_floor": finite_or_none(self.noise_floor),
            "checks": {k: c.as_dict() for k, c in self.checks.items()},
            "passed": self.passed,
            "comparisons": {
                k: {n: finite_or_none(v) if isinstance(v, float) else v for n, v in c.items()}
                for k, c in self.comparisons.items()
            },
        }


@dataclass(frozen=True)
class TableResult:
    """Result of :func:`run_table`.

    Attributes
    ----------
    profile : str
        Profile name.
    description : str
        The profile's description.
    rows : tuple of RowResult
        One per recipe.
    regimes : tuple of str
        Columns that were run.
    files : dict of str to pathlib.Path
        ``markdown``, ``csv``, ``json`` output files (empty when nothing was written).
    wall_seconds : float
        Wall time of the whole table (finished runs that were reused cost nothing).
    path : str or None
        The table's own run folder (``<runs>/table-<hash>``, see :class:`TableConfig`);
        ``None`` for a result built in memory only.
    """

    profile: str
    description: str
    rows: tuple[RowResult, ...]
    regimes: tuple[str, ...]
    files: dict[str, Path]
    wall_seconds: float
    path: str | None = None

    def row(self, name: str) -> RowResult:
        """The row of the recipe called ``name``."""
        for r in self.rows:
            if r.recipe.name == name:
                return r
        raise KeyError(f"no row named {name!r}: {[r.recipe.name for r in self.rows]}")

    def markdown(self) -> str:
        """The table as markdown (see :func:`format_markdown`)."""
        return format_markdown(self)

    def as_dict(self) -> dict:
        """JSON-able view (the content of ``table.json``)."""
        return {
            "profile": self.profile,
            "description": self.description,
            "regimes": list(self.regimes),
            "rows": [r.as_dict() for r in self.rows],
            "wall_seconds": self.wall_seconds,
            "checks_definition": {
                name: check.rule for row in self.rows for name, check in row.checks.items()
            },
        }


# ----------------------------------------------------------------------------- configs
def _check_seeds(seeds: Any) -> tuple[int, ...]:
    """A count ``N`` (seeds ``0..N-1``) or a sequence of distinct seeds, as a tuple of ints."""
    iterable = hasattr(seeds, "__iter__") and getattr(seeds, "ndim", 1) != 0  # 0-d arrays are not
    if isinstance(seeds, (str, bytes)) or not iterable:
        return tuple(range(check_int("seeds", seeds, 1)))  # a count; bool and float refused
    out = tuple(check_int("seeds", s, 0) for s in seeds)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds must be non-empty and distinct, got {seeds!r}")
    return out


def _check_overrides(overrides: Any) -> tuple[tuple[str, Any], ...]:
    """``TrainConfig`` overrides as a sorted tuple of ``(field, value)`` pairs.

    A mapping or a sequence of pairs; list values become tuples. Every key must be a
    ``TrainConfig`` field and every value hashable with a JSON form.
    """
    from .train import TrainConfig

    if overrides is None:
        return ()
    if isinstance(overrides, Mapping):
        pairs = list(overrides.items())
    elif isinstance(overrides, (str, bytes)) or not hasattr(overrides, "__iter__"):
        raise TypeError(
            f"overrides must be a mapping or (field, value) pairs, got {type(overrides).__name__}"
        )
    else:
        pairs = []
        for pair in overrides:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"overrides must hold (field, value) pairs, got {pair!r}")
            pairs.append(tuple(pair))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    out: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(key, str) or key not in names:
            raise ValueError(f"overrides: {key!r} is not a TrainConfig field")
        if key in out:
            raise ValueError(f"overrides: {key!r} is given twice")
        if isinstance(value, list):
            value = tuple(value)
        try:
            hash(value)
        except TypeError:
            raise TypeError(
                f"overrides: {key} must be hashable, got {type(value).__name__}"
            ) from None
        to_jsonable(value, f"overrides.{key}")  # raises for a value with no JSON form
        out[key] = value
    return tuple(sorted(out.items()))


@dataclass(frozen=True)
class TableConfig:
    """A table: what its numbers depend on (its hash names the folder ``table-<hash>``).

    Where and how it runs -- device, data folder, processes, backend, progress -- is not
    here (a :class:`diffusion.runtime.Runtime` and the runner's arguments): the same table
    computed on a CPU or a GPU, one run or four at a time, is the same folder. Every field is
    stored resolved, so equal tables hash the same however they were spelled.

    Parameters
    ----------
    profile : Profile or str
        The rows and columns (a :data:`deep.profiles.PROFILES` name or a Profile). Stored as
        the Profile restricted to ``models``, with the defaults that the other fields resolve
        made plain: ``seeds`` is ``len(seeds)``, ``control`` the resolved ``control`` and
        ``device`` ``"auto"`` (where the runs train is the runtime's business).
    models : sequence of str, optional
        Rows (row or model names, case-insensitive); all by default. Stored as the selected
        row names.
    seeds : int or sequence of int, optional
        Number of seeds (``0..n-1``) or the seeds themselves; the profile's default if
        omitted. Stored as a sorted tuple.
    overrides : mapping or sequence of (str, value) pairs, optional
        Further ``TrainConfig`` fields for every run. Stored as a sorted tuple of pairs.
    control : bool, optional
        Train SB ``CONVERGENCE_FACTOR`` times longer (:data:`CONTROL`); the profile's setting
        by default. Stored ``False`` when the profile has no SB column.
    sharpness : bool
        Also measure every run's sharpness (:data:`SHARPNESS_SETTINGS`).

    Raises
    ------
    TypeError, ValueError
        An unknown profile, model or override field, bad seeds or a non-boolean flag.
    """

    KIND: ClassVar[str] = "table"

    profile: Profile
    models: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None
    overrides: tuple[tuple[str, Any], ...] = ()
    control: bool | None = None
    sharpness: bool = False

    def __post_init__(self) -> None:
        models = self.models
        if isinstance(models, str):
            models = (models,)
        prof = get_profile(self.profile)
        if models and tuple(models) != tuple(r.name for r in prof.recipes):  # else: resolved
            prof = prof.select(tuple(models))
        seeds = tuple(sorted(_check_seeds(prof.seeds if self.seeds is None else self.seeds)))
        control = prof.control if self.control is None else check_bool("control", self.control)
        control = control and "SB" in prof.regimes
        prof = dataclasses.replace(prof, seeds=len(seeds), control=control, device="auto")
        object.__setattr__(self, "profile", prof)
        object.__setattr__(self, "models", tuple(r.name for r in prof.recipes))
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "overrides", _check_overrides(self.overrides))
        object.__setattr__(self, "control", control)
        object.__setattr__(self, "sharpness", check_bool("sharpness", self.sharpness))

    def train_configs(self) -> list[tuple[Recipe, str, int, Any]]:
        """Every training run of the table (:func:`table_configs`)."""
        return table_configs(
            self.profile, self.seeds, overrides=dict(self.overrides), control=self.control
        )


def table_configs(
    profile: Profile,
    seeds: tuple[int, ...],
    *,
    overrides: dict[str, Any] | None = None,
    control: bool | None = None,
) -> list[tuple[Recipe, str, int, Any]]:
    """Every training configuration of a table: ``(recipe, regime, seed, TrainConfig)``.

    Parameters
    ----------
    profile : Profile
        Rows and columns.
    seeds : tuple of int
        Seeds of every cell.
    overrides : dict, optional
        Further ``TrainConfig`` fields applied to every run (e.g. ``max_steps`` for a smoke
        test, ``trace_per_decade``).
    control : bool, optional
        Add the :data:`CONTROL` cell (SB trained longer, for ``sb_converged``); the
        profile's ``control`` by default. Needs the SB column.
    """
    from .train import TrainConfig

    with_control = profile.control if control is None else bool(control)
    cells = [(regime, regime_settings) for regime in profile.regimes]
    if with_control and "SB" in profile.regimes:
        cells.append((CONTROL, lambda recipe, _: convergence_settings(recipe)))
    out = []
    for recipe in profile.recipes:
        for regime, settings in cells:
            for seed in seeds:
                kw = settings(recipe, regime)
                kw.update(seed=seed)
                kw.update(overrides or {})
                out.append((recipe, regime, seed, TrainConfig(**kw)))
    return out


def final_accuracy(summary: dict) -> float:
    """Final validation accuracy (percent) from a run summary.

    Fractions in [0, 1] are converted to percent.
    """
    for key in ("final_val_accuracy", "val_accuracy", "final_val_acc"):
        if key in summary:
            value = float(summary[key])
            return 100.0 * value if value <= 1.0 else value
    raise KeyError(f"run summary has no final validation accuracy: keys {sorted(summary)}")


def _cell_result(run: Any) -> tuple[str, float, int, int, float]:
    """``(run folder, final val accuracy %, steps, n_val, epochs)`` of a finished run."""
    summary = run.summary
    return (
        str(run.path),
        final_accuracy(summary),
        int(summary.get("steps", -1)),
        int(summary.get("n_val", 0)),
        float(summary.get("epochs", math.nan)),
    )


def _sharpness(run: str, data_root: str | None) -> tuple[float, float]:
    """(top Hessian eigenvalue, Keskar's epsilon-sharpness %) of a finished run."""
    from .sharpness import sharpness_of_run

    r = sharpness_of_run(run, data_root=data_root, **SHARPNESS_SETTINGS)
    return r.top_eigenvalue, r.epsilon.sharpness


def _cost(config: Any, recipe: Recipe) -> float:
    """Relative cost (samples processed) for scheduling the longest runs first."""
    epochs = config.epochs * (recipe.ratio if getattr(config, "regime_adaptation", False) else 1)
    return float(epochs)


# ----------------------------------------------------------------------------- checks
def row_checks(cells: dict[str, Cell], control: Cell | None = None) -> dict[str, Check]:
    """The paper's claims for one row (only the checks whose cells are present).

    Parameters
    ----------
    cells : dict of str to Cell
        The row's cells by regime.
    control : Cell, optional
        SB trained longer (the control of ``sb_converged``).
    """
    out: dict[str, Check] = {}
    sb, lb, ra = cells.get("SB"), cells.get("LB"), cells.get("LB+LR+GBN+RA")
    if sb and control:
        out["sb_converged"] = sb_converged(
            sb.accuracies, control.accuracies, sb.epochs, control.epochs
        )
    if sb and lb:
        out["lb_below_sb"] = lb_below_sb(sb.accuracies, sb.seeds, lb.accuracies, lb.seeds)
    if sb and ra:
        out["ra_matches_sb"] = ra_matches_sb(sb.accuracies, ra.accuracies)
    return out


# ----------------------------------------------------------------------------- runner
def _record_key(row: str, regime: str, what: str) -> str:
    return f"{what}.{row}.{regime}"


def _compute_table(
    config: TableConfig,
    runs: Path,
    runtime: Runtime,
    label: str | None,
    backend: str,
    scheduler: str | None,
) -> TableResult:
    """Train (or reuse) every run of ``config`` and assemble the table (runs named by folder)."""
    prof = config.profile
    configs = config.train_configs()
    start = time.perf_counter()
    order = sorted(range(len(configs)), key=lambda i: -_cost(configs[i][3], configs[i][0]))
    trained = train_many(
        [configs[i][3] for i in order],
        runs,
        runtime=dataclasses.replace(runtime, progress=False),
        n_jobs=runtime.jobs,
        label=label,
        backend=backend,
        scheduler=scheduler,
    )
    results = {i: _cell_result(run) for i, run in zip(order, trained, strict=True)}
    measured = {}
    if config.sharpness:  # measured jobs at a time; each measurement is kept beside its run
        from joblib import Parallel, delayed

        data_root = None if runtime.data_root is None else str(runtime.data_root)
        paths = [results[i][0] for i in order]
        with parallel_backend(backend, scheduler):
            values = Parallel(n_jobs=runtime.jobs)(delayed(_sharpness)(p, data_root) for p in paths)
        measured = dict(zip(paths, values, strict=True))
    wall = time.perf_counter() - start

    def cell(recipe: Recipe, regime: str) -> Cell | None:
        idx = [i for i, c in enumerate(configs) if c[0] is recipe and c[1] == regime]
        if not idx:
            return None
        sharp = [measured[results[i][0]] for i in idx] if config.sharpness else []
        return Cell(
            regime=regime,
            batch_size=configs[idx[0]][3].batch_size,
            accuracies=tuple(results[i][1] for i in idx),
            seeds=tuple(configs[i][2] for i in idx),
            runs=tuple(Path(results[i][0]).name for i in idx),  # folder names, not paths
            steps=tuple(results[i][2] for i in idx),
            epochs=results[idx[0]][4],
            sharpness=tuple(h for h, _ in sharp),
            eps_sharpness=tuple(e for _, e in sharp),
        )

    rows = []
    for recipe in prof.recipes:
        cells = {regime: cell(recipe, regime) for regime in prof.regimes}
        ctrl = cell(recipe, CONTROL)
        n_val = next((results[i][3] for i, c in enumerate(configs) if c[0] is recipe), 0)
        rows.append(RowResult(recipe, cells, row_checks(cells, ctrl), ctrl, n_val))
    return TableResult(prof.name, prof.description, tuple(rows), prof.regimes, {}, wall)


def _table_records(result: TableResult) -> dict[str, np.ndarray]:
    """Every cell's accuracies (percent) and seeds, keyed ``accuracies.<row>.<regime>``."""
    out: dict[str, np.ndarray] = {}
    for row in result.rows:
        cells = dict(row.cells)
        if row.control is not None:
            cells[CONTROL] = row.control
        for regime, c in cells.items():
            name = row.recipe.name
            out[_record_key(name, regime, "accuracies")] = np.asarray(c.accuracies, float)
            out[_record_key(name, regime, "seeds")] = np.asarray(c.seeds, np.int64)
    return out


def _cell_from_dict(d: dict, runs: Path | None) -> Cell:
    names = tuple(d["runs"])
    return Cell(
        regime=d["regime"],
        batch_size=int(d["batch_size"]),
        accuracies=tuple(float(a) for a in d["accuracies"]),
        seeds=tuple(int(x) for x in d["seeds"]),
        runs=names if runs is None else tuple(str(runs / n) for n in names),
        steps=tuple(int(x) for x in d["steps"]),
        epochs=math.nan if d.get("epochs") is None else float(d["epochs"]),
        sharpness=tuple(float(x) for x in d.get("sharpness", ())),
        eps_sharpness=tuple(float(x) for x in d.get("eps_sharpness", ())),
    )


def table_result(
    config: TableConfig, run: Run, runs: str | os.PathLike | None = None
) -> TableResult:
    """The :class:`TableResult` of a finished table folder.

    Parameters
    ----------
    config : TableConfig
        The table's configuration (its rows' recipes).
    run : diffusion.records.Run
        Its run folder (:func:`run_table_config`).
    runs : path, optional
        Folder of the training runs: each cell's ``runs`` become ``runs/<folder>``; the bare
        folder names when omitted.

    The checks are judged again from the stored cells (the same numbers give the same
    verdicts); ``files`` is empty and ``wall_seconds`` the table's when it was computed.
    """
    doc = run.summary
    by_name = {r["network"]: r for r in doc["rows"]}
    root = None if runs is None else Path(runs)
    rows = []
    for recipe in config.profile.recipes:
        d = by_name[recipe.name]
        # in the columns' order (summary.json is written with sorted keys)
        cells = {g: _cell_from_dict(d["cells"][g], root) for g in doc["regimes"] if g in d["cells"]}
        ctrl = None if d.get("control") is None else _cell_from_dict(d["control"], root)
        rows.append(RowResult(recipe, cells, row_checks(cells, ctrl), ctrl, int(d["n_val"])))
    return TableResult(
        config.profile.name,
        config.profile.description,
        tuple(rows),
        tuple(doc["regimes"]),
        {},
        float(doc["wall_seconds"]),
        str(run.path),
    )


def _children_finished(run: Run, runs: Path) -> bool:
    """Every training run the table names is still a finished folder under ``runs``."""
    names = {
        n
        for row in run.summary.get("rows", ())
        for c in [*row.get("cells", {}).values(), row.get("control") or {"runs": ()}]
        for n in c["runs"]
    }
    return all((runs / n / "summary.json").is_file() for n in names)


def run_table_config(
    config: TableConfig,
    runs: str | os.PathLike = "runs",
    *,
    runtime: Runtime | None = None,
    force: bool = False,
    progress: bool = False,
    backend: str = "loky",
    scheduler: str | None = None,
) -> Run:
    """Run (or reuse) a table: its own run folder ``runs/table-<hash>``.

    A finished table folder is returned as it is, nothing trained; otherwise every training
    run is trained or reused (:func:`deep.sweep.train_many`) and the folder written:
    ``summary.json`` is the document of ``table.json`` (rows, cells with the accuracy of
    every seed, checks with their verdicts; the training runs named by folder, relative to
    ``runs``), ``records.npz`` each cell's ``accuracies.<row>.<regime>`` (percent) and
    ``seeds.<row>.<regime>``. A table folder whose summary reads otherwise than the current
    code would write it (the checks changed) is rewritten from its stored cells, one whose
    training runs were deleted is recomputed.

    Parameters
    ----------
    config : TableConfig
        The table.
    runs : path
        Folder of every run folder: the training runs and the table's own.
    runtime : diffusion.runtime.Runtime, optional
        ``device``, ``data_root``, ``threads`` and checkpoint cadence of the training runs,
        ``jobs`` of them at once (and sharpness measurements); ``progress`` adds one line per
        finished training run on stderr. Never part of the table's identity. Default: a
        quiet ``Runtime`` on ``"auto"``.
    force : bool
        Recompute the table's folder (finished training runs are still reused).
    progress : bool
        One line per finished training run on stderr (as ``runtime.progress``).
    backend, scheduler : str
        Where the training runs execute (:func:`deep.sweep.train_many`).

    Returns
    -------
    diffusion.records.Run
    """
    if not isinstance(config, TableConfig):
        raise TypeError(f"config must be a TableConfig, got {type(config).__name__}")
    runtime = check_runtime(runtime, Runtime(progress=False))
    runs = Path(runs)
    label = "table" if progress or runtime.progress else None

    def compute(cfg: TableConfig) -> tuple[dict[str, np.ndarray], dict]:
        result = _compute_table(cfg, runs, runtime, label, backend, scheduler)
        return _table_records(result), result.as_dict()

    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes
    found = None if force else find_run(runs, config)
    try:
        fresh = to_jsonable(table_result(config, found).as_dict(), "summary") if found else None
    except (KeyError, TypeError, ValueError):  # a summary of another schema: computed again
        found = None
    if found is not None and _children_finished(found, runs):
        if fresh == found.summary or not main:
            return found
        return save_run(runs, config, found.records, fresh)  # the checks read otherwise now
    if not main:
        records, summary = compute(config)
        meta = {"kind": type(config).__name__, "hash": config_hash(config)}
        meta.update(version=package_version(), seed=None)
        return Run(
            run_dir(runs, config),
            config_to_dict(config),
            meta,
            records,
            to_jsonable(summary, "summary"),
        )
    return run_or_load(runs, config, compute, force=True)


def run_table(
    profile: str | Profile,
    root: str | os.PathLike,
    *,
    models: tuple[str, ...] | list[str] | None = None,
    seeds: int | tuple[int, ...] | list[int] | None = None,
    data_root: str | None = None,
    device: str | None = None,
    n_jobs: int = 1,
    out: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    write: bool = True,
    control: bool | None = None,
    progress: bool = False,
    backend: str = "loky",
    scheduler: str | None = None,
    sharpness: bool = False,
) -> TableResult:
    """Run (or reuse) every cell of a profile's table and write it.

    The table is the run folder of its :class:`TableConfig` under ``root``
    (:func:`run_table_config`); the returned result is read from it.

    Parameters
    ----------
    profile : {'smoke', 'quick', 'paper'} or Profile
        The rows and columns.
    root : path
        Folder of the run folders (one per configuration and seed, and the table's own).
    models : sequence of str, optional
        Restrict to these recipes (row names or model names).
    seeds : int or sequence of int, optional
        Number of seeds (0..n-1) or the seeds themselves; the profile's default if omitted.
    data_root : str, optional
        Folder of user-supplied data (MNIST IDX, CIFAR pickles, ImageNet).
    device : str, optional
        Overrides the profile's device.
    n_jobs : int
        Runs trained at once (joblib, processes); each gets ``cpu_count // n_jobs`` threads.
        Keep 1 under ``torchrun``: every replica then walks the same list of runs and each
        run is data-parallel over the replicas.
    out : path, optional
        Where ``table.md``, ``table.csv`` and ``table.json`` go; ``root`` if omitted.
    overrides : dict, optional
        Further ``TrainConfig`` fields for every run.
    write : bool
        Write the three files (the table's run folder is written either way).
    control : bool, optional
        Run SB ``CONVERGENCE_FACTOR`` times longer as the control of ``sb_converged``; the
        profile's setting by default.
    progress : bool
        Print one line per finished run (runs done, elapsed, estimated time left) to stderr.
    backend, scheduler : str
        Where the runs execute (:func:`deep.sweep.train_many`): ``"loky"`` processes here, or
        ``"dask"`` workers (a local cluster, or the scheduler at ``scheduler``).
    sharpness : bool
        Also measure every run's sharpness (:data:`SHARPNESS_SETTINGS`; kept beside the run).

    Returns
    -------
    TableResult
    """
    prof = get_profile(profile)
    config = TableConfig(
        prof,
        models=models,
        seeds=seeds,
        overrides=overrides,
        control=control,
        sharpness=sharpness,
    )
    n_jobs = check_int("n_jobs", n_jobs, 1)
    runtime = Runtime(
        device=device or prof.device, data_root=data_root, jobs=n_jobs, progress=False
    )
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    run = run_table_config(
        config, root, runtime=runtime, progress=progress, backend=backend, scheduler=scheduler
    )
    result = dataclasses.replace(
        table_result(config, run, root), wall_seconds=time.perf_counter() - start
    )
    if write and int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 writes
        files = write_table(result, Path(out) if out is not None else root)
        result = dataclasses.replace(result, files=files)
    return result


# ----------------------------------------------------------------------------- writers
def _fmt_values(values: tuple[float, ...]) -> str:
    if not values:
        return "--"
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.3g} ± {sd:.2g}"


def _fmt(cell: Cell | None) -> str:
    if cell is None:
        return "--"
    return f"{cell.mean:.2f} ± {cell.std:.2f}"


def format_markdown(result: TableResult) -> str:
    """A markdown table shaped like the paper's, with the paper's numbers and the checks."""
    controls = any(row.control for row in result.rows)
    head = ["Network", "Dataset", "B_S / B_L", "epochs", "seeds"]
    head += [_SHORT[g] for g in result.regimes] + (["SB (2E, control)"] if controls else [])
    lines = [
        f"### Validation accuracy (%), profile `{result.profile}`: mean ± std over seeds",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in result.rows:
        r = row.recipe
        n = len(next(iter(row.cells.values())).accuracies)
        cells = [_fmt(row.cells.get(g)) for g in result.regimes]
        if controls:
            cells.append(_fmt(row.control))
        lines.append(
            f"| {r.name} | {r.data} | {r.small_batch} / {r.large_batch} | {r.epochs} | {n} | "
            + " | ".join(cells)
            + " |"
        )
        if any(row.cells[g].sharpness for g in result.regimes if row.cells.get(g)):
            for label, attr in (("top Hessian eigenvalue", "sharpness"),
                                ("Keskar sharpness (%)", "eps_sharpness")):  # fmt: skip
                values = [_fmt_values(getattr(row.cells[g], attr)) for g in result.regimes]
                lines.append(f"| ({label}) | | | | | " + " | ".join(values) + " |")
        if r.paper:
            ref = [
                f"({r.paper[REGIMES.index(g)]:.2f})" if g in REGIMES else "" for g in result.regimes
            ]
            lines.append("| (paper) | | | | | " + " | ".join(ref) + (" | |" if controls else " |"))
    lines += ["", "The paper's claims, per row (two-sided checks, numbers as used):", ""]
    for row in result.rows:
        verdict = "all checks pass" if row.passed else "NOT all checks pass"
        lines.append(f"- **{row.recipe.name}** ({verdict}):")
        for check in row.checks.values():
            lines.append(f"  - {check.line()}")
        for name, c in row.comparisons.items():
            per_seed = ", ".join(f"{d:+.2f}" for d in c["differences"])
            lines.append(
                f"  - warm-up against clipping, `{name}` paired by seed: mean {c['mean']:+.2f} "
                f"± {c['se']:.2f} (se); per seed {per_seed} (a measurement, not a claim)"
            )
        if not math.isnan(row.noise_floor):
            lines.append(
                f"  - validation noise floor: {row.noise_floor:.2f} points (binomial standard "
                f"error of one accuracy near {row.cells['SB'].mean:.1f}% on {row.n_val} samples)"
            )
    if result.description:
        lines += ["", result.description]
    return "\n".join(lines) + "\n"


def format_csv(result: TableResult) -> str:
    """One line per cell, columns :data:`CSV_COLUMNS`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in result.rows:
        r = row.recipe
        cells = dict(row.cells)
        if row.control:
            cells[CONTROL] = row.control
        for regime, cell in cells.items():
            paper = r.paper[REGIMES.index(regime)] if r.paper and regime in REGIMES else ""
            writer.writerow(
                [
                    r.name,
                    r.model,
                    r.data,
                    regime,
                    cell.batch_size,
                    len(cell.accuracies),
                    f"{cell.mean:.4f}",
                    f"{cell.std:.4f}",
                    ";".join(f"{a:.4f}" for a in cell.accuracies),
                    paper,
                ]
            )
    return buf.getvalue()


def write_table(result: TableResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write ``table.md``, ``table.csv`` and ``table.json`` into ``out`` atomically."""
    out = Path(out)
    md, cs, js = (out / name for name in TABLE_FILES)
    atomic_write_bytes(md, format_markdown(result).encode())
    atomic_write_bytes(cs, format_csv(result).encode())
    atomic_write_json(js, result.as_dict())
    return {"markdown": md, "csv": cs, "json": js}


# ----------------------------------------------------------------------------- CLI
def _csv_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``python -m deep table``."""
    from .profiles import PROFILES

    p = subparsers.add_parser(
        "table",
        help="SB / LB / +LR / +GBN / +RA table over seeds, with the paper's claims checked",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick", help="rows and recipes")
    p.add_argument(
        "--model",
        type=_csv_list,
        default=None,
        help="comma-separated rows (network or model names); all by default",
    )
    p.add_argument(
        "--seeds", type=int, default=None, help="seeds per cell, 0..n-1 (profile default)"
    )
    p.add_argument(
        "--runs",
        "--out",
        dest="runs",
        default="runs",
        help="folder of the run folders, shared with every other command (default: runs)",
    )
    p.add_argument(
        "--table-dir",
        default=None,
        help="where table.md/.csv/.json go (default: RUNS/table-PROFILE-<hash of the settings>)",
    )
    p.add_argument("--data-root", default=None, help="folder of MNIST / CIFAR / ImageNet files")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (profile default)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    p.add_argument("--max-steps", type=int, default=None, help="cap every run (smoke tests)")
    p.add_argument(
        "--sharpness",
        action="store_true",
        help="also measure each run's top Hessian eigenvalue and Keskar sharpness",
    )
    p.add_argument(
        "--no-control",
        action="store_true",
        help="skip SB at twice the epochs (the control of sb_converged)",
    )
    add_backend_arguments(p)
    p.add_argument("--json", action="store_true", help="print table.json instead of markdown")
    p.set_defaults(func=_main)
    return p


def table_dir(runs: str | os.PathLike, profile: str, settings: dict[str, Any]) -> Path:
    """The folder of one table's files: ``runs/table-<profile>-<hash of settings>``.

    Tables with other rows, seeds, caps or controls get other folders, so none overwrites
    another.
    """
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    return Path(runs) / f"table-{profile}-{digest.hexdigest()[:10]}"


def _main(args: argparse.Namespace) -> int:
    for flag, value in (("--max-steps", args.max_steps), ("--jobs", args.jobs),
                        ("--seeds", args.seeds)):  # fmt: skip
        if value is not None and value < 1:
            print(f"error: {flag} must be a positive integer, got {value}", file=sys.stderr)
            return 2
    overrides = {"max_steps": args.max_steps} if args.max_steps else None
    settings = {
        "models": args.model,
        "seeds": args.seeds,
        "overrides": overrides,
        "control": not args.no_control,
    }
    if args.sharpness:
        settings["sharpness"] = True
    out = args.table_dir or table_dir(args.runs, args.profile, settings)
    result = run_table(
        args.profile,
        args.runs,
        models=args.model,
        seeds=args.seeds,
        data_root=args.data_root,
        device=args.device,
        n_jobs=args.jobs,
        out=out,
        overrides=overrides,
        control=False if args.no_control else None,
        progress=True,
        backend=args.backend,
        scheduler=args.scheduler,
        sharpness=args.sharpness,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
        return 0
    print(result.markdown())
    print(
        f"wall time {result.wall_seconds:.0f} s; files: "
        + ", ".join(str(p) for p in result.files.values())
    )
    print(f"table folder: {result.path}")
    return 0


# the one run protocol: diffusion.records.run(TableConfig(...)) is the table's run folder,
# runtime.jobs training runs at once
register_runner(TableConfig, run_table_config)
