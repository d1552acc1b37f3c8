"""Figure ``overlay``: one ruler, three layers -- normalised distance against log t.

* a walker on a fractional-Brownian potential with ``H = 0.9`` -- barriers within a distance
  ``d`` grow like ``d^0.9`` (``gamma = H``, close to the seed's ``gamma = 1``): its mean
  distance ``E|x_t|`` from the strong-disorder renormalisation of the landscape, out to
  ``t = 1e30`` (the renormalised run of the ``sinai`` figure);
* gradient descent on separable data: ``||w(t)||`` against iterations from ``w(0) = 0``
  (logistic loss, the JMLR Fig. 1 data; the GD run of ``soudry_fig1``);
* a deep network: ``||w_t - w_0||`` against SGD steps at the smallest batch of the
  ``distance`` figure.

Each curve is divided by its last value and drawn against ``log t / log t_max``, so a law
``a + b log t`` is a straight line and ``a + b (log t)^k`` bends up for ``k > 1`` and down for
``k < 1``. Dashed: for each trace the law chosen by BIC (:func:`diffusion.metrics.fit_growth`)
past its initial transient, mapped through the same normalisation. The walker's trace is on
a log-time axis, where the candidate laws ``b s^k`` and ``a + b s^k`` of ``s = log t`` are
the ``(log t)^k`` laws; GD and the network are fitted with log, polylog, power and
power-with-offset laws of ``t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffusion.coarse import LOG_TIME_RESOLUTION
from diffusion.metrics import GrowthFit, Trace, fit_growth
from figures import distance, sinai, soudry_fig1, style
from figures.output import save_data, save_figure
from figures.registry import FigureResult, check_profile, progress
from separable.experiments import run_optimizer

NAME = "overlay"
TITLE = (
    "signature figure: walker (gamma~1 potential), GD ||w||, deep net ||w-w0|| on one log-t axis"
)

WALKER_HURST = 0.9
GD_T_MIN = 1000
"""First iteration of the GD fit (past the transient of the Fig. 1 data)."""


@dataclass(frozen=True)
class Curve:
    """One trace of the overlay.

    Attributes
    ----------
    label : str
        Legend text.
    trace : Trace
        Distance against time (``log_time``: against ``round(LOG_TIME_RESOLUTION * log t)``).
    t_min : float
        First time of the fit, on the trace's own axis.
    log_time : bool
        Whether ``trace.t`` is the log-time axis of a renormalised run.
    run : Path
        The run folder.
    """

    label: str
    trace: Trace
    t_min: float
    log_time: bool
    run: Path

    def log_t(self, t: np.ndarray) -> np.ndarray:
        """``log t`` at the trace's times ``t``."""
        t = np.asarray(t, dtype=float)
        return t / LOG_TIME_RESOLUTION if self.log_time else np.log(t)

    def fit(self) -> GrowthFit:
        """Growth laws fitted past the transient, selected by BIC."""
        laws = (
            ("power", "power_offset")
            if self.log_time
            else ("log", "polylog", "power", "power_offset")
        )
        return fit_growth(self.trace, laws, t_min=self.t_min)


