"""Shared drawing of the JMLR 2018 panels (``soudry_fig1``, ``soudry_adam``).

Panels: (A) the data, the hard-margin SVM separator and margins, and each method's
separator at the last step; (B) ``||w(t)||`` normalised to 1 at the last step; (C) the
loss; (D) the angle gap ``1 - cos(w, w_hat)``; (E) the margin gap
``1/||w_hat|| - min_n z_n.w/||w||``. Measured curves are solid; the predictions of
:func:`separable.theory.predict` for the step each method mimics at long times are dotted.

On a data set where ``w_tilde`` is parallel to ``w_hat`` (the Fig. 1 set) the asymptote
``w_hat log t + w_tilde`` has no angle or margin gap at all: the gaps then come from the
approach of ``rho(t)`` to ``w_tilde``, at rate ``t^-lambda`` with
``lambda = lambda_min(sum_S alpha_n z_n z_n^T)`` (the theory's ``rate_support``), so that
the direction and margin gaps fall like ``t^-lambda / log t`` and the angle gap like its
square. That shape is drawn through the last measured point.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from diffusion.metrics import GrowthFit, Trace, fit_growth
from diffusion.records import Run
from figures import style
from figures.output import save_data, save_figure
from figures.registry import FigureResult, progress
from separable.experiments import SeparableRunConfig, run_optimizer
from separable.theory import Prediction, predict

__all__ = ["compute_runs", "gd_and_momentum", "prediction_of", "draw", "NORM_FIT_T_MIN"]

T_MAX = {"tiny": 1e3, "quick": 1e6, "full": 1e8}
PER_DECADE = {"tiny": 10, "quick": 20, "full": 20}


def gd_and_momentum(data: str, profile: str) -> dict[str, SeparableRunConfig]:
    """GD and heavy-ball momentum (0.9) with the logistic loss on ``data``, sized by ``profile``."""
    common = {
        "data": data,
        "loss": "logistic",
        "t_max": T_MAX[profile],
        "per_decade": PER_DECADE[profile],
    }
    return {
        "GD": SeparableRunConfig(method="gd", **common),
        "GDMO": SeparableRunConfig(method="momentum", momentum=0.9, **common),
    }


NORM_FIT_T_MIN = 100
"""First step of the growth-law fit of ``||w(t)||`` (past the initial transient)."""

PREDICTION_T_MIN = 100
"""First step at which the asymptotic predictions are drawn."""

_PARALLEL_TOL = 1e-8

_NO_PREDICTION = {
    "thm3": "Theorem 3 case --\nsupport vectors do not span\nthe data; no limit of $\\rho(t)$",
    "degenerate": "degenerate data --\na support vector has $\\alpha_n=0$;\nno finite $\\tilde w$",
}


def compute_runs(configs: Mapping[str, SeparableRunConfig], runs: Path) -> dict[str, Run]:
    """Run (or reuse) each labelled configuration (:func:`separable.experiments.run_optimizer`)."""
    out = {}
    for label, cfg in configs.items():
        progress(f"  {label}: {cfg.method} on {cfg.data}, {cfg.loss} loss, t_max={cfg.t_max:.0e}")
        out[label] = run_optimizer(cfg, runs)
    return out


def prediction_of(run: Run) -> Prediction | None:
    """The theory's prediction for a run (``None`` when the method has no GD-like limit)."""
    pred = run.summary.get("prediction")
    if not pred:
        return None
    return predict(run.records["data.X"], run.records["data.y"], eta=float(pred["eta"]))


def _positive(ax: Axes, t: np.ndarray, y: np.ndarray, **kw) -> None:
    keep = y > 0
    ax.loglog(t[keep], y[keep], **kw)


def _norm_fit(trace: Trace) -> GrowthFit | None:
    norm = Trace(trace.t, trace.extras["norm"])
    try:
        return fit_growth(norm, t_min=NORM_FIT_T_MIN)
    except ValueError:  # too short a run to fit
        return None


