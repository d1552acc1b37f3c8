"""Figure ``overlay``: one ruler, three layers -- normalised distance against log t.

* a walker: Metropolis walkers on a fractional-Brownian potential with ``H = 0.9`` (barriers
  within a distance ``d`` grow like ``d^0.9``: ``gamma = H``, close to the seed's
  ``gamma = 1``), mean distance ``E|x_t|`` against attempted moves -- the lattice run of the
  ``sinai`` figure;
* gradient descent on separable data: ``||w(t)||`` against iterations, from ``w(0) = 0``
  (logistic loss, the JMLR Fig. 1 data) -- the GD run of ``soudry_fig1``;
* a deep network: ``||w_t - w_0||`` against SGD steps at the smallest batch of the
  ``distance`` figure.

Each curve is divided by its last value and drawn against ``log t / log t_max``, so a law
``a + b log t`` is a straight line and ``(log t)^k`` bends up (``k > 1``) or down
(``k < 1``). Dashed: for each trace the law chosen by BIC among log, polylog, power and
power-with-offset (:func:`diffusion.metrics.fit_growth`, past the initial transient),
mapped through the same normalisation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from diffusion.metrics import GrowthFit, Trace, fit_growth
from figures import distance, sinai, soudry_fig1, style
from figures.output import save_data, save_figure
from figures.registry import FigureResult, check_profile, progress
from separable.experiments import run_optimizer

NAME = "overlay"
TITLE = (
    "signature figure: walker (gamma~1 potential), GD ||w||, deep net ||w-w0|| -- one ruler, log t"
)

WALKER_HURST = 0.9
FIT_T_MIN = {"walker": 10, "gd": 100, "deep": None}
"""First time of each fit (the deep net uses the ``distance`` figure's ``t_min``)."""


def traces(profile: str, runs: Path) -> tuple[dict[str, tuple[str, Trace, int]], tuple[Path, ...]]:
    """The three traces, key -> (legend label, trace, first fitted time), and the run folders."""
    check_profile(profile)
    runs = Path(runs)
    walker_run = sinai.lattice_run(profile, WALKER_HURST, runs)
    walker = sinai.mean_abs_trace(walker_run)
    progress("  GD on separable data (the soudry_fig1 run)")
    gd_run = run_optimizer(soudry_fig1.configs(profile)["GD"], runs)
    gd = gd_run.trace()
    deep = distance.compute(profile, runs)
    b0 = deep.batch_sizes[0]
    deep_trace = deep.equal_epochs[b0].trace
    used = (walker_run.path, gd_run.path, Path(deep.equal_epochs[b0].run))
    return {
        "walker": (
            f"walker, fBm potential $H={WALKER_HURST:g}$ ($\\gamma\\approx1$): $E|x_t|$",
            walker,
            FIT_T_MIN["walker"],
        ),
        "gd": ("GD, separable data: $\\|w(t)\\|$", Trace(gd.t, gd.extras["norm"]), FIT_T_MIN["gd"]),
        "deep": (f"{deep.model} on {deep.data}, $B={b0}$: $\\|w_t-w_0\\|$", deep_trace, deep.t_min),
    }, used


def _law_words(gf: GrowthFit) -> str:
    best = gf.best
    p = best.params
    if best.law == "log":
        text = r"$a+b\log t$"
    elif best.law == "polylog":
        text = rf"$a+b(\log t)^{{k}}$, $k={p['k']:.2f}$"
    elif best.law == "power":
        text = rf"$a t^{{\nu}}$, $\nu={p['nu']:.3f}$"
    else:
        text = rf"$a+b t^{{\nu}}$, $\nu={p['nu']:.3f}$"
    if best.law != "log" and "log" in gf.fits:
        text += rf"; log: $\Delta$BIC$={gf.delta('log'):.0f}$"
    return text


def build(profile: str, runs: Path, out: Path) -> FigureResult:
    """Build the figure: see the module docstring."""
    chosen, used = traces(profile, runs)
    progress(f"{NAME}: fitting and drawing")
    fig, axes = style.new_figure(1, 1, width="column", aspect=0.95)
    ax = axes[0, 0]
    arrays: dict[str, np.ndarray] = {}
    growth: dict[str, GrowthFit] = {}
    for i, (key, (label, tr, t_min)) in enumerate(chosen.items()):
        c = style.color(i)
        tr = tr.window(1, None)
        t_end, d_end = float(tr.t[-1]), float(tr.distance[-1])
        x = np.log(tr.t.astype(float)) / math.log(t_end)
        ax.plot(
            x,
            tr.distance / d_end,
            color=c,
            lw=1.5,
            label=f"{label}\n$t_{{\\max}}=10^{{{math.log10(t_end):.1f}}}$",
        )
        gf = fit_growth(tr, t_min=t_min)
        growth[key] = gf
        lo, hi = gf.best.t_range
        tt = np.geomspace(lo, hi, 200)
        ax.plot(
            np.log(tt) / math.log(t_end),
            gf.best.predict(tt) / d_end,
            color=c,
            ls="--",
            lw=1.0,
            label=f"BIC best: {_law_words(gf)}",
        )
        arrays.update(
            {
                f"{key}.t": tr.t,
                f"{key}.distance": tr.distance,
                f"{key}.x": x,
                f"{key}.y": tr.distance / d_end,
            }
        )
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.6, ls=":", zorder=0)
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(r"$\log t\,/\,\log t_{\max}$  ($t$: moves, iterations, SGD steps)")
    ax.set_ylabel("distance / final distance")
    ax.set_title("one ruler: straight lines are $a + b\\log t$")
    ax.legend(loc="upper left", fontsize=5.2, handlelength=1.6, labelspacing=0.35)
    paths = save_figure(fig, out, NAME)
    data = save_data(out, NAME, arrays, growth)
    return FigureResult(
        NAME,
        paths,
        data,
        {k: g.best for k, g in growth.items()},
        used,
        " ".join(__doc__.split("\n\n")[1].split()),
    )
