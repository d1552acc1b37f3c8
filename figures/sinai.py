"""Figure ``sinai``: ultra-slow diffusion on Brownian and fBm potentials, and Kesten's law.

(A) Mean distance ``E|x_t|`` against ``log t`` on log-log axes, for Metropolis walkers on a
Brownian potential (Sinai's model, Hurst ``H = 1/2``) and on fractional-Brownian potentials
(``H = 0.75, 0.9``), each walker in its own environment, at temperature ``T = 1`` with unit
increments. Markers: lattice walkers (real time up to ``t_max``); lines: the strong-disorder
renormalisation of landscapes of the same law, out to ``t = 1e30``; both are runs of
:func:`diffusion.experiments.run_walk`. ``k``: the exponent of ``a + b (log t)^k`` fitted to
``E|x_t|`` of the renormalised curve for ``t >= 1e3``. Dashed: theory,
``(5/6) (log t)^2 / sigma^2`` for the Brownian potential (Sinai-Kesten) and
``c (log t)^(1/H)`` for fBm (exponent from scaling, prefactor ``c`` fitted to the
renormalised curve). On these axes a law ``(log t)^k`` is a line of slope ``k``; ``1/H -> 1``
is the seed's ``log t``.
(B) The scaled position ``b = sigma^2 x_t / (log t)^2`` on the Brownian potential against
Kesten's density (:func:`diffusion.theory.kesten_pdf`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffusion.experiments import WalkConfig, run_walk
from diffusion.metrics import LawFit, Trace, fit_law
from diffusion.records import Run
from diffusion.theory import KESTEN_MEAN_ABS, fbm_scale, kesten_pdf, sinai_scale
from figures import style
from figures.output import save_data, save_figure
from figures.registry import FigureResult, check_profile, progress

NAME = "sinai"
TITLE = (
    "walkers on Brownian / fBm potentials: E|x| vs log t to t=1e30 with (log t)^(1/H); Kesten's law"
)

HURSTS = (0.5, 0.75, 0.9)
"""Hurst exponents drawn: 0.5 is the Brownian (Sinai) potential."""


@dataclass(frozen=True)
class Scale:
    """Sizes of one profile: lattice walkers (real time) and renormalised walkers (log time)."""

    t_max: int
    walkers: int
    half_width: int
    coarse_walkers: int
    coarse_t_max: float
    coarse_per_decade: int


SCALES = {
    "tiny": Scale(
        t_max=10_000,
        walkers=64,
        half_width=1000,
        coarse_walkers=64,
        coarse_t_max=1e8,
        coarse_per_decade=2,
    ),
    "quick": Scale(
        t_max=1_000_000,
        walkers=1000,
        half_width=4000,
        coarse_walkers=2000,
        coarse_t_max=1e30,
        coarse_per_decade=2,
    ),
    "full": Scale(
        t_max=100_000_000,
        walkers=1000,
        half_width=20000,
        coarse_walkers=20000,
        coarse_t_max=1e30,
        coarse_per_decade=4,
    ),
}

WIDE = {0.9: 3}
"""Box widening per Hurst exponent: near H = 1 the landscape is nearly a slope; walkers go far."""


def _potential(hurst: float) -> dict:
    return {"potential": "sinai"} if hurst == 0.5 else {"potential": "fbm", "hurst": hurst}


def lattice_config(profile: str, hurst: float) -> WalkConfig:
    """The lattice run for ``hurst`` at ``profile`` (shared with the ``overlay`` figure)."""
    s = SCALES[check_profile(profile)]
    return WalkConfig(
        **_potential(hurst),
        walkers=s.walkers,
        t_max=s.t_max,
        method="direct",
        half_width=s.half_width * WIDE.get(hurst, 1),
    )


def coarse_config(profile: str, hurst: float) -> WalkConfig:
    """The renormalised run for ``hurst`` at ``profile``."""
    s = SCALES[check_profile(profile)]
    return WalkConfig(
        **_potential(hurst),
        walkers=s.coarse_walkers,
        t_max=s.coarse_t_max,
        method="coarse",
        per_decade=s.coarse_per_decade,
    )


def lattice_run(profile: str, hurst: float, runs: Path) -> Run:
    """Run (or reuse) the lattice walkers for ``hurst`` (:func:`diffusion.experiments.run_walk`)."""
    cfg = lattice_config(profile, hurst)
    progress(f"  lattice walkers, H={hurst:g}: {cfg.walkers} walkers to t={cfg.t_max:.0e}")
    return run_walk(cfg, runs)


def coarse_run(profile: str, hurst: float, runs: Path) -> Run:
    """Run (or reuse) the renormalised walkers for ``hurst``."""
    cfg = coarse_config(profile, hurst)
    progress(
        f"  renormalised walkers, H={hurst:g}: {cfg.walkers} environments to t={cfg.t_max:.0e}"
    )
    return run_walk(cfg, runs)


def mean_abs_trace(run: Run) -> Trace:
    """``E|x_t|`` of a walk run as a trace (real time; log-time ticks for a coarse run)."""
    tr = run.trace()
    return (
        Trace(tr.t, tr.extras["mean_abs"]) if "mean_abs" in tr.extras else Trace(tr.t, tr.distance)
    )


def _prefactor(log_t: np.ndarray, mean_abs: np.ndarray, scale: np.ndarray) -> float:
    """Least-squares ``c`` in ``log E|x| = log c + log scale``, upper quarter of ``log log t``."""
    keep = np.log(log_t) >= np.log(log_t[0]) + 0.75 * (np.log(log_t[-1]) - np.log(log_t[0]))
    return float(np.exp(np.mean(np.log(mean_abs[keep]) - np.log(scale[keep]))))


def polylog_fit(run: Run) -> LawFit:
    """``E|x_t| = a + b (log t)^k`` fitted to a renormalised run, in the window of its own fit.

    On the log-time axis of the run the law is ``power_offset`` with exponent ``nu = k``
    (:meth:`diffusion.coarse.CoarseResult.log_time_trace`); the window is the one
    :func:`diffusion.experiments.run_walk` used (``t >= 1e3``), so ``k`` is the exponent that
    ``python -m diffusion`` reports for the same run.
    """
    return fit_law(mean_abs_trace(run), "power_offset", t_min=run.summary.get("fit_window_t_min"))


def _legend(ax) -> None:
    from matplotlib.lines import Line2D

    colour = ax.get_legend_handles_labels()
    kinds = [
        Line2D(
            [], [], color="0.3", marker="o", ls="none", mfc="none", ms=3, label="lattice walkers"
        ),
        Line2D([], [], color="0.3", lw=1.4, label="renormalised; $k$: fitted $(\\log t)^k$"),
        Line2D(
            [],
            [],
            color="0.3",
            ls="--",
            lw=0.9,
            label=r"theory: $\frac{5}{6}(\log t)^2/\sigma^2$; $c(\log t)^{1/H}$ ($c$ fitted)",
        ),
    ]
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 30)  # head room for the legend above the curves
    ax.legend(handles=colour[0] + kinds, loc="upper left", fontsize=5.8)


def build(profile: str, runs: Path, out: Path) -> FigureResult:
    """Build the figure: see the module docstring."""
    check_profile(profile)
    runs = Path(runs)
    lattice = {h: lattice_run(profile, h, runs) for h in HURSTS}
    coarse = {h: coarse_run(profile, h, runs) for h in HURSTS}
    progress(f"{NAME}: drawing")
    fig, axes = style.new_figure(1, 2, width="page", aspect=0.78)
    ax, bx = axes[0]
    arrays: dict[str, np.ndarray] = {}
    fits: dict[str, LawFit] = {}
    g_hi = 0.0
    for i, h in enumerate(HURSTS):
        c = style.color(i)
        name = "Brownian" if h == 0.5 else "fBm"
        tag = f"H{h:g}"
        lat = mean_abs_trace(lattice[h])
        keep = lat.t >= 2
        ax.loglog(
            np.log(lat.t[keep].astype(float)),
            lat.distance[keep],
            "o",
            ms=2.8,
            mfc="none",
            mew=0.8,
            color=c,
        )
        cfg = coarse_config(profile, h)
        g = coarse[h].records["extra.gamma"]
        m = mean_abs_trace(coarse[h]).distance
        g_hi = max(g_hi, float(g[-1]))
        k_fit = polylog_fit(coarse[h])
        fits[f"{tag}.renormalised"] = k_fit
        k, dk = k_fit.params["nu"], k_fit.stderr["nu"]
        ax.loglog(
            g,
            m,
            "-",
            color=c,
            lw=1.4,
            label=f"{name} $H={h:g}$: $k={k:.2f}\\pm{dk:.2f}$ ($1/H={1 / h:.2f}$)",
        )
        t = np.exp(g)
        if h == 0.5:
            theory = KESTEN_MEAN_ABS * sinai_scale(t, cfg.sigma_v)
        else:
            scale = fbm_scale(t, h, cfg.sigma, cfg.temperature)
            theory = _prefactor(g, m, scale) * scale
        ax.loglog(g, theory, "--", color=c, lw=0.9)
        arrays.update(
            {
                f"{tag}.lattice.t": lat.t,
                f"{tag}.lattice.mean_abs": lat.distance,
                f"{tag}.renormalised.log_t": g,
                f"{tag}.renormalised.mean_abs": m,
                f"{tag}.theory.mean_abs": theory,
            }
        )
    ax.set_xlabel(r"$\log t$ ($t$ in attempted moves)")
    ax.set_ylabel(r"mean distance $E|x_t|$ (lattice sites)")
    top = ax.secondary_xaxis("top")
    decades = [k for k in (1, 2, 5, 10, 30, 100) if math.log(10**k) <= g_hi * 1.05]
    top.set_xticks([math.log(10**k) for k in decades], [f"$10^{{{k}}}$" for k in decades])
    top.set_xlabel("$t$", labelpad=1)
    top.minorticks_off()
    _legend(ax)

    # (B) Kesten's law
    sigma_v = coarse_config(profile, 0.5).sigma_v
    g_last = float(coarse[0.5].records["extra.gamma"][-1])
    b_rg = coarse[0.5].records["extra.positions"][-1] / sinai_scale(math.exp(g_last), sigma_v)
    lat = lattice[0.5].trace()
    b_lat = lat.extras["positions"][-1] / sinai_scale(float(lat.t[-1]), sigma_v)
    edges = np.linspace(-3, 3, 41)
    bx.hist(
        b_rg,
        bins=edges,
        density=True,
        histtype="stepfilled",
        alpha=0.35,
        color=style.color(0),
        label=f"renormalised, $t=10^{{{g_last / math.log(10):.0f}}}$ ({b_rg.size} env.)",
    )
    bx.hist(
        b_lat,
        bins=edges,
        density=True,
        histtype="step",
        lw=1.1,
        color=style.color(1),
        label=f"lattice, $t=10^{{{math.log10(lat.t[-1]):.0f}}}$ ({b_lat.size} walkers)",
    )
    bb = np.linspace(-3, 3, 601)
    bx.plot(bb, kesten_pdf(bb), color="black", lw=1.2, label="Kesten density")
    bx.set_xlabel(r"scaled position $b=\sigma^2 x_t/(\log t)^2$")
    bx.set_ylabel("probability density")
    bx.set_title("Brownian potential: limit law")
    bx.legend(loc="upper left", fontsize=6)
    arrays.update(
        {
            "kesten.edges": edges,
            "kesten.b_renormalised": b_rg,
            "kesten.b_lattice": b_lat,
            "kesten.b": bb,
            "kesten.pdf": kesten_pdf(bb),
        }
    )
    style.panel_label(ax, "A")
    style.panel_label(bx, "B")
    paths = save_figure(fig, out, NAME)
    data = save_data(out, NAME, arrays, fits)
    used = tuple(r.path for r in (*lattice.values(), *coarse.values()))
    return FigureResult(NAME, paths, data, fits, used, " ".join(__doc__.split("\n\n")[1].split()))