def draw(runs: Mapping[str, Run], *, title: str):
    """Draw the five panels for the labelled runs.

    Returns
    -------
    fig : Figure
    arrays : dict of str to numpy.ndarray
        Everything drawn, for the data file.
    fits : dict of str to GrowthFit
        Growth-law fits of ``||w(t)||`` (``<label>.norm``) from the shared metrics.
    """
    fig, ax = style.new_mosaic([["A", "B", "C"], ["A", "D", "E"]], width="page", height=4.3)
    first = next(iter(runs.values()))
    X, y, w_hat = first.records["data.X"], first.records["data.y"], first.records["svm.w"]
    arrays: dict[str, np.ndarray] = {"data.X": X, "data.y": y, "svm.w": w_hat}
    fits: dict[str, GrowthFit] = {}

    predictions = {label: prediction_of(run) for label, run in runs.items()}

    # (A) data and separators
    a = ax["A"]
    pos = y > 0
    a.scatter(X[pos, 0], X[pos, 1], s=14, marker="o", color="black", label="$y=+1$", zorder=3)
    a.scatter(
        X[~pos, 0],
        X[~pos, 1],
        s=14,
        marker="o",
        facecolor="white",
        edgecolor="black",
        label="$y=-1$",
        zorder=3,
    )
    span = np.abs(X).max(axis=0) * 1.15
    a.set_xlim(-span[0], span[0])
    a.set_ylim(-span[1], span[1])
    _separator(a, w_hat, 0.0, span, color="black", lw=1.4, label="SVM $\\hat w$")
    for offset in (-1.0, 1.0):
        _separator(a, w_hat, offset, span, color="0.5", lw=0.8, ls=":")
    for i, (label, run) in enumerate(runs.items()):
        w_last = run.records["extra.w"][-1]
        _separator(
            a,
            w_last,
            0.0,
            span,
            color=style.color(i),
            lw=1.1,
            ls="--",
            label=f"{label}, $t=10^{{{np.log10(run.records['t'][-1]):.0f}}}$",
        )
        pred = predictions[label]
        if pred is not None and pred.theorem == "thm4":  # the predicted asymptote at the last step
            w_asym = pred.w_hat * np.log(float(run.records["t"][-1])) + pred.w_tilde
            _separator(
                a,
                w_asym,
                0.0,
                span,
                color=style.color(i),
                lw=1.6,
                ls=":",
                label=rf"{label} asymptote $\hat w\log t+\tilde w$",
            )
    a.set_xlabel("$x_1$")
    a.set_ylabel("$x_2$")
    a.set_title(title)
    a.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=5.5, columnspacing=0.8
    )

    drawn: dict[
        str, object
    ] = {}  # which predictions were drawn: "asymptote", "gaps", "rate", "thm3"
    for i, (label, run) in enumerate(runs.items()):
        tr = run.trace()
        t = tr.t.astype(float)
        c = style.color(i)
        ex = tr.extras
        norm_last = float(ex["norm"][-1])
        arrays.update(
            {
                f"{label}.t": tr.t,
                f"{label}.norm": ex["norm"],
                f"{label}.loss": ex["loss"],
                f"{label}.angle_gap": ex["angle_gap"],
                f"{label}.margin_gap": ex["margin_gap"],
                f"{label}.direction_gap": ex["direction_gap"],
                f"{label}.w": ex["w"],
            }
        )
        ax["B"].semilogx(t, ex["norm"] / norm_last, color=c, label=label)
        _positive(ax["C"], t, ex["loss"], color=c, label=label)
        _positive(ax["D"], t, ex["angle_gap"], color=c, label=label)
        _positive(ax["E"], t, ex["margin_gap"], color=c, label=label)
        gf = _norm_fit(tr)
        if gf is not None:
            fits[f"{label}.norm"] = gf
        pred = predictions[label]
        if pred is None or pred.theorem != "thm4":
            if pred is not None:
                drawn.setdefault("other", {}).setdefault(
                    _NO_PREDICTION.get(pred.theorem, pred.description), []
                ).append(label)
            continue  # no limit of rho is predicted: nothing to draw
        tp = t[t >= PREDICTION_T_MIN]
        lt = np.log(tp)
        asym = pred.gaps_at(lt)
        kw = {"color": c, "ls": ":", "lw": 1.2}
        ax["B"].semilogx(tp, asym["norm"] / norm_last, **kw)
        ax["C"].loglog(tp, pred.tL_limit / tp, **kw)
        drawn["asymptote"] = True
        arrays.update(
            {
                f"{label}.pred.t": tp.astype(np.int64),
                f"{label}.pred.norm": asym["norm"],
                f"{label}.pred.loss": pred.tL_limit / tp,
                f"{label}.pred.eta": np.asarray(pred.eta),
            }
        )
        if pred.direction_const > _PARALLEL_TOL * max(1.0, float(np.linalg.norm(pred.w_tilde))):
            _positive(ax["D"], tp, asym["angle_gap"], **kw)
            _positive(ax["E"], tp, asym["margin_gap"], **kw)
            drawn["gaps"] = True
            arrays.update(
                {
                    f"{label}.pred.angle_gap": asym["angle_gap"],
                    f"{label}.pred.margin_gap": asym["margin_gap"],
                }
            )
        else:  # w_tilde parallel to w_hat: the local rate, through the last point
            lam = pred.rate_support
            tr_t = tp[tp >= tp[-1] / 1e3]
            shape = tr_t**-lam / np.log(tr_t)
            margin = ex["margin_gap"][-1] * shape / shape[-1]
            angle = ex["angle_gap"][-1] * (shape / shape[-1]) ** 2
            ax["D"].loglog(tr_t, angle, **kw)
            ax["E"].loglog(tr_t, margin, **kw)
            arrays.update(
                {
                    f"{label}.rate.t": tr_t.astype(np.int64),
                    f"{label}.rate.angle_gap": angle,
                    f"{label}.rate.margin_gap": margin,
                    f"{label}.rate.lambda": np.asarray(lam),
                }
            )
            drawn["rate"] = lam

    ax["B"].set_ylabel(r"$\|w(t)\|\,/\,\|w(t_{\max})\|$")
    ax["C"].set_ylabel(r"loss $\mathcal{L}(w(t))$")
    ax["D"].set_ylabel(r"angle gap $1-\cos\angle(w,\hat w)$")
    ax["E"].set_ylabel("margin gap")
    for k in "BCDE":
        ax[k].set_xlabel("iteration $t$")
    _legends(ax, drawn)
    for k in "ABCDE":
        style.panel_label(ax[k], k)
    return fig, arrays, fits


