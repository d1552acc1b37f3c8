"""The large-batch table: SB, LB, LB+LR, LB+LR+GBN, LB+LR+GBN+RA over several seeds.

For every recipe of a profile (:mod:`deep.profiles`) and every column, one training run per
seed is made with ``deep.train.train``; a finished run folder is reused, so an interrupted
table resumes where it stopped. Independent runs go through joblib in parallel
(``n_jobs``), each worker with its share of the CPU threads. The final validation
accuracies are summarised as mean +- std over seeds (sample std, ``ddof=1``) in a table
shaped like the paper's, written as markdown, CSV and JSON (atomically), together with the
three checks of the paper's ordering:

* ``lb_below_sb`` -- LB is below SB by more than the seed spread, ``max(std_SB, std_LB)``;
* ``ra_at_least_lr`` -- LB+LR+GBN+RA is at least as good as LB+LR (mean against mean);
* ``ra_within_sb`` -- LB+LR+GBN+RA is not below SB by more than SB's std.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from diffusion.records import atomic_write_bytes, atomic_write_json

from .profiles import REGIMES, Profile, Recipe, get_profile, regime_settings

__all__ = [
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

_SHORT = {"SB": "SB", "LB": "LB", "LB+LR": "+LR", "LB+LR+GBN": "+GBN", "LB+LR+GBN+RA": "+RA"}


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
    """

    regime: str
    batch_size: int
    accuracies: tuple[float, ...]
    seeds: tuple[int, ...]
    runs: tuple[str, ...]
    steps: tuple[int, ...]

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
        }


@dataclass(frozen=True)
class RowResult:
    """One row of the table: a recipe and its cells, with the ordering checks.

    Attributes
    ----------
    recipe : Recipe
        The row's recipe.
    cells : dict of str to Cell
        One cell per regime that was run.
    checks : dict of str to bool
        ``lb_below_sb``, ``ra_at_least_lr``, ``ra_within_sb`` (only those whose columns ran).
    """

    recipe: Recipe
    cells: dict[str, Cell]
    checks: dict[str, bool]

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
            "paper": list(r.paper) if r.paper else None,
            "note": r.note,
            "cells": {k: c.as_dict() for k, c in self.cells.items()},
            "checks": dict(self.checks),
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
    """

    profile: str
    description: str
    rows: tuple[RowResult, ...]
    regimes: tuple[str, ...]
    files: dict[str, Path]
    wall_seconds: float

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
                "lb_below_sb": "mean_SB - mean_LB > max(std_SB, std_LB)",
                "ra_at_least_lr": "mean_RA >= mean_LB+LR",
                "ra_within_sb": "mean_RA >= mean_SB - std_SB",
            },
        }


# ----------------------------------------------------------------------------- configs
def _check_seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise TypeError(f"seeds must be an int or a sequence of ints, got {seeds!r}")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds!r}")
        return tuple(range(int(seeds)))
    try:
        out = tuple(int(s) for s in seeds)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"seeds must be an int or a sequence of ints, got {seeds!r}") from exc
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds must be non-empty and distinct, got {seeds!r}")
    return out


def table_configs(
    profile: Profile,
    seeds: tuple[int, ...],
    *,
    data_root: str | None = None,
    device: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[tuple[Recipe, str, int, Any]]:
    """Every training configuration of a table: ``(recipe, regime, seed, TrainConfig)``.

    Parameters
    ----------
    profile : Profile
        Rows and columns.
    seeds : tuple of int
        Seeds of every cell.
    data_root : str, optional
        Folder of user-supplied data files.
    device : str, optional
        Overrides the profile's device.
    overrides : dict, optional
        Further ``TrainConfig`` fields applied to every run (e.g. ``max_steps`` for a smoke
        test, ``trace_per_decade``).
    """
    from .train import TrainConfig

    out = []
    for recipe in profile.recipes:
        for regime in profile.regimes:
            for seed in seeds:
                kw = regime_settings(recipe, regime)
                kw.update(seed=seed, data_root=data_root, device=device or profile.device)
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


def _train_one(config: Any, root: str, threads: int) -> tuple[str, float, int]:
    import torch

    from .train import train

    if threads > 0:
        torch.set_num_threads(threads)
    run = train(config, root, resume=True, progress=False)
    return str(run.path), final_accuracy(run.summary), int(run.summary.get("steps", -1))


def _cost(config: Any, recipe: Recipe) -> float:
    """Relative cost (samples processed) for scheduling the longest runs first."""
    epochs = config.epochs * (recipe.ratio if getattr(config, "regime_adaptation", False) else 1)
    return float(epochs)


# ----------------------------------------------------------------------------- checks
def ordering_checks(cells: dict[str, Cell]) -> dict[str, bool]:
    """The paper's ordering for one row (only the checks whose columns are present)."""
    out: dict[str, bool] = {}
    sb, lb = cells.get("SB"), cells.get("LB")
    lr, ra = cells.get("LB+LR"), cells.get("LB+LR+GBN+RA")
    if sb and lb:
        out["lb_below_sb"] = bool(sb.mean - lb.mean > max(sb.std, lb.std))
    if ra and lr:
        out["ra_at_least_lr"] = bool(ra.mean >= lr.mean)
    if ra and sb:
        out["ra_within_sb"] = bool(ra.mean >= sb.mean - sb.std)
    return out


