"""Figure ``distance``: the seed's figure -- how far the weights travel, ``||w_t - w_0||``.

(A) Equal epochs: each batch size trains the same number of epochs at the same learning rate
with no learning-rate drop (the initial phase), so a batch ``B`` makes ``E n / B`` steps.
The distance is drawn against the step on a log axis; dashed, the law
``a + b log t`` fitted by the shared metrics over ``t >= t_min`` (the legend gives the law
that BIC prefers among log, polylog, power and power-with-offset).
(B) Regime adaptation: batch ``B`` trains ``E B / B_0`` epochs at ``lr sqrt(B / B_0)`` --
as many steps as the smallest batch ``B_0``. The paper's claim is that the curves then fall on
one another; the panel gives their spread ``(max - min) / mean`` at the common last step,
beside the same spread for the equal-epoch runs. All runs come from
:func:`deep.distance.run_distance`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deep.distance import DistanceResult, run_distance
from diffusion.metrics import LawFit
from figures import style
from figures.output import save_data, save_figure
from figures.registry import FigureResult, check_profile, heartbeat, progress
from figures.settings import data_root, torch_threads

NAME = "distance"
TITLE = "the seed's figure: ||w_t - w_0|| vs step per batch size with fitted log laws; RA sweep"


@dataclass(frozen=True)
class DistanceSettings:
    """Arguments of :func:`deep.distance.run_distance` for one profile."""

    model: str
    data: str
    batch_sizes: tuple[int, ...]
    epochs: float
    adapted_epochs: float
    lr: float = 0.1
    t_min: int = 10
    n_jobs: int = 1
    needs_data: bool = False


SETTINGS = {
    "tiny": DistanceSettings(
        "mlp1d", "mnist1d", (16, 64), epochs=1.0, adapted_epochs=0.25, lr=0.05
    ),
    # F1 on MNIST-5k as in the quick table; two runs at a time, one thread each
    "quick": DistanceSettings(
        "f1", "mnist5k", (32, 128, 512, 2048), epochs=20.0, adapted_epochs=4.0, n_jobs=2
    ),
    # the seed's network: ResNet44 on CIFAR-10 (user files), the initial phase before the first drop
    "full": DistanceSettings(
        "resnet44",
        "cifar10",
        (128, 512, 2048, 4096),
        epochs=80.0,
        adapted_epochs=2.0,
        needs_data=True,
    ),
}


def compute(profile: str, runs: Path) -> DistanceResult:
    """Run (or reuse) the batch-size sweep behind the figure (shared with ``overlay``)."""
    s = SETTINGS[check_profile(profile)]
    root = data_root() if s.needs_data else None
    if s.needs_data and root is None:
        raise ValueError(
            f"the full distance figure trains {s.model} on {s.data} files: pass --data-root DIR "
            "(or set ULTRASLOW_DATA)"
        )
    progress(
        f"  deep.distance.run_distance: {s.model} on {s.data}, batch sizes {list(s.batch_sizes)}, "
        f"{s.epochs:g} epochs (+ adapted sweep)"
    )
    with heartbeat(Path(runs), "distance", total=2 * len(s.batch_sizes)), torch_threads(1):
        return run_distance(
            Path(runs),
            model=s.model,
            data=s.data,
            batch_sizes=s.batch_sizes,
            epochs=s.epochs,
            adapted_epochs=s.adapted_epochs,
            lr=s.lr,
            t_min=s.t_min,
            data_root=root,
            device="auto" if s.needs_data else "cpu",
            n_jobs=s.n_jobs,
        )


def draw(result: DistanceResult):
    """The two panels; returns ``(fig, arrays, fits)``."""
    fig, axes = style.new_figure(1, 2, width="page", aspect=0.78, sharey=True)
    ax, bx = axes[0]
    arrays: dict[str, np.ndarray] = {"batch_sizes": np.asarray(result.batch_sizes)}
    fits: dict[str, LawFit] = {}
    growth = {}
    for i, b in enumerate(result.batch_sizes):
        c = style.color(i)
        bf = result.equal_epochs[b]
        tr = bf.trace
        keep = tr.t >= 1
        ax.semilogx(tr.t[keep], tr.distance[keep], color=c, label=f"$B={b}$ ({bf.steps} steps)")
        arrays.update({f"B{b}.t": tr.t, f"B{b}.distance": tr.distance})
        if bf.fit is not None and "log" in bf.fit.fits:
            log_fit = bf.fit.fits["log"]
            fits[f"B{b}.log"] = log_fit
            growth[f"B{b}.log"] = log_fit
            growth[f"B{b}.laws"] = bf.fit
            best = bf.fit.best.law
            style.plot_fit(
                ax, log_fit, color=c, label=f"{style.law_text(log_fit)}; BIC best: {best}"
            )
        if b in result.adapted:
            ad = result.adapted[b]
            keep = ad.t >= 1
            bx.semilogx(
                ad.t[keep],
                ad.distance[keep],
                color=c,
                label=f"$B={b}$, lr$\\times{np.sqrt(b / result.batch_sizes[0]):.3g}$",
            )
            arrays.update({f"B{b}.adapted.t": ad.t, f"B{b}.adapted.distance": ad.distance})
    ax.axvline(result.t_min, color="0.6", lw=0.6, ls=":")
    ax.set_xlabel("SGD step $t$")
    ax.set_ylabel(r"distance from the start $\|w_t-w_0\|$")
    ax.set_title(f"{result.model} on {result.data}: {result.epochs:g} epochs at every batch size")
    ax.legend(loc="upper left", fontsize=5.8, ncol=1)
    bx.set_xlabel("SGD step $t$")
    if result.adapted:
        bx.set_title(
            f"regime adaptation: {result.adapted_epochs:g}$\\,B/B_0$ epochs, lr $\\sqrt{{B/B_0}}$"
        )
        bx.text(
            0.97,
            0.04,
            f"(max-min)/mean at step {result.adapted_steps}: {100 * result.adapted_spread:.0f}%\n"
            f"equal epochs, at step {min(f.steps for f in result.equal_epochs.values())}: "
            f"{100 * result.equal_steps_spread:.0f}%",
            transform=bx.transAxes,
            ha="right",
            va="bottom",
            fontsize=6,
        )
        bx.legend(loc="upper left", fontsize=6)
    style.panel_label(ax, "A")
    style.panel_label(bx, "B")
    return fig, arrays, fits, growth


def build(profile: str, runs: Path, out: Path) -> FigureResult:
    """Build the figure: see the module docstring."""
    result = compute(profile, Path(runs))
    progress(f"{NAME}: drawing")
    fig, arrays, fits, growth = draw(result)
    paths = save_figure(fig, out, NAME)
    data = save_data(out, NAME, arrays, growth)
    used = tuple(Path(f.run) for f in result.equal_epochs.values()) + tuple(
        Path(p) for p in result.adapted_runs.values()
    )
    return FigureResult(NAME, paths, data, fits, used, " ".join(__doc__.split("\n\n")[1].split()))
