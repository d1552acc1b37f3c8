"""Figure ``sharpness``: how sharp each regime's minimum is; does gradient noise set the pace?

(A) The largest Hessian eigenvalue of the training loss at the final weights of every run of
the large-batch table (SB, LB, +LR, +GBN, +RA), measured by Lanczos on Hessian-vector
products over a seeded subset of the training data with batch norm in evaluation mode
(:func:`deep.sharpness.sharpness_of_run`); bars are the mean over seeds, error bars one sample
standard deviation, dots the single seeds.
(B) Keskar et al.'s epsilon-sharpness of the same runs (L-BFGS-B, relative box radius
epsilon, in the full weight space; the tiny profile measures one seed per cell, in a random
subspace).
(C) For every batch size of the distance sweep (equal epochs, constant learning rate): the
diffusion coefficient that the gradient noise predicts, ``D = eta^2 tr(Sigma) / (B (1 - mu)^2)``
with ``tr(Sigma)`` from per-example gradients at the initial weights
(:func:`deep.noise.compare_with_distance_sweep`), and the measured slope ``b`` of
``a + b log t`` fitted to ``||w_t - w_0||`` (error bars: its standard error); both relative
to the smallest batch, on log axes. The runs are those of the ``table`` and ``distance``
figures, reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deep.noise import SweepComparison, compare_with_distance_sweep
from deep.sharpness import SharpnessResult, sharpness_of_run
from deep.table import SHARPNESS_SETTINGS, TableResult
from figures import distance as distance_figure
from figures import style
from figures import table as table_figure
from figures.output import save_data, save_figure
from figures.registry import FigureResult, check_profile, progress
from figures.settings import data_root, torch_threads

NAME = "sharpness"
TITLE = "top Hessian eigenvalue and Keskar sharpness per regime; predicted diffusion vs log slope"


@dataclass(frozen=True)
class SharpnessSettings:
    """How much data and effort each measurement gets, per profile.

    ``n_samples`` training samples for the sharpness measures (``noise_samples`` for the
    gradient noise), Keskar's box radius ``epsilon``, L-BFGS-B iterations ``maxiter`` and
    subspace dimension ``subspace_dim`` (``None``: the full space), the relative tolerance
    ``tol`` of Lanczos, and ``max_seeds``, the seeds measured per cell (``None``: all).
    """

    n_samples: int
    noise_samples: int
    epsilon: float = 1e-3
    maxiter: int = 10
    subspace_dim: int | None = None
    tol: float = 1e-4
    max_seeds: int | None = None


SETTINGS = {
    # seconds: one seed per cell, 32 samples, Keskar in a 4-dimensional subspace (scipy's
    # L-BFGS-B spends ~5 s per call setting up the bounds of F1's 1.46M weights)
    "tiny": SharpnessSettings(
        n_samples=32, noise_samples=64, maxiter=2, subspace_dim=4, tol=1e-2, max_seeds=1
    ),
    # the table's own settings, so the measurements the table keeps are the figure's
    "quick": SharpnessSettings(**SHARPNESS_SETTINGS, noise_samples=1024),
    "full": SharpnessSettings(n_samples=2048, noise_samples=1024),
}


@dataclass(frozen=True)
class SharpnessFigureData:
    """What the figure draws: the table's sharpness per cell and the sweep comparison.

    Attributes
    ----------
    table : TableResult
        The finished table.
    sharpness : dict of (str, str) to list of SharpnessResult
        ``(row name, regime)`` -> one result per seed, in the cell's seed order.
    sweep : SweepComparison
        Predicted diffusion against measured log slope.
    settings : SharpnessSettings
        The measurement settings.
    """

    table: TableResult
    sharpness: dict[tuple[str, str], list[SharpnessResult]]
    sweep: SweepComparison
    settings: SharpnessSettings


def compute(profile: str, runs: Path) -> SharpnessFigureData:
    """Reuse (or run) the table and the distance sweep, then measure their runs."""
    s = SETTINGS[check_profile(profile)]
    table = table_figure.compute(profile, runs)
    sweep_runs = distance_figure.compute(profile, runs)
    root = data_root()
    cells = [(row, g) for row in table.rows for g in table.regimes]
    n = sum(len(row.cells[g].runs[: s.max_seeds]) for row, g in cells)
    progress(f"  {NAME}: sharpness of {n} table runs on {s.n_samples} training samples each")
    with torch_threads(1):
        sharp = {
            (row.recipe.name, g): [
                sharpness_of_run(
                    run,
                    n_samples=s.n_samples,
                    epsilon=s.epsilon,
                    subspace_dim=s.subspace_dim,
                    maxiter=s.maxiter,
                    tol=s.tol,
                    data_root=root,
                )
                for run in row.cells[g].runs[: s.max_seeds]
            ]
            for row, g in cells
        }
        progress(f"  {NAME}: gradient noise of the {len(sweep_runs.batch_sizes)} sweep runs")
        sweep = compare_with_distance_sweep(
            sweep_runs, at="initial", n_samples=s.noise_samples, data_root=root
        )
    return SharpnessFigureData(table, sharp, sweep, s)


def arrays(data: SharpnessFigureData) -> dict[str, np.ndarray]:
    """The numbers drawn, under self-explaining keys (regime x seed matrices per row)."""
    out: dict[str, np.ndarray] = {"regimes": np.asarray(data.table.regimes)}
    for row in data.table.rows:
        name = row.recipe.name
        for key, get in (
            ("top_eigenvalue", lambda r: r.top_eigenvalue),
            ("eps_sharpness", lambda r: r.epsilon.sharpness),
            ("loss", lambda r: r.hessian.loss),
        ):
            cells = [[get(r) for r in data.sharpness[name, g]] for g in data.table.regimes]
            width = max(len(c) for c in cells)
            m = np.full((len(cells), width), np.nan)
            for i, c in enumerate(cells):
                m[i, : len(c)] = c
            out[f"{name}.{key}"] = m
    sw = data.sweep
    out.update(
        {
            "sweep.batch_sizes": sw.batch_sizes,
            "sweep.diffusion": sw.diffusion,
            "sweep.slope": sw.slope,
            "sweep.slope_se": sw.slope_se,
            "sweep.trace_sigma": np.array([r.noise.trace_sigma for r in sw.noise]),
            "sweep.b_simple": np.array([r.noise.b_simple for r in sw.noise]),
            "sweep.lr": np.array([r.lr for r in sw.noise]),
            "sweep.exponent": np.array([sw.exponent, sw.exponent_se]),
        }
    )
    return out


def _bars(ax, data: SharpnessFigureData, values: dict[str, np.ndarray], ylabel: str) -> None:
    """Grouped bars per regime (one colour per row), error bars = sample std, dots = seeds."""
    regimes = data.table.regimes
    rows = [row.recipe.name for row in data.table.rows]
    width = 0.8 / len(rows)
    x = np.arange(len(regimes))
    for j, name in enumerate(rows):
        m = values[name]
        mean = np.nanmean(m, axis=1)
        std = np.array(
            [np.std(r[np.isfinite(r)], ddof=1) if np.isfinite(r).sum() > 1 else 0.0 for r in m]
        )
        pos = x - 0.4 + width * (j + 0.5)
        ax.bar(
            pos,
            mean,
            width * 0.9,
            yerr=std,
            color=style.color(j),
            alpha=0.8,
            capsize=2,
            label=name,
            error_kw={"elinewidth": 0.8},
        )
        for i in range(len(regimes)):
            seeds = m[i][np.isfinite(m[i])]
            ax.plot(np.full(len(seeds), pos[i]), seeds, "o", color="black", ms=2, zorder=3)
    labels = [table_figure.SHORT.get(g, g).replace("\n", " ") for g in regimes]
    ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=6)
    ax.set_ylabel(ylabel)
    ax.grid(axis="x", visible=False)
    if len(rows) > 1:
        ax.legend(fontsize=6)


def _sweep_panel(ax, sweep: SweepComparison) -> None:
    b = sweep.batch_sizes.astype(float)
    d = sweep.diffusion / sweep.diffusion[0]
    ax.loglog(
        b,
        d,
        "s-",
        color=style.color(0),
        ms=3.5,
        label=r"predicted $D=\eta^2\,\mathrm{tr}\Sigma/(B(1-\mu)^2)$",
    )
    ok = np.isfinite(sweep.slope) & (sweep.slope > 0)
    if ok.any():
        ref = sweep.slope[ok][0]
        ax.errorbar(
            b[ok],
            sweep.slope[ok] / ref,
            yerr=sweep.slope_se[ok] / ref,
            fmt="o-",
            color=style.color(1),
            ms=3.5,
            capsize=2,
            label=r"measured slope $b$ of $a+b\log t$",
        )
    text = (
        f"slope $\\propto D^{{\\alpha}}$: "
        f"$\\alpha$ = {sweep.exponent:.2f} ± {sweep.exponent_se:.2f}"
        if np.isfinite(sweep.exponent)
        else "no exponent (< 3 fitted batch sizes)"
    )
    ax.text(0.97, 0.97, text, transform=ax.transAxes, fontsize=6, va="top", ha="right")
    ax.set_xlabel("batch size $B$")
    ax.set_ylabel("relative to the smallest batch")
    ax.legend(fontsize=5.5, loc="lower left")


def draw(data: SharpnessFigureData):
    """The three panels."""
    fig, axes = style.new_figure(1, 3, width="page", aspect=1.15)
    ax, bx, cx = axes[0]
    values = arrays(data)
    rows = [row.recipe.name for row in data.table.rows]
    _bars(ax, data, {n: values[f"{n}.top_eigenvalue"] for n in rows}, r"top Hessian eigenvalue")
    ax.set_title(f"at $w_T$, {data.settings.n_samples} samples", fontsize=6.5, loc="right")
    _bars(bx, data, {n: values[f"{n}.eps_sharpness"] for n in rows}, r"$\epsilon$-sharpness (%)")
    space = data.settings.subspace_dim
    where = "full space" if space is None else f"{space}-dim subspace"
    bx.set_title(
        f"Keskar, $\\epsilon$={data.settings.epsilon:g}, {where}", fontsize=6.5, loc="right"
    )
    _sweep_panel(cx, data.sweep)
    cx.set_title("noise at $w_0$ vs log slope", fontsize=6.5, loc="right")
    for a, letter in zip((ax, bx, cx), "ABC", strict=True):
        style.panel_label(a, letter)
    return fig


def build(profile: str, runs: Path, out: Path) -> FigureResult:
    """Build the figure: see the module docstring."""
    return render(compute(profile, Path(runs)), Path(out))


def render(data: SharpnessFigureData, out: Path) -> FigureResult:
    """Draw and save the figure of measured ``data`` (PNG, PDF, ``.npz``)."""
    progress(f"{NAME}: drawing")
    paths = save_figure(draw(data), Path(out), NAME)
    saved = save_data(Path(out), NAME, arrays(data))
    used = tuple(Path(r.run) for cell in data.sharpness.values() for r in cell) + tuple(
        Path(r.run) for r in data.sweep.noise
    )
    caption = " ".join(__doc__.split("\n", 1)[1].split())
    return FigureResult(NAME, paths, saved, {}, used, caption)
