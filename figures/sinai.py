"""Figure ``sinai``: ultra-slow diffusion on Brownian and fBm potentials, and Kesten's law.

(A) Mean distance ``E|x_t|`` against ``log t`` on log-log axes, for Metropolis walkers on a
Brownian potential (Sinai's model, Hurst ``H = 1/2``) and on fractional-Brownian potentials
(``H = 0.75, 0.9``), each walker in its own environment, at temperature ``T = 1`` with unit
increments. Markers: lattice walkers (:func:`diffusion.walk.simulate_walkers`, real time up
to ``t_max``); lines: the strong-disorder renormalisation of the same landscapes
(:func:`diffusion.coarse.coarse_walk`) out to ``t = 1e30``. Dashed: theory,
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

from diffusion.coarse import CoarseResult, coarse_walk
from diffusion.metrics import LawFit, Trace, fit_law, log_schedule
from diffusion.potentials import brownian_potential, fbm_potential
from diffusion.records import Run, run_or_load
from diffusion.theory import KESTEN_MEAN_ABS, kesten_pdf
from diffusion.walk import simulate_walkers
from figures import style
from figures.output import save_data, save_figure
from figures.registry import FigureResult, check_profile, progress

NAME = "sinai"
TITLE = "walkers on Brownian / fBm potentials: E|x| vs log t to t=1e30 with (log t)^(1/H); Kesten's law"

HURSTS = (0.5, 0.75, 0.9)
"""Hurst exponents drawn: 0.5 is the Brownian (Sinai) potential."""


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _check_count(name: str, value: int, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_hurst(hurst: float) -> None:
    if isinstance(hurst, bool) or not isinstance(hurst, (int, float)) or not 0 < hurst < 1:
        raise ValueError(f"hurst must be in (0, 1), got {hurst!r}")


@dataclass(frozen=True)
class LatticeWalkConfig:
    """Metropolis walkers, one environment each, on a Brownian (``hurst=0.5``) or fBm potential.

    Parameters
    ----------
    hurst : float
        Hurst exponent of the potential; 0.5 draws the Brownian potential.
    t_max : int
        Last step.
    n_walkers : int
        Walkers, split evenly among the environments.
    n_envs : int
        Independent environments (divides ``n_walkers``).
    n_sites : int
        Sites of each environment (the walkers start in the middle).
    sigma, temperature : float
        Increment standard deviation of ``U`` and ``T``.
    per_decade : int
        Recording times per decade of ``t``.
    seed : int
        Seeds the environments and the walks.
    """

    hurst: float
    t_max: int
    n_walkers: int
    n_envs: int
    n_sites: int
    sigma: float = 1.0
    temperature: float = 1.0
    per_decade: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        _check_hurst(self.hurst)
        for name in ("t_max", "n_walkers", "n_envs", "per_decade"):
            _check_count(name, getattr(self, name))
        if self.n_walkers % self.n_envs:
            raise ValueError(f"n_envs must divide n_walkers={self.n_walkers}, got {self.n_envs!r}")
        _check_count("n_sites", self.n_sites, 3)
        _check_count("seed", self.seed, 0)
        _check_positive("sigma", self.sigma)
        _check_positive("temperature", self.temperature)


@dataclass(frozen=True)
class CoarseWalkConfig:
    """Renormalised walkers (one per environment) at ``log t`` from ``gamma_min`` to ``gamma_max``.

    Parameters
    ----------
    hurst : float
        0.5 for the Brownian potential, else fBm.
    n_envs : int
        Environments.
    gamma_min, gamma_max : float
        Range of ``Gamma = log t``.
    n_gamma : int
        Log-spaced values of ``Gamma``.
    sigma, temperature : float
        As in :class:`LatticeWalkConfig`.
    seed : int
        Seeds the environments.
    """

    hurst: float
    n_envs: int
    gamma_min: float
    gamma_max: float
    n_gamma: int
    sigma: float = 1.0
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_hurst(self.hurst)
        _check_count("n_envs", self.n_envs)
        _check_count("n_gamma", self.n_gamma, 2)
        _check_count("seed", self.seed, 0)
        for name in ("gamma_min", "gamma_max", "sigma", "temperature"):
            _check_positive(name, getattr(self, name))
        if self.gamma_max <= self.gamma_min:
            raise ValueError(f"gamma_max must exceed gamma_min={self.gamma_min}, got {self.gamma_max!r}")

    @property
    def gammas(self) -> np.ndarray:
        """The values of ``log t``."""
        return np.geomspace(self.gamma_min, self.gamma_max, self.n_gamma)


def _lattice(cfg: LatticeWalkConfig) -> tuple[dict, dict]:
    env_seeds, walk_seed = np.random.SeedSequence(cfg.seed).spawn(2)
    if cfg.hurst == 0.5:
        pots = [brownian_potential(cfg.n_sites, cfg.sigma, seed=ss) for ss in env_seeds.spawn(cfg.n_envs)]
    else:
        pots = [fbm_potential(cfg.n_sites, cfg.hurst, cfg.sigma, seed=ss) for ss in env_seeds.spawn(cfg.n_envs)]
    trace = simulate_walkers(pots, cfg.temperature, cfg.t_max, cfg.n_walkers,
                             times=log_schedule(cfg.t_max, cfg.per_decade), seed=walk_seed)
    mean_abs = trace.extras["mean_abs"]
    return trace.to_arrays(), {"final_mean_abs": float(mean_abs[-1]), "final_rms": float(trace.distance[-1])}


def _coarse(cfg: CoarseWalkConfig) -> tuple[dict, dict]:
    kind = "brownian" if cfg.hurst == 0.5 else "fbm"
    res = coarse_walk(cfg.n_envs, cfg.gammas, kind=kind, hurst=cfg.hurst, sigma=cfg.sigma,
                      temperature=cfg.temperature, seed=cfg.seed)
    records = {"gamma": res.gamma, "positions": res.positions, "half_width": res.half_width}
    return records, {"n_extended": res.n_extended, "final_mean_abs": float(res.mean_abs()[-1])}


def coarse_result(run: Run) -> CoarseResult:
    """The :class:`~diffusion.coarse.CoarseResult` stored in a coarse run."""
    c = run.config
    return CoarseResult(run.records["gamma"], run.records["positions"], "brownian" if c["hurst"] == 0.5 else "fbm",
                        c["hurst"], c["sigma"], c["temperature"], run.records["half_width"],
                        int(run.summary["n_extended"]))


def mean_abs_trace(run: Run) -> Trace:
    """``E|x_t|`` of a lattice run as a trace."""
    tr = run.trace()
    return Trace(tr.t, tr.extras["mean_abs"])


@dataclass(frozen=True)
class Scale:
    """Sizes of one profile."""

    t_max: int
    n_walkers: int
    lattice_envs: int
    half_width: int
    n_envs: int
    gamma_max: float
    n_gamma: int


SCALES = {
    "tiny": Scale(t_max=10_000, n_walkers=64, lattice_envs=32, half_width=1000, n_envs=64, gamma_max=20.0,
                  n_gamma=12),
    "quick": Scale(t_max=1_000_000, n_walkers=1000, lattice_envs=250, half_width=4000, n_envs=2000,
                   gamma_max=69.08, n_gamma=40),
    "full": Scale(t_max=100_000_000, n_walkers=4000, lattice_envs=1000, half_width=20000, n_envs=20000,
                  gamma_max=69.08, n_gamma=60),
}

WIDE = {0.9: 3}
"""Box widening per Hurst exponent: near H = 1 the landscape is nearly a slope and walkers run far."""


def lattice_config(profile: str, hurst: float) -> LatticeWalkConfig:
    """The lattice run for ``hurst`` at ``profile`` (shared with the ``overlay`` figure)."""
    s = SCALES[check_profile(profile)]
    half = s.half_width * WIDE.get(hurst, 1)
    return LatticeWalkConfig(hurst=hurst, t_max=s.t_max, n_walkers=s.n_walkers, n_envs=s.lattice_envs,
                             n_sites=2 * half + 1)


def coarse_config(profile: str, hurst: float) -> CoarseWalkConfig:
    """The renormalised run for ``hurst`` at ``profile``."""
    s = SCALES[check_profile(profile)]
    return CoarseWalkConfig(hurst=hurst, n_envs=s.n_envs, gamma_min=2.0, gamma_max=s.gamma_max, n_gamma=s.n_gamma)


def lattice_run(profile: str, hurst: float, runs: Path) -> Run:
    """Run (or reuse) the lattice walkers for ``hurst``."""
    cfg = lattice_config(profile, hurst)
    progress(f"  lattice walkers, H={hurst}: {cfg.n_walkers} walkers to t={cfg.t_max:.0e}")
    return run_or_load(runs, cfg, _lattice)


def coarse_run(profile: str, hurst: float, runs: Path) -> Run:
    """Run (or reuse) the renormalised walkers for ``hurst``."""
    cfg = coarse_config(profile, hurst)
    progress(f"  renormalised walkers, H={hurst}: {cfg.n_envs} environments to log t={cfg.gamma_max:g}")
    return run_or_load(runs, cfg, _coarse)


def _prefactor(gamma: np.ndarray, mean_abs: np.ndarray, exponent: float) -> float:
    """Least-squares ``c`` in ``log E|x| = log c + exponent log Gamma`` over the upper quarter of log Gamma."""
    keep = np.log(gamma) >= np.log(gamma[0]) + 0.75 * (np.log(gamma[-1]) - np.log(gamma[0]))
    return float(np.exp(np.mean(np.log(mean_abs[keep]) - exponent * np.log(gamma[keep]))))


def _legend(ax) -> None:
    from matplotlib.lines import Line2D

    colour = ax.get_legend_handles_labels()
    kinds = [Line2D([], [], color="0.3", marker="o", ls="none", mfc="none", ms=3, label="lattice walkers"),
             Line2D([], [], color="0.3", lw=1.4, label="renormalised; $k$: fitted $(\\log t)^k$"),
             Line2D([], [], color="0.3", ls="--", lw=0.9,
                    label=r"theory: $\frac{5}{6}(\log t)^2/\sigma^2$; $c(\log t)^{1/H}$ ($c$ fitted)")]
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
        g_lat = np.log(lat.t[keep].astype(float))
        ax.loglog(g_lat, lat.distance[keep], "o", ms=2.8, mfc="none", mew=0.8, color=c)
        cr = coarse_result(coarse[h])
        g, m = cr.gamma, cr.mean_abs()
        g_hi = max(g_hi, float(g[-1]))
        k_fit = cr.polylog_exponent(gamma_min=g[-1] / 4)
        fits[f"{tag}.renormalised"] = k_fit
        k, dk = k_fit.params["nu"], k_fit.stderr["nu"]
        ax.loglog(g, m, "-", color=c, lw=1.4,
                  label=f"{name} $H={h:g}$: $k={k:.2f}\\pm{dk:.2f}$ ($1/H={1 / h:.2f}$)")
        sigma_v = cr.sigma_v
        if h == 0.5:
            theory = KESTEN_MEAN_ABS * g**2 / sigma_v**2
        else:
            theory = _prefactor(g, m, 1.0 / h) * (g / sigma_v) ** (1.0 / h)
        ax.loglog(g, theory, "--", color=c, lw=0.9)
        arrays.update({f"{tag}.lattice.t": lat.t, f"{tag}.lattice.mean_abs": lat.distance,
                       f"{tag}.renormalised.log_t": g, f"{tag}.renormalised.mean_abs": m,
                       f"{tag}.theory.mean_abs": theory})
    ax.set_xlabel(r"$\log t$ ($t$ in attempted moves)")
    ax.set_ylabel(r"mean distance $E|x_t|$ (lattice sites)")
    top = ax.secondary_xaxis("top")
    decades = [k for k in (1, 2, 5, 10, 20, 30, 50) if math.log(10**k) <= g_hi * 1.05]
    top.set_xticks([math.log(10**k) for k in decades], [f"$10^{{{k}}}$" for k in decades])
    top.set_xlabel("$t$", labelpad=1)
    top.minorticks_off()
    _legend(ax)

    # (B) Kesten's law
    cr = coarse_result(coarse[0.5])
    b_rg = cr.scaled()[:, -1]
    lat = lattice[0.5].trace()
    b_lat = (lat.extras["positions"][-1] * cr.sigma_v**2 / math.log(float(lat.t[-1])) ** 2).astype(float)
    edges = np.linspace(-3, 3, 41)
    bx.hist(b_rg, bins=edges, density=True, histtype="stepfilled", alpha=0.35, color=style.color(0),
            label=f"renormalised, $t=e^{{{cr.gamma[-1]:.0f}}}$ ({cr.n_envs} env.)")
    bx.hist(b_lat, bins=edges, density=True, histtype="step", lw=1.1, color=style.color(1),
            label=f"lattice, $t=10^{{{math.log10(lat.t[-1]):.0f}}}$ ({b_lat.size} walkers)")
    bb = np.linspace(-3, 3, 601)
    bx.plot(bb, kesten_pdf(bb), color="black", lw=1.2, label="Kesten density")
    bx.set_xlabel(r"scaled position $b=\sigma^2 x_t/(\log t)^2$")
    bx.set_ylabel("probability density")
    bx.set_title("Brownian potential: limit law")
    bx.legend(loc="upper right", fontsize=6)
    arrays.update({"kesten.edges": edges, "kesten.b_renormalised": b_rg, "kesten.b_lattice": b_lat,
                   "kesten.b": bb, "kesten.pdf": kesten_pdf(bb)})
    style.panel_label(ax, "A")
    style.panel_label(bx, "B")
    paths = save_figure(fig, out, NAME)
    data = save_data(out, NAME, arrays, fits)
    used = tuple(r.path for r in (*lattice.values(), *coarse.values()))
    return FigureResult(NAME, paths, data, fits, used, " ".join(__doc__.split("\n\n")[1].split()))