def curves(profile: str, runs: Path) -> dict[str, Curve]:
    """The three curves (runs computed or reused through the other figures' modules)."""
    check_profile(profile)
    runs = Path(runs)
    walker = sinai.coarse_run(profile, WALKER_HURST, runs)
    progress("  GD on separable data (the soudry_fig1 run)")
    gd = run_optimizer(soudry_fig1.configs(profile)["GD"], runs)
    gd_trace = gd.trace()
    deep = distance.compute(profile, runs)
    b0 = deep.batch_sizes[0]
    t_end = walker.records["extra.gamma"][-1] / math.log(10)
    return {
        "walker": Curve(
            rf"walker, fBm potential $H={WALKER_HURST:g}$ ($\gamma\approx1$), $E|x_t|$ "
            rf"(renormalised, $t\leq10^{{{t_end:.0f}}}$)",
            sinai.mean_abs_trace(walker).window(1, None),
            walker.summary.get("fit_window_t_min") or 1,
            True,
            walker.path,
        ),
        "gd": Curve(
            r"GD on separable data, $\|w(t)\|$",
            Trace(gd_trace.t, gd_trace.extras["norm"]).window(1, None),
            GD_T_MIN if gd_trace.t[-1] >= 10 * GD_T_MIN else 1,
            False,
            gd.path,
        ),
        "deep": Curve(
            rf"{deep.model} on {deep.data}, $B={b0}$, $\|w_t-w_0\|$",
            deep.equal_epochs[b0].trace.window(1, None),
            deep.t_min,
            False,
            Path(deep.equal_epochs[b0].run),
        ),
    }


def law_words(gf: GrowthFit, log_time: bool) -> str:
    """The selected law in words for the legend (``log_time``: a law of ``s = log t``)."""
    best, p = gf.best, gf.best.params
    if log_time:  # laws of s = log t
        k = p["nu"]
        return (
            rf"$b(\log t)^k$, $k={k:.2f}$"
            if best.law == "power"
            else rf"$a+b(\log t)^k$, $k={k:.2f}$"
        )
    if best.law == "log":
        return r"$a+b\log t$"
    if best.law == "polylog":
        return rf"$a+b(\log t)^k$, $k={p['k']:.2f}$"
    if best.law == "power":
        return rf"$a\,t^\nu$, $\nu={p['nu']:.3f}$"
    return rf"$a+b\,t^\nu$, $\nu={p['nu']:.3f}$"


def build(profile: str, runs: Path, out: Path) -> FigureResult:
    """Build the figure: see the module docstring."""
    chosen = curves(profile, runs)
    progress(f"{NAME}: fitting and drawing")
    fig, axes = style.new_figure(1, 1, width="column", aspect=1.3)
    ax = axes[0, 0]
    arrays: dict[str, np.ndarray] = {}
    growth: dict[str, GrowthFit] = {}
    for i, (key, cv) in enumerate(chosen.items()):
        c = style.color(i)
        tr = cv.trace
        log_end, d_end = float(cv.log_t(tr.t[-1])), float(tr.distance[-1])
        x, y = cv.log_t(tr.t) / log_end, tr.distance / d_end
        gf = cv.fit()
        growth[key] = gf
        ax.plot(x, y, color=c, lw=1.6, label=f"{cv.label}\nBIC: {law_words(gf, cv.log_time)}")
        lo, hi = gf.best.t_range
        tt = np.linspace(lo, hi, 300) if cv.log_time else np.geomspace(lo, hi, 300)
        ax.plot(cv.log_t(tt) / log_end, gf.best.predict(tt) / d_end, color=c, ls="--", lw=0.9)
        arrays.update(
            {
                f"{key}.t": tr.t,
                f"{key}.distance": tr.distance,
                f"{key}.x": x,
                f"{key}.y": y,
                f"{key}.log_time": np.asarray(cv.log_time),
            }
        )
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.6, ls=":", zorder=0)
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(r"$\log t\,/\,\log t_{\max}$   ($t$: moves, iterations, SGD steps)")
    ax.set_ylabel("distance / final distance")
    ax.set_title(r"one ruler: $a+b\log t$ is a straight line", fontsize=8)
    ax.plot([], [], color="0.3", ls="--", lw=0.9, label="law selected by BIC (dashed)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=5.8, frameon=False)
    paths = save_figure(fig, out, NAME)
    data = save_data(out, NAME, arrays, growth)
    return FigureResult(
        NAME,
        paths,
        data,
        {k: g.best for k, g in growth.items()},
        tuple(cv.run for cv in chosen.values()),
        " ".join(__doc__.split("\n\n")[1].split()),
    )
