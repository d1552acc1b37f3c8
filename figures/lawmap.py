"""Figure ``lawmap``: where ``||w_t - w_0||`` grows like ``log t`` -- and where it does not.

One panel per (batch norm, weight decay); in each, one cell per (data size relative to the
steps, i.e. the epochs those steps make; learning rate). A cell is one constant-learning-rate
run of the MNIST-1D MLP for the same number of SGD steps, fitted by the shared ruler over
``t >= t_min``. Its colour is ``dBIC`` of the log law against the law BIC selects (white: the
log law is selected or within 2; dark: far from it); its text gives the selected law with its
exponent (``t^nu`` for the power laws, ``(log t)^k`` for the polylog) and the final training
accuracy. Cells where the ``log_law`` check of :mod:`deep.checks` holds are framed. All runs
come from :func:`deep.lawmap.run_lawmap`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.patches import Rectangle

from deep.lawmap import COLLAPSED_ACCURACY, LawMapConfig, LawMapResult, run_lawmap
from diffusion.records import atomic_write_json
from figures import style
from figures.output import save_data, save_figure
from figures.registry import FigureResult, check_profile, heartbeat, progress
from figures.settings import torch_threads

NAME = "lawmap"
TITLE = "where ||w_t - w_0|| ~ log t holds: best law and dBIC(log) over epochs, lr, wd and BN"

SETTINGS = {
    "tiny": LawMapConfig(
        datasets=("mnist1d",),
        lrs=(0.05,),
        weight_decays=(0.0,),
        batch_norm=(True, False),
        steps=100,
        trace_per_decade=10,
    ),
    "quick": LawMapConfig(),
    "full": LawMapConfig(
        lrs=(0.02, 0.05, 0.1, 0.2), weight_decays=(0.0, 1e-4, 5e-4, 2e-3), steps=20_000
    ),
}

_SHORT = {"log": "log", "polylog": "polylog", "power": "t^nu", "power_offset": "c+t^nu"}


def compute(profile: str, runs: Path) -> LawMapResult:
    """Run (or reuse) the map's cells."""
    from deep.train import Runtime

    config = SETTINGS[check_profile(profile)]
    n = len(config.cells())
    progress(f"  deep.lawmap.run_lawmap: {n} cells of {config.steps} steps (finished ones reused)")
    runtime = Runtime(device="cpu", progress=False)
    with heartbeat(Path(runs), "lawmap", total=n), torch_threads(1):
        return run_lawmap(config, Path(runs), runtime=runtime, n_jobs=2 if n > 4 else 1)


def _label(cell) -> str:
    if cell.best == "(no fit)":
        return "diverged"
    if cell.train_acc < COLLAPSED_ACCURACY:
        return f"collapsed\ntrain {100 * cell.train_acc:.0f}%"
    if cell.best in ("power", "power_offset"):
        name = r"$t^\nu$" if cell.best == "power" else r"$c+t^\nu$"
        exponent = rf"$\nu$={cell.nu:.2f}" if np.isfinite(cell.nu) else ""
    elif cell.best == "polylog":
        name = r"$(\log t)^k$"
        exponent = f"k={cell.k:.2f}" if np.isfinite(cell.k) else ""
    else:
        name, exponent = cell.best, ""
    return f"{name}\n{exponent}\ntrain {100 * cell.train_acc:.0f}%"


def draw(result: LawMapResult):
    """The panels; returns ``(fig, arrays)``."""
    c = result.config
    bns, wds = c.batch_norm, c.weight_decays
    fig, axes = style.new_figure(len(bns), len(wds), width="page", aspect=0.3 * len(wds))
    norm = LogNorm(vmin=1, vmax=1000)
    cmap = "Greys"
    arrays: dict[str, np.ndarray] = {
        "epochs": np.array([c.epochs(d) for d in c.datasets]),
        "lrs": np.asarray(c.lrs),
    }
    image = None
    for i, bn in enumerate(bns):
        for j, wd in enumerate(wds):
            ax = axes[i, j]
            grid = np.full((len(c.lrs), len(c.datasets)), np.nan)
            for cell in result.cells:
                if cell.batch_norm != bn or cell.weight_decay != wd:
                    continue
                x, y = c.datasets.index(cell.dataset), c.lrs.index(cell.lr)
                grid[y, x] = cell.delta_bic_log
                ax.text(x, y, _label(cell), ha="center", va="center", fontsize=5,
                        color="black" if not np.isfinite(cell.delta_bic_log)
                        or cell.delta_bic_log < 100 else "white")  # fmt: skip
                if cell.log_law.passed:
                    ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, lw=2, ec="C3"))
            shown = np.clip(np.nan_to_num(grid, nan=1.0), 1, 1000)
            image = ax.imshow(shown, origin="lower", cmap=cmap, norm=norm, aspect="auto")
            ax.set_xticks(range(len(c.datasets)), [f"{c.epochs(d):g}" for d in c.datasets])
            ax.set_yticks(range(len(c.lrs)), [f"{lr:g}" for lr in c.lrs])
            ax.grid(False)
            if i == len(bns) - 1:
                ax.set_xlabel(f"epochs in {c.steps} steps")
            if j == 0:
                ax.set_ylabel("learning rate")
            ax.set_title(f"BN {'on' if bn else 'off'}, weight decay {wd:g}", fontsize=7)
            arrays[f"bn{int(bn)}.wd{wd:g}.delta_bic_log"] = grid
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
        bar.set_label(r"$\Delta$BIC of $a+b\log t$ (clipped to [1, 1000])")
    n_log = len(result.log_cells)
    sizes = ", ".join(c.datasets)
    fig.suptitle(
        f"||w_t - w_0|| over {c.steps} SGD steps of an MNIST-1D MLP (B={c.batch_size}, fit "
        f"t >= {c.t_min}; data {sizes}): the log law holds in {n_log} of {len(result.cells)} "
        "cells (framed)",
        fontsize=7,
    )
    return fig, arrays


def build(profile: str, runs: Path, out: Path) -> FigureResult:
    """Build the figure: see the module docstring."""
    result = compute(profile, Path(runs))
    progress(f"{NAME}: drawing")
    fig, arrays = draw(result)
    paths = save_figure(fig, out, NAME) + (
        atomic_write_json(Path(out) / f"{NAME}.json", result.as_dict()),
    )
    for i, cell in enumerate(result.cells):
        arrays[f"cell{i}.t"], arrays[f"cell{i}.distance"] = cell.trace.t, cell.trace.distance
    data = save_data(out, NAME, arrays)
    used = tuple(Path(cell.run) for cell in result.cells) + (Path(result.path),)
    return FigureResult(NAME, paths, data, {}, used, " ".join(__doc__.split("\n\n")[1].split()))