# ----------------------------------------------------------------------------- runner
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
) -> TableResult:
    """Run (or reuse) every cell of a profile's table and write it.

    Parameters
    ----------
    profile : {'quick', 'paper'} or Profile
        The rows and columns.
    root : path
        Folder of the run folders (one per configuration and seed).
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
        Write the three files.

    Returns
    -------
    TableResult
    """
    prof = get_profile(profile).select(models)
    seed_list = _check_seeds(prof.seeds if seeds is None else seeds)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int, got {n_jobs!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    configs = table_configs(
        prof, seed_list, data_root=data_root, device=device, overrides=overrides
    )
    start = time.perf_counter()
    order = sorted(range(len(configs)), key=lambda i: -_cost(configs[i][3], configs[i][0]))
    if n_jobs == 1:
        results = {i: _train_one(configs[i][3], str(root), 0) for i in order}
    else:
        from joblib import Parallel, delayed

        threads = max(1, (os.cpu_count() or 1) // n_jobs)
        done = Parallel(n_jobs=n_jobs)(
            delayed(_train_one)(configs[i][3], str(root), threads) for i in order
        )
        results = dict(zip(order, done, strict=True))
    wall = time.perf_counter() - start

    rows = []
    for recipe in prof.recipes:
        cells = {}
        for regime in prof.regimes:
            idx = [i for i, c in enumerate(configs) if c[0] is recipe and c[1] == regime]
            cells[regime] = Cell(
                regime=regime,
                batch_size=configs[idx[0]][3].batch_size,
                accuracies=tuple(results[i][1] for i in idx),
                seeds=tuple(configs[i][2] for i in idx),
                runs=tuple(results[i][0] for i in idx),
                steps=tuple(results[i][2] for i in idx),
            )
        rows.append(RowResult(recipe, cells, ordering_checks(cells)))
    result = TableResult(prof.name, prof.description, tuple(rows), prof.regimes, {}, wall)
    if write and int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 writes
        files = write_table(result, Path(out) if out is not None else root)
        result = TableResult(
            result.profile, result.description, result.rows, result.regimes, files, wall
        )
    return result


# ----------------------------------------------------------------------------- writers
def _fmt(cell: Cell | None) -> str:
    if cell is None:
        return "--"
    return f"{cell.mean:.2f} ± {cell.std:.2f}"


def format_markdown(result: TableResult) -> str:
    """A markdown table shaped like the paper's, with the paper's numbers and the checks."""
    head = ["Network", "Dataset", "B_S / B_L", "seeds"] + [_SHORT[g] for g in result.regimes]
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
        lines.append(
            f"| {r.name} | {r.data} | {r.small_batch} / {r.large_batch} | {n} | "
            + " | ".join(cells)
            + " |"
        )
        if r.paper:
            ref = [f"({r.paper[REGIMES.index(g)]:.2f})" for g in result.regimes]
            lines.append("| (paper) | | | | " + " | ".join(ref) + " |")
    lines += ["", "Ordering of the paper (per row):", ""]
    for row in result.rows:
        c = row.cells
        parts = []
        if "lb_below_sb" in row.checks:
            gap = c["SB"].mean - c["LB"].mean
            spread = max(c["SB"].std, c["LB"].std)
            parts.append(
                f"LB below SB by more than the seed spread: {_yes(row.checks['lb_below_sb'])} "
                f"(gap {gap:.2f}, spread {spread:.2f})"
            )
        if "ra_at_least_lr" in row.checks:
            parts.append(
                f"+RA at least as good as +LR: {_yes(row.checks['ra_at_least_lr'])} "
                f"({c['LB+LR+GBN+RA'].mean:.2f} vs {c['LB+LR'].mean:.2f})"
            )
        if "ra_within_sb" in row.checks:
            parts.append(
                f"+RA within SB's spread: {_yes(row.checks['ra_within_sb'])} "
                f"({c['LB+LR+GBN+RA'].mean:.2f} vs {c['SB'].mean:.2f} ± {c['SB'].std:.2f})"
            )
        lines.append(f"- **{row.recipe.name}**: " + "; ".join(parts))
    if result.description:
        lines += ["", result.description]
    return "\n".join(lines) + "\n"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def format_csv(result: TableResult) -> str:
    """One line per cell, columns :data:`CSV_COLUMNS`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in result.rows:
        r = row.recipe
        for regime, cell in row.cells.items():
            paper = r.paper[REGIMES.index(regime)] if r.paper else ""
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
    p = subparsers.add_parser(
        "table",
        help="SB / LB / +LR / +GBN / +RA table over seeds",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--profile", choices=("quick", "paper"), default="quick")
    p.add_argument(
        "--model",
        type=_csv_list,
        default=None,
        help="comma-separated rows (network or model names); all by default",
    )
    p.add_argument("--seeds", type=int, default=None, help="seeds per cell (profile default: 3)")
    p.add_argument("--out", default="runs", help="folder for run folders and the table files")
    p.add_argument("--data-root", default=None, help="folder of MNIST / CIFAR / ImageNet files")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (profile default)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    p.add_argument("--max-steps", type=int, default=None, help="cap every run (smoke tests)")
    p.set_defaults(func=_main)
    return p


def _main(args: argparse.Namespace) -> int:
    overrides = {"max_steps": args.max_steps} if args.max_steps else None
    result = run_table(
        args.profile,
        Path(args.out) / f"table-{args.profile}",
        models=args.model,
        seeds=args.seeds,
        data_root=args.data_root,
        device=args.device,
        n_jobs=args.jobs,
        out=args.out,
        overrides=overrides,
    )
    print(result.markdown())
    print(
        f"wall time {result.wall_seconds:.0f} s; files: "
        + ", ".join(str(p) for p in result.files.values())
    )
    return 0
