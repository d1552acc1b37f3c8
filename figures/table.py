"""Figure ``table``: the large-batch table (SB, LB, +LR, +GBN, +RA) as grouped bars and markdown.

One panel per network of the profile; in each, one bar per column of the paper's Table 1
(mean validation accuracy over seeds, error bar one sample standard deviation, dots the
single seeds). The runs are those of :func:`deep.table.run_table`, which reuses finished
run folders; ``table.md`` beside the figure is its markdown table with the paper's
ordering checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deep.profiles import ALL_REGIMES, REGIMES, get_profile
from deep.table import TableResult, format_markdown, run_table
from diffusion.records import atomic_write_bytes, atomic_write_json
from figures import style
from figures.output import save_data, save_figure
from figures.registry import FigureResult, check_profile, heartbeat, progress
from figures.settings import data_root, torch_threads

NAME = "table"
TITLE = "validation accuracy of SB / LB / +LR / +GBN / +RA: grouped bars (mean ± std) + markdown"

SHORT = {
    "SB": "SB",
    "LB": "LB",
    "LB+LR": "+LR",
    "LB+LR+GBN": "+GBN",
    "LB+LR+GBN+RA": "+RA",
    "LB+LIN+WU": "+lin\n+warm",
    "LB+LR-CLIP": "+LR\n-clip",
}


@dataclass(frozen=True)
class TableSettings:
    """Which table to run: a :mod:`deep.profiles` profile, restricted and overridden.

    ``n_jobs`` runs train at once (processes, one thread each); ``needs_data`` marks a
    profile that reads user-supplied data files; ``sharpness`` adds the sharpness rows (the
    measurements are kept beside the runs and shared with the ``sharpness`` figure).
    """

    profile: str
    models: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    n_jobs: int = 1
    needs_data: bool = False
    sharpness: bool = False


SETTINGS = {
    # a few steps of each column (and of the SB control): exercises every code path in seconds
    "tiny": TableSettings(
        "quick",
        models=("F1",),
        seeds=(0, 1),
        overrides={"max_steps": 6, "eval_every": None, "trace_per_decade": 5},
    ),
    # deep's quick profile as it is (F1 on MNIST-5k, 32 epochs, 5 seeds); two runs at a time
    "quick": TableSettings("quick", n_jobs=2, sharpness=True),
    "full": TableSettings("paper", needs_data=True),
}


def compute(profile: str, runs: Path) -> TableResult:
    """Run (or reuse) the table behind the figure for ``profile``."""
    s = SETTINGS[check_profile(profile)]
    root = data_root() if s.needs_data else None
    if s.needs_data and root is None:
        raise ValueError(
            "the full table trains the paper's networks on MNIST/CIFAR/ImageNet files: "
            "pass --data-root DIR (or set ULTRASLOW_DATA)"
        )
    prof = get_profile(s.profile).select(s.models)
    n_runs = len(prof.recipes) * len(prof.regimes) * (len(s.seeds) if s.seeds else prof.seeds)
    progress(
        f"  deep.table.run_table({s.profile!r}): {[r.name for r in prof.recipes]} "
        f"x {len(prof.regimes)} "
        f"regimes, {n_runs} training runs (finished ones are reused)"
    )
    with heartbeat(runs, "table", total=n_runs), torch_threads(1):
        return run_table(
            s.profile,
            runs,
            models=s.models,
            seeds=s.seeds,
            data_root=root,
            overrides=s.overrides or None,
            n_jobs=s.n_jobs,
            write=False,
            sharpness=s.sharpness,
        )


def _arrays(result: TableResult) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"regimes": np.asarray(result.regimes)}
    for row in result.rows:
        key = row.recipe.name
        cells = [row.cells[g] for g in result.regimes]
        n = max(len(c.accuracies) for c in cells)
        acc = np.full((len(cells), n), np.nan)
        for i, c in enumerate(cells):
            acc[i, : len(c.accuracies)] = c.accuracies
        out[f"{key}.accuracies"] = acc
        out[f"{key}.mean"] = np.array([c.mean for c in cells])
        out[f"{key}.std"] = np.array([c.std for c in cells])
        out[f"{key}.batch_size"] = np.array([c.batch_size for c in cells])
        out[f"{key}.steps"] = np.array([max(c.steps) for c in cells])
        paper = row.recipe.paper
        out[f"{key}.paper"] = (
            np.array([paper[REGIMES.index(g)] if g in REGIMES else np.nan for g in result.regimes])
            if paper
            else np.full(len(cells), np.nan)
        )
    return out


def draw(result: TableResult):
    """The grouped bar chart of a :class:`~deep.table.TableResult`."""
    n = len(result.rows)
    fig, axes = style.new_figure(1, n, width="page" if n > 1 else "column", aspect=0.8)
    x = np.arange(len(result.regimes))
    for ax, row in zip(axes[0], result.rows, strict=True):
        cells = [row.cells[g] for g in result.regimes]
        mean = np.array([c.mean for c in cells])
        std = np.array([c.std for c in cells])
        colors = [style.color(ALL_REGIMES.index(g)) for g in result.regimes]
        lo = min(min(c.accuracies) for c in cells)
        hi = max(max(c.accuracies) for c in cells)
        pad = max(0.15 * (hi - lo), 0.5)
        bottom = max(0.0, lo - 3 * pad)
        ax.bar(
            x,
            mean - bottom,
            bottom=bottom,
            color=colors,
            width=0.7,
            alpha=0.85,
            yerr=std,
            capsize=2.5,
            error_kw={"elinewidth": 0.8, "capthick": 0.8},
        )
        for i, c in enumerate(cells):
            ax.plot(
                np.full(len(c.accuracies), x[i]), c.accuracies, "o", color="black", ms=2, zorder=3
            )
            ax.text(
                x[i],
                mean[i] + std[i] + 0.2 * pad,
                f"{mean[i]:.1f}",
                ha="center",
                va="bottom",
                fontsize=6,
            )
        if row.recipe.paper:
            paper = [
                row.recipe.paper[REGIMES.index(g)] if g in REGIMES else np.nan
                for g in result.regimes
            ]
            ax.plot(
                x,
                paper,
                "D",
                color="black",
                mfc="white",
                ms=3.5,
                mew=0.8,
                zorder=4,
                label="paper (its dataset and batch sizes)",
            )
            hi = max(hi, np.nanmax(paper))
            ax.legend(loc="upper left", fontsize=6)
        labels = [SHORT[g] for g in result.regimes]
        if row.control is not None:  # SB trained twice as long: the control of sb_converged
            xc = len(result.regimes)
            ctrl = row.control
            ax.bar(xc, ctrl.mean - bottom, bottom=bottom, color="white", edgecolor=colors[0],
                   hatch="///", width=0.7, yerr=ctrl.std, capsize=2.5)  # fmt: skip
            ax.plot(np.full(len(ctrl.accuracies), xc), ctrl.accuracies, "o", color="black", ms=2)
            labels.append(f"SB\n{ctrl.epochs:g} ep")
            lo, hi = min(lo, min(ctrl.accuracies)), max(hi, max(ctrl.accuracies))
        verdicts = "; ".join(
            f"{name} {dict([(True, 'pass'), (False, 'FAIL'), (None, 'n/j')])[c.passed]}"
            for name, c in row.checks.items()
        )
        ax.set_ylim(bottom, hi + 2 * pad)
        ax.set_xticks(range(len(labels)), labels)
        ax.grid(axis="x", visible=False)
        r = row.recipe
        seeds = len(cells[0].accuracies)
        ax.set_title(
            f"{r.name} on {r.data}: $B_S$={r.small_batch}, $B_L$={r.large_batch} ({seeds} seeds)"
            f"\n{verdicts}",
            fontsize=7,
        )
        ax.set_ylabel("validation accuracy (%)")
        ax.set_xlabel("regime (bars from the axis floor; dots: single seeds)")
    return fig


def build(profile: str, runs: Path, out: Path) -> FigureResult:
    """Build the ``table`` figure: see the module docstring."""
    result = compute(profile, Path(runs))
    out = Path(out)
    progress("table: drawing")
    paths = save_figure(draw(result), out, NAME)
    md = atomic_write_bytes(out / f"{NAME}.md", format_markdown(result).encode())
    summary = atomic_write_json(out / f"{NAME}.json", result.as_dict())
    data = save_data(out, NAME, _arrays(result))
    run_paths = tuple(Path(p) for row in result.rows for c in row.cells.values() for p in c.runs)
    caption = (
        f"Final validation accuracy per regime ({result.profile} profile). {result.description}"
    )
    return FigureResult(NAME, paths + (md, summary), data, {}, run_paths, caption)