def _legends(ax, drawn: Mapping[str, object]) -> None:
    """Method colours in (B); line styles, for what was drawn, in (C)-(E)."""
    from matplotlib.lines import Line2D

    def line(label: str, ls: str = "-") -> Line2D:
        return Line2D([], [], color="0.3", ls=ls, lw=1.2, label=label)

    ax["B"].legend(loc="upper left")
    if drawn.get("asymptote"):
        ax["B"].plot(
            [], [], color="0.3", ls=":", lw=1.2, label=r"theory: $\|\hat w\log t+\tilde w\|$"
        )
        ax["B"].legend(loc="upper left")
        ax["C"].legend(
            handles=[line("measured"), line(r"theory: $\|\hat w\|^2/(\eta t)$", ":")],
            loc="lower left",
        )
    if drawn.get("gaps"):
        for k in "DE":
            ax[k].legend(
                handles=[line("measured"), line(r"theory: $\hat w\log t+\tilde w$", ":")],
                loc="lower left",
            )
    elif "rate" in drawn:
        lam = drawn["rate"]
        ax["D"].legend(
            handles=[
                line("measured"),
                line(rf"$\propto (t^{{-\lambda}}/\log t)^2$, $\lambda={lam:.2f}$", ":"),
            ],
            loc="lower left",
        )
        ax["E"].legend(
            handles=[
                line("measured"),
                line(rf"$\propto t^{{-\lambda}}/\log t$, $\lambda={lam:.2f}$", ":"),
            ],
            loc="lower left",
        )
    notes = [", ".join(labels) + ": " + text for text, labels in drawn.get("other", {}).items()]
    if notes:
        ax["A"].text(
            0.03,
            0.98,
            "\n".join(notes),
            transform=ax["A"].transAxes,
            fontsize=5.5,
            va="top",
            ha="left",
        )


def _separator(ax: Axes, w: np.ndarray, offset: float, span: np.ndarray, **kw) -> None:
    """Draw the line ``w . x = offset`` across the box ``|x_i| <= span_i``."""
    w = np.asarray(w, dtype=float)
    if abs(w[1]) >= abs(w[0]) * span[0] / span[1] * 1e-9 and w[1] != 0:
        x1 = np.array([-span[0], span[0]])
        ax.plot(x1, (offset - w[0] * x1) / w[1], **kw)
    elif w[0] != 0:
        x2 = np.array([-span[1], span[1]])
        ax.plot((offset - w[1] * x2) / w[0], x2, **kw)


def build(
    name: str,
    configs: Mapping[str, SeparableRunConfig],
    runs: Path,
    out: Path,
    *,
    title: str,
    caption: str,
) -> FigureResult:
    """Compute (or reuse) ``configs``, draw them and write figure ``name``: the shared ``build``
    of the two JMLR figures."""
    done = compute_runs(configs, Path(runs))
    progress(f"{name}: drawing")
    fig, arrays, fits = draw(done, title=title)
    paths = save_figure(fig, out, name)
    data = save_data(out, name, arrays, fits)
    return FigureResult(
        name,
        paths,
        data,
        {k: f.best for k, f in fits.items()},
        tuple(r.path for r in done.values()),
        caption,
    )
