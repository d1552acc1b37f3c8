"""Figure ``distance``: the seed's figure -- how far the weights travel, ``||w_t - w_0||``.

(A) Equal epochs: each batch size trains the same number of epochs at the same learning rate
with no learning-rate drop (the initial phase of the quick table's recipe), so a batch ``B``
makes ``E n / B`` steps. The distance is drawn against the step on a log axis; dashed, the
law that BIC selects among log, polylog, power and power-with-offset over ``t >= t_min``;
the legend gives ``dBIC`` of the log law (0 when it is selected) -- the seed's claim is that
it is the log law. (B) Regime adaptation: batch ``B`` trains ``E B / B_0`` epochs at
``lr sqrt(B / B_0)`` with ghost batch norm -- as many steps as the smallest batch ``B_0``.
The paper's claim is that the curves then fall on one another; the panel gives the largest
spread ``(max - min) / mean`` over the common steps past ``t_min``. The checks of
:mod:`deep.checks` are printed under the panels. All runs come from
:func:`deep.distance.run_distance`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deep.distance import DistanceConfig, DistanceResult, run_distance
from diffusion.metrics import LawFit
from diffusion.records import atomic_write_json
from figures import style
from figures.output import save_data, save_figure
from figures.registry import FigureResult, check_profile, heartbeat, progress
from figures.settings import data_root, torch_threads

NAME = "distance"
TITLE = "the seed's figure: ||w_t - w_0|| vs step per batch size, BIC's law and checks; RA sweep"


@dataclass(frozen=True)
class DistanceSettings:
    """The sweep of one profile and how to run it."""

    config: DistanceConfig
    n_jobs: int = 1
    needs_data: bool = False


SETTINGS = {
    "tiny": DistanceSettings(
        DistanceConfig(
            "mlp1d",
            "mnist1d",
            (16, 64),
            epochs=1.0,
            adapted_epochs=0.25,
            lr=0.05,
            ghost_size=16,
            trace_per_decade=10,
        )
    ),
    # the quick table's network, data and recipe during its initial phase (16 epochs before
    # the first drop), B_S = 32 to B_L = 1024; two runs at a time, one thread each
    "quick": DistanceSettings(DistanceConfig(), n_jobs=2),
    # the seed's network: ResNet44 on CIFAR-10 (user files), the initial phase before the first drop
    "full": DistanceSettings(
        DistanceConfig(
            "resnet44",
            "cifar10",
            (128, 512, 2048, 4096),
            epochs=80.0,
            adapted_epochs=2.0,
            ghost_size=128,
        ),
        needs_data=True,
    ),
}


def compute(profile: str, runs: Path) -> DistanceResult:
    """Run (or reuse) the batch-size sweep behind the figure (shared with ``overlay``)."""
    from deep.train import Runtime

    s = SETTINGS[check_profile(profile)]
    root = data_root() if s.needs_data else None
    if s.needs_data and root is None:
        raise ValueError(
            f"the full distance figure trains {s.config.model} on {s.config.data} files: "
            "pass --data-root DIR (or set ULTRASLOW_DATA)"
        )
    c = s.config
    progress(
        f"  deep.distance.run_distance: {c.model} on {c.data}, batch sizes "
        f"{list(c.batch_sizes)}, {c.epochs:g} epochs (+ adapted sweep)"
    )
    runtime = Runtime(device="auto" if s.needs_data else "cpu", data_root=root, progress=False)
    with heartbeat(Path(runs), "distance", total=2 * len(c.batch_sizes)), torch_threads(1):
        return run_distance(c, Path(runs), runtime=runtime, n_jobs=s.n_jobs)


def draw(result: DistanceResult):
    """The two panels; returns ``(fig, arrays, fits, growth)``."""
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
        if bf.fit is not None:
            best = bf.fit.best
            fits[f"B{b}.best"] = best
            growth[f"B{b}.best"] = best
            if "log" in bf.fit.fits:
                growth[f"B{b}.log"] = bf.fit.fits["log"]
            growth[f"B{b}.laws"] = bf.fit
            dl = bf.fit.delta("log") if "log" in bf.fit.fits else float("nan")
            style.plot_fit(
                ax, best, color=c, label=f"BIC: {style.law_text(best)}; $\\Delta$BIC(log) {dl:.0f}"
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
    ax.legend(loc="upper left", fontsize=5.2, ncol=1)
    bx.set_xlabel("SGD step $t$")
    checks = result.checks
    if result.adapted:
        bx.set_title(
            f"regime adaptation: {result.adapted_epochs:g}$\\,B/B_0$ epochs, lr $\\sqrt{{B/B_0}}$, "
            f"ghost {result.config.ghost_size}"
        )
        agree = checks["adapted_agree"]
        if agree.passed is not None:
            n = agree.numbers
            bx.text(
                0.97,
                0.04,
                f"largest (max-min)/mean past step {result.t_min}: {100 * n['worst']:.0f}% "
                f"(step {n['worst_step']})\nat the last step: {100 * n['last']:.0f}%; "
                + (
                    f"within 15% from step {n['agree_from']} on"
                    if n.get("agree_from") is not None
                    else "not within 15% at the end"
                )
                + f"\nevery step within 15%: {'PASS' if agree.passed else 'FAIL'}",
                transform=bx.transAxes,
                ha="right",
                va="bottom",
                fontsize=6,
            )
        bx.legend(loc="upper left", fontsize=6)
    verdicts = []
    for name, check in checks.items():
        mark = {True: "pass", False: "FAIL", None: "n/j"}[check.passed]
        verdicts.append(f"{name}: {mark}")
    fig.text(0.5, -0.01, "checks: " + "; ".join(verdicts), ha="center", va="top", fontsize=6)
    style.panel_label(ax, "A")
    style.panel_label(bx, "B")
    return fig, arrays, fits, growth


def build(profile: str, runs: Path, out: Path) -> FigureResult:
    """Build the figure: see the module docstring."""
    result = compute(profile, Path(runs))
    progress(f"{NAME}: drawing")
    fig, arrays, fits, growth = draw(result)
    paths = save_figure(fig, out, NAME) + (
        atomic_write_json(Path(out) / f"{NAME}.json", result.as_dict()),
    )
    data = save_data(out, NAME, arrays, growth)
    used = (
        tuple(Path(f.run) for f in result.equal_epochs.values())
        + tuple(Path(p) for p in result.adapted_runs.values())
        + ((Path(result.path),) if result.path else ())
    )
    return FigureResult(NAME, paths, data, fits, used, " ".join(__doc__.split("\n\n")[1].split()))
