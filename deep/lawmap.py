"""Where does ``||w_t - w_0||`` grow like ``log t``? A map over the settings that decide it.

The seed reports ``||w_t - w_0|| ~ log t`` in the initial phase of training. A CPU miniature
shows other laws: a power law ``t^nu`` while the network is far from fitting its training
set (diffusive motion), and a distance that levels off once it is fit. :func:`run_lawmap`
trains one small network per cell of a grid -- data size relative to the number of steps
(the epochs those steps make), learning rate, weight decay, and batch norm on or off -- at
constant learning rate for the same number of steps, fits every trace with the shared ruler
(:func:`diffusion.metrics.fit_growth`) over ``t >= t_min`` and records, per cell, the law BIC
selects, ``dBIC`` of the log law, the fitted exponents and the ``log_law`` check of
:mod:`deep.checks` (not judged where the network collapsed to chance). The map is a run
folder of its own (``lawmap-<hash>``) whose summary holds every cell; the training runs are
ordinary trainer runs, reused when they exist.

The network is the MNIST-1D MLP (``mlp1d``, 40-256x3-10, batch norm; ``mlp1d_nobn``
without) on MNIST-1D generated at 5k, 20k or 80k sequences: a few seconds per cell.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from diffusion.metrics import Trace, fit_growth
from diffusion.options import add_config_options, add_runs_option, config_from_args
from diffusion.records import Run, register_runner
from diffusion.validation import check_bool, check_int

from .checks import Check, log_law
from .sweep import add_backend_arguments, finite_or_none, print_result, save_sweep, train_many

__all__ = [
    "LawMapConfig",
    "LawMapCell",
    "LawMapResult",
    "run_lawmap",
    "add_parser",
    "COLLAPSED_ACCURACY",
]

_TRAIN_FRACTION = 0.8
"""Share of a built-in dataset in its training split (the split is 80/20)."""

COLLAPSED_ACCURACY = 0.15
"""A cell whose final training accuracy is below this (chance is 0.1 on MNIST-1D's ten
classes) has collapsed: its ``log_law`` check is not judged."""


@dataclass(frozen=True)
class LawMapConfig:
    """A grid of short constant-learning-rate runs (its hash names the map's folder).

    The default grid is 2 (batch norm) x 3 (weight decay) x 3 (data size) x 2 (learning rate)
    = 36 cells of 4000 steps.

    Parameters
    ----------
    datasets : tuple of str
        Built-in MNIST-1D sizes (``mnist1d``, ``mnist1d-20k``, ``mnist1d-80k``): with the
        same number of steps, a larger set means fewer epochs.
    lrs : tuple of float
        Learning rates.
    weight_decays : tuple of float
        Weight decays.
    batch_norm : tuple of bool
        Batch norm on (``mlp1d``) and/or off (``mlp1d_nobn``).
    batch_size : int
        Batch size of every run.
    steps : int
        SGD steps of every run (constant learning rate: the initial phase).
    momentum : float
        SGD momentum.
    grad_clip : float or None
        Gradient-norm clipping.
    t_min : int
        First step of the fitted window.
    seed : int
        Seed of every run.
    trace_per_decade : int
        Recording points per decade of steps.
    """

    KIND: ClassVar[str] = "lawmap"

    datasets: tuple[str, ...] = ("mnist1d", "mnist1d-20k", "mnist1d-80k")
    lrs: tuple[float, ...] = (0.02, 0.1)
    weight_decays: tuple[float, ...] = (0.0, 5e-4, 2e-3)
    batch_norm: tuple[bool, ...] = (True, False)
    batch_size: int = 32
    steps: int = 4000
    momentum: float = 0.9
    grad_clip: float | None = 5.0
    t_min: int = 10
    seed: int = 0
    trace_per_decade: int = 20

    def __post_init__(self) -> None:
        from .data import MNIST1D_SIZES

        for name in ("datasets", "lrs", "weight_decays", "batch_norm"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise TypeError(f"{name} must be a sequence, got {value!r}")
            value = tuple(value)
            if not value or len(set(value)) != len(value):
                raise ValueError(f"{name} must be non-empty and without repeats, got {value!r}")
            object.__setattr__(self, name, value)
        bad = [d for d in self.datasets if d not in MNIST1D_SIZES]
        if bad:
            raise ValueError(f"datasets must be drawn from {list(MNIST1D_SIZES)}, got {bad}")
        bn = tuple(check_bool("batch_norm", b) for b in self.batch_norm)
        object.__setattr__(self, "batch_norm", bn)
        object.__setattr__(self, "lrs", tuple(float(x) for x in self.lrs))
        object.__setattr__(self, "weight_decays", tuple(float(x) for x in self.weight_decays))
        for name, low in (("steps", 10), ("t_min", 1), ("batch_size", 1)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), low))
        if self.t_min >= self.steps:
            raise ValueError(f"t_min ({self.t_min}) must be below steps ({self.steps})")
        self.train_configs()  # validates lr, weight decay... with the trainer's messages

    def cells(self) -> list[tuple[bool, float, str, float]]:
        """``(batch_norm, weight_decay, dataset, lr)`` of every cell, in a fixed order."""
        return [
            (bn, wd, data, lr)
            for bn in self.batch_norm
            for wd in self.weight_decays
            for data in self.datasets
            for lr in self.lrs
        ]

    def epochs(self, dataset: str) -> float:
        """Epochs that ``steps`` batches make on ``dataset``'s training split."""
        from .data import MNIST1D_SIZES

        return self.steps * self.batch_size / (_TRAIN_FRACTION * MNIST1D_SIZES[dataset])

    def train_configs(self) -> list[Any]:
        """The ``deep.train.TrainConfig`` of every cell, in the order of :meth:`cells`."""
        from .train import TrainConfig

        return [
            TrainConfig(
                model="mlp1d" if bn else "mlp1d_nobn",
                data=data,
                batch_size=self.batch_size,
                base_batch_size=self.batch_size,
                epochs=self.epochs(data),
                max_steps=self.steps,
                lr=lr,
                momentum=self.momentum,
                weight_decay=wd,
                grad_clip=self.grad_clip,
                seed=self.seed,
                trace_per_decade=self.trace_per_decade,
                eval_every=None,
                milestones=(),
            )
            for bn, wd, data, lr in self.cells()
        ]


@dataclass(frozen=True)
class LawMapCell:
    """One cell of the map: its settings, its trace and what the ruler says of it.

    Attributes
    ----------
    batch_norm : bool
    weight_decay, lr : float
    dataset : str
    epochs : float
        Epochs made by the run's steps (data size relative to steps).
    trace : Trace
        ``||w_t - w_0||`` against the step.
    best : str
        The law BIC selects (``"(no fit)"`` when none could be fitted).
    delta_bic_log : float
        BIC of the log law minus the best law's (0 when log is selected).
    nu : float
        Exponent of ``a + b t^nu`` (NaN without that fit).
    k : float
        Exponent of ``a + b (log t)^k`` (NaN without that fit or at its bound).
    log_law : Check
        The ``log_law`` check.
    train_acc, val_acc : float
        Final accuracies (fractions).
    run : str
        The training run's folder.
    """

    batch_norm: bool
    weight_decay: float
    dataset: str
    lr: float
    epochs: float
    trace: Trace
    best: str
    delta_bic_log: float
    nu: float
    k: float
    log_law: Check
    train_acc: float
    val_acc: float
    run: str

    def as_dict(self) -> dict:
        """JSON-able view (without the trace)."""
        return {
            "batch_norm": self.batch_norm,
            "weight_decay": self.weight_decay,
            "dataset": self.dataset,
            "lr": self.lr,
            "epochs": self.epochs,
            "best": self.best,
            "delta_bic_log": finite_or_none(self.delta_bic_log),
            "nu": finite_or_none(self.nu),
            "k": finite_or_none(self.k),
            "log_law": self.log_law.as_dict(),
            "train_acc": finite_or_none(self.train_acc),
            "val_acc": finite_or_none(self.val_acc),
            "run": self.run,
        }


@dataclass(frozen=True)
class LawMapResult:
    """Result of :func:`run_lawmap`.

    Attributes
    ----------
    config : LawMapConfig
    cells : tuple of LawMapCell
        In the order of :meth:`LawMapConfig.cells`.
    path : str
        The map's run folder.
    """

    config: LawMapConfig
    cells: tuple[LawMapCell, ...]
    path: str = ""

    @property
    def log_cells(self) -> tuple[LawMapCell, ...]:
        """The cells where the log law holds (``log_law`` passed)."""
        return tuple(c for c in self.cells if c.log_law.passed)

    def table(self) -> str:
        """One line per cell."""
        lines = [
            f"{self.config.steps} steps at B={self.config.batch_size}, fit t >= "
            f"{self.config.t_min}; log holds where dBIC(log) <= 2 or |k - 1| <= 0.25",
            f"{'BN':>3} {'wd':>7} {'dataset':>12} {'epochs':>7} {'lr':>6} {'best law':>13} "
            f"{'dBIC(log)':>9} {'nu':>7} {'k':>6} {'train':>6} {'val':>6}  log?",
        ]
        for c in self.cells:
            verdict = {True: "yes", False: "no", None: "n/j"}[c.log_law.passed]
            lines.append(
                f"{'on' if c.batch_norm else 'off':>3} {c.weight_decay:>7.0e} {c.dataset:>12} "
                f"{c.epochs:>7.1f} {c.lr:>6.3g} {c.best:>13} {c.delta_bic_log:>9.1f} "
                f"{c.nu:>7.3f} {c.k:>6.2f} {c.train_acc:>6.3f} {c.val_acc:>6.3f}  {verdict}"
            )
        lines.append(f"log law holds in {len(self.log_cells)} of {len(self.cells)} cells")
        return "\n".join(lines)

    def records(self) -> dict[str, np.ndarray]:
        """Every trace as arrays ``cell<i>.t`` / ``cell<i>.distance``."""
        out: dict[str, np.ndarray] = {}
        for i, c in enumerate(self.cells):
            out[f"cell{i}.t"], out[f"cell{i}.distance"] = c.trace.t, c.trace.distance
        return out

    def as_dict(self) -> dict:
        """JSON-able view (the map's ``summary.json``)."""
        return {
            "cells": [c.as_dict() for c in self.cells],
            "log_cells": len(self.log_cells),
            "n_cells": len(self.cells),
        }


def _cell(settings: tuple, epochs: float, run: Run, t_min: int) -> LawMapCell:
    bn, wd, data, lr = settings
    tr = run.trace("")
    trace = Trace(tr.t, tr.distance)
    s = run.summary
    acc = (float(s.get("final_train_acc") or math.nan), float(s.get("final_val_acc") or math.nan))
    if not np.all(np.isfinite(trace.distance)):
        reason = "the run diverged (non-finite distance)"
        check = Check("log_law", None, "", {}, reason=reason)
        return LawMapCell(bn, wd, data, lr, epochs, trace, "(no fit)", *(math.nan,) * 3, check,
                          *acc, str(run.path))  # fmt: skip
    fit = fit_growth(trace, t_min=t_min)
    check = log_law(fit)
    if acc[0] < COLLAPSED_ACCURACY:
        # a network stuck at chance still moves its weights; its law says nothing of learning
        reason = f"the network collapsed (final training accuracy {acc[0]:.3f})"
        check = Check("log_law", None, check.rule, check.numbers, reason=reason)
    nu = fit.fits["power_offset"].params["nu"] if "power_offset" in fit.fits else math.nan
    poly = fit.fits.get("polylog")
    k = poly.params["k"] if poly is not None and not poly.at_bound else math.nan
    return LawMapCell(
        bn,
        wd,
        data,
        lr,
        epochs,
        trace,
        fit.best.law,
        float(fit.delta("log")),
        float(nu),
        float(k),
        check,
        *acc,
        str(run.path),
    )


def run_lawmap(
    config: LawMapConfig | None = None,
    runs: str | os.PathLike = "runs",
    *,
    runtime: Any = None,
    force: bool = False,
    n_jobs: int = 1,
    progress: bool = False,
    backend: str = "loky",
    scheduler: str | None = None,
) -> LawMapResult:
    """Train (or reuse) every cell of the map and fit its trace.

    Parameters
    ----------
    config : LawMapConfig, optional
        The grid (defaults: 2 x 3 x 3 x 2 = 36 cells of 4000 steps).
    runs : path
        Folder of the run folders (training runs and the map's own).
    runtime : deep.train.Runtime, optional
        Device and threads of the training runs.
    force : bool
        Rewrite the map's folder (training runs are still reused).
    n_jobs : int
        Runs trained at once (joblib processes).
    backend, scheduler : str
        Where the training runs execute (:func:`deep.sweep.train_many`): ``"loky"`` processes
        here, or ``"dask"`` workers (a local cluster, or the scheduler at ``scheduler``).
    progress : bool
        One line per finished run on stderr.

    Returns
    -------
    LawMapResult
    """
    config = LawMapConfig() if config is None else config
    if not isinstance(config, LawMapConfig):
        raise TypeError(f"config must be a LawMapConfig, got {type(config).__name__}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    runs = Path(runs)
    label = "lawmap" if progress else None
    trained = train_many(
        config.train_configs(),
        runs,
        runtime=runtime,
        n_jobs=n_jobs,
        label=label,
        backend=backend,
        scheduler=scheduler,
    )
    cells = tuple(
        _cell(settings, config.epochs(settings[2]), run, config.t_min)
        for settings, run in zip(config.cells(), trained, strict=True)
    )
    result = LawMapResult(config, cells)
    path = save_sweep(runs, config, result.records(), result.as_dict(), force=force)
    return LawMapResult(config, cells, str(path))


# ----------------------------------------------------------------------------- CLI
def _bn(text: str) -> tuple[bool, ...]:
    table = {"on": (True,), "off": (False,), "both": (True, False)}
    if text not in table:
        raise ValueError(f"--batch-norm must be on, off or both, got {text!r}")
    return table[text]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``python -m deep lawmap`` (options are the fields of LawMapConfig)."""
    from .data import MNIST1D_SIZES

    p = subparsers.add_parser(
        "lawmap",
        help="where ||w_t - w_0|| grows like log t: best law over data size, lr, wd and BN",
        description=__doc__.split("\n\n")[0],
    )
    add_config_options(
        p,
        LawMapConfig,
        choices={"datasets": list(MNIST1D_SIZES)},
        converters={"batch_norm": _bn},
        help={"batch_norm": "on (mlp1d), off (mlp1d_nobn) or both (default: both)"},
    )
    add_runs_option(p)
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train; auto is CUDA when available (default: auto)",
    )
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    add_backend_arguments(p)
    p.add_argument("--json", action="store_true", help="print the map's summary as JSON")
    p.set_defaults(func=_main)  # fmt: skip
    return p


def _main(args: argparse.Namespace) -> int:
    from .train import Runtime

    try:
        config = config_from_args(LawMapConfig, args)
        if args.jobs < 1:
            raise ValueError(f"--jobs must be a positive integer, got {args.jobs}")
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    runtime = Runtime(device=args.device, progress=False)
    result = run_lawmap(
        config,
        args.runs,
        runtime=runtime,
        n_jobs=args.jobs,
        progress=True,
        backend=args.backend,
        scheduler=args.scheduler,
    )
    print_result(
        result, args.json, f"map folder: {result.path} ({time.perf_counter() - start:.0f} s)"
    )
    return 0


# the one run protocol: diffusion.records.run(LawMapConfig(...)) is the map's run folder,
# runtime.jobs training runs at once
register_runner(
    LawMapConfig,
    lambda config, runs="runs", *, runtime=None, force=False: run_lawmap(
        config, runs, runtime=runtime, force=force, n_jobs=runtime.jobs if runtime else 1
    ),
)
