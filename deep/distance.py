"""How far the weights travel, ||w_t - w_0||, for a sweep of batch sizes -- and by which law.

The seed's distance experiment. A :class:`DistanceConfig` names a sweep; :func:`run_distance`
trains (or reuses) one run per batch size and sweep with ``deep.train.train``, each recorded
on a log-spaced step schedule, fits them with the shared ruler
(:func:`diffusion.metrics.fit_growth`) and judges the paper's claims with the named checks of
:mod:`deep.checks`. The sweep is itself a run folder (``distance-<hash>``): its
``summary.json`` holds every fit and verdict, its ``records.npz`` every trace, so two sweeps
with other settings never overwrite each other and the same sweep is found again from any
entry point.

``equal epochs``
    Every batch size trains the same number of epochs at the same learning rate, with no
    learning-rate drop (the paper's "initial phase"). A batch ``B`` makes ``E n / B`` steps,
    so smaller batches take more steps -- and, if the distance grows like ``log t``, travel
    farther. Each trace is fitted over ``t_min <= t`` (``t_min`` defaults to 10 steps, the
    memory ``1 / (1 - momentum)`` of momentum 0.9, before which the motion is ballistic) by
    the log, polylog, power and power-with-offset laws, ranked by BIC. Checks: ``log_law``
    per batch size (judged only where the window spans two decades), ``slope_decreases``
    (the fitted log slope falls with ``B``) and ``smaller_batches_farther``.
``adapted``
    Regime adaptation with the sqrt learning-rate rule from the smallest batch ``B_0`` and
    ghost batch norm of ``ghost_size``: batch ``B`` trains ``E_a B / B_0`` epochs at
    ``lr sqrt(B / B_0)``, i.e. exactly as many steps as ``B_0``. The paper's claim is that the
    distance is then a function of the step alone: check ``adapted_agree``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from diffusion.metrics import GrowthFit, Trace, fit_growth
from diffusion.options import add_config_options, add_runs_option
from diffusion.options import config_from_args as _config_from_args
from diffusion.records import Run, load_run, register_runner
from diffusion.validation import check_int, check_real

from .checks import Check, adapted_agree, log_interp, log_law, slope_decreases
from .sweep import add_backend_arguments, finite_or_none, print_result, save_sweep, train_many

__all__ = [
    "DistanceConfig",
    "BatchFit",
    "DistanceResult",
    "run_distance",
    "load_distance",
    "distance_at",
    "add_parser",
]


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class DistanceConfig:
    """A distance sweep: what every run of it depends on (its hash names the sweep folder).

    Parameters
    ----------
    model, data : str
        Network and dataset (``deep.models`` / ``deep.data`` names).
    batch_sizes : tuple of int
        The sweep, from ``B_S`` to ``B_L``; the smallest is the base ``B_0`` of the adapted
        runs. Stored sorted.
    epochs : float
        Epochs of every equal-epoch run (constant learning rate ``lr``).
    adapted_epochs : float or None
        Epochs of ``B_0`` in the adapted sweep (batch ``B`` trains ``adapted_epochs B / B_0``
        epochs at ``lr sqrt(B / B_0)``); ``None`` skips that sweep.
    lr : float
        Learning rate of the equal-epoch runs and of ``B_0``.
    momentum, weight_decay : float
        SGD settings.
    grad_clip : float or None
        Gradient-norm clipping (the paper's recipe clips at 5).
    ghost_size : int or None
        Ghost batch norm of the adapted runs with ``B > ghost_size`` (``None``: plain BN).
    t_min : int
        First step of the fitted window.
    seed : int
        Seed of every run (the same initial weights and split for every batch size).
    trace_per_decade : int
        Log-spaced recording points per decade of steps.
    """

    KIND: ClassVar[str] = "distance"

    model: str = "f1"
    data: str = "mnist5k"
    batch_sizes: tuple[int, ...] = (32, 128, 512, 1024)
    epochs: float = 16.0
    adapted_epochs: float | None = 16.0
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float | None = 5.0
    ghost_size: int | None = 32
    t_min: int = 10
    seed: int = 0
    trace_per_decade: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_sizes", _check_batch_sizes(self.batch_sizes))
        check_int("t_min", self.t_min, 1)
        if self.adapted_epochs is not None:  # None skips the adapted sweep
            epochs = check_real("adapted_epochs", self.adapted_epochs, 0, low_open=True)
            object.__setattr__(self, "adapted_epochs", epochs)
        if self.ghost_size is not None:
            check_int("ghost_size", self.ghost_size, 2)
        self.train_configs()  # validates model, data, lr, epochs... with the trainer's messages

    def train_configs(self) -> tuple[list[Any], list[Any]]:
        """The ``deep.train.TrainConfig`` of each equal-epoch and each adapted run."""
        from .train import TrainConfig

        common = dict(
            model=self.model,
            data=self.data,
            lr=self.lr,
            base_batch_size=self.batch_sizes[0],
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip,
            seed=self.seed,
            trace_per_decade=self.trace_per_decade,
            eval_every=None,
            milestones=(),
        )
        equal = [
            TrainConfig(batch_size=b, epochs=self.epochs, lr_scaling="none", **common)
            for b in self.batch_sizes
        ]
        adapted = []
        if self.adapted_epochs is not None:
            # B_0 itself is unchanged by the rules (factor 1): its run is the equal-epoch run
            # whenever the two sweeps have the same epochs, and is then reused
            base = self.batch_sizes[0]
            adapted.append(
                TrainConfig(
                    batch_size=base, epochs=self.adapted_epochs, lr_scaling="none", **common
                )
            )
            for b in self.batch_sizes[1:]:
                ghost = self.ghost_size if self.ghost_size and b > self.ghost_size else None
                adapted.append(
                    TrainConfig(
                        batch_size=b,
                        epochs=self.adapted_epochs,
                        lr_scaling="sqrt",
                        regime_adaptation=True,
                        ghost_size=ghost,
                        **common,
                    )
                )
        return equal, adapted


def _check_batch_sizes(batch_sizes: Any) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted(int(b) for b in batch_sizes))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"batch_sizes must be a sequence of ints, got {batch_sizes!r}") from exc
    if len(sizes) < 2 or len(set(sizes)) != len(sizes) or sizes[0] < 1:
        raise ValueError(
            f"batch_sizes must hold at least two distinct positive sizes, got {batch_sizes!r}"
        )
    return sizes


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class BatchFit:
    """The equal-epoch trace of one batch size and its growth-law fits.

    Attributes
    ----------
    batch_size : int
        The batch size.
    trace : Trace
        ``||w_t - w_0||`` against the step (equal-epoch run).
    fit : GrowthFit or None
        Laws fitted over ``[t_min, t_end]``; ``None`` when the window holds too few points
        (the reason is in ``fit_error``).
    fit_error : str
        Why no fit was made ("" when there is one).
    final_distance : float
        Distance after the last step (equal epochs).
    steps : int
        Steps of the equal-epoch run.
    run : str
        Run folder.
    log_law : Check
        Whether ``a + b log t`` describes the trace (see :func:`deep.checks.log_law`).
    """

    batch_size: int
    trace: Trace
    fit: GrowthFit | None
    fit_error: str
    final_distance: float
    steps: int
    run: str
    log_law: Check

    @property
    def log_slope(self) -> tuple[float, float] | None:
        """Slope ``b`` of ``a + b log t`` and its standard error."""
        if self.fit is None or "log" not in self.fit.fits:
            return None
        f = self.fit.fits["log"]
        return f.params["b"], f.stderr["b"]

    def as_dict(self) -> dict:
        """JSON-able view (without the trace arrays, which live in ``records.npz``)."""
        return {
            "batch_size": self.batch_size,
            "steps": self.steps,
            "final_distance": self.final_distance,
            "run": self.run,
            "fit": self.fit.as_dict() if self.fit else None,
            "fit_error": self.fit_error,
            "log_slope": list(self.log_slope) if self.log_slope else None,
            "log_law": self.log_law.as_dict(),
        }


@dataclass(frozen=True)
class DistanceResult:
    """Result of :func:`run_distance`.

    Attributes
    ----------
    config : DistanceConfig
        The sweep.
    equal_epochs : dict of int to BatchFit
        Equal-epoch runs with their fits.
    adapted : dict of int to Trace
        Regime-adapted runs (sqrt learning rate, ghost BN, equal steps).
    adapted_runs : dict of int to str
        Their run folders.
    path : str
        The sweep's run folder ("" before it is written).
    """

    config: DistanceConfig
    equal_epochs: dict[int, BatchFit]
    adapted: dict[int, Trace]
    adapted_runs: dict[int, str]
    path: str = ""

    # -- views of the config, kept for readers of the former result
    @property
    def model(self) -> str:
        """Network name."""
        return self.config.model

    @property
    def data(self) -> str:
        """Dataset name."""
        return self.config.data

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """The sweep, increasing."""
        return self.config.batch_sizes

    @property
    def t_min(self) -> int:
        """Start of the fitted window."""
        return self.config.t_min

    @property
    def epochs(self) -> float:
        """Epochs of the equal-epoch runs."""
        return self.config.epochs

    @property
    def adapted_epochs(self) -> float:
        """Epochs of ``B_0`` in the adapted runs (NaN when skipped)."""
        return math.nan if self.config.adapted_epochs is None else self.config.adapted_epochs

    # -- the paper's claims
    @property
    def smaller_batches_farther(self) -> bool:
        """Final distance at equal epochs strictly decreases with the batch size."""
        d = [self.equal_epochs[b].final_distance for b in self.batch_sizes]
        return all(a > b for a, b in zip(d[:-1], d[1:], strict=True))

    @property
    def checks(self) -> dict[str, Check]:
        """``log_law@B`` per batch size, ``slope_decreases`` and ``adapted_agree``."""
        out = {f"log_law@{b}": f.log_law for b, f in self.equal_epochs.items()}
        slopes = {b: f.log_slope for b, f in self.equal_epochs.items() if f.log_slope}
        out["slope_decreases"] = slope_decreases(slopes)
        if self.adapted:
            out["adapted_agree"] = adapted_agree(self.adapted, self.t_min)
        return out

    @property
    def adapted_steps(self) -> int:
        """The common last step of the adapted runs."""
        return int(min(tr.t[-1] for tr in self.adapted.values())) if self.adapted else 0

    def adapted_distances(self, step: int | None = None) -> dict[int, float]:
        """Distance of each adapted run at ``step`` (the common last step by default)."""
        step = self.adapted_steps if step is None else step
        return {b: distance_at(tr, step) for b, tr in self.adapted.items()}

    @property
    def adapted_spread(self) -> float:
        """``(max - min) / mean`` of the adapted distances at the common last step."""
        d = np.array(list(self.adapted_distances().values()))
        return float(np.ptp(d) / np.mean(d)) if d.size else math.nan

    @property
    def equal_steps_spread(self) -> float:
        """The same spread for the equal-epoch runs at the largest batch's last step."""
        step = min(f.steps for f in self.equal_epochs.values())
        d = np.array([distance_at(f.trace, step) for f in self.equal_epochs.values()])
        return float(np.ptp(d) / np.mean(d))

    def table(self) -> str:
        """Plain text: per batch size the laws' BIC and the log slope; then every check."""
        head = (
            f"{'B':>6} {'steps':>7} {'best law':>14} {'dBIC(log)':>9} {'k (polylog)':>11} "
            f"{'log slope b':>16} {'d(E epochs)':>11} {'d(adapted)':>10}"
        )
        adapted = (
            f"adapted: sqrt lr, ghost {self.config.ghost_size}, RA from B={self.batch_sizes[0]}, "
            f"E={self.adapted_epochs:g}, {self.adapted_steps} steps"
            if self.adapted
            else "no adapted sweep"
        )
        lines = [
            f"{self.model}/{self.data}: equal epochs E={self.epochs:g} at lr {self.config.lr:g} "
            f"(fit t >= {self.t_min}); {adapted}",
            head,
        ]
        ad = self.adapted_distances() if self.adapted else {}
        for b in self.batch_sizes:
            f = self.equal_epochs[b]
            if f.fit is not None:
                n = f.log_law.numbers
                best = f.fit.best.law
                dl = n.get("delta_bic_log", math.nan)
                k = n.get("polylog_k")
                k = math.nan if k is None else k
                s, e = f.log_slope or (math.nan, math.nan)
                slope = f"{s:.3f} ± {e:.3f}"
            else:
                best, dl, k, slope = "(no fit)", math.nan, math.nan, "--"
            lines.append(
                f"{b:>6} {f.steps:>7} {best:>14} {dl:>9.1f} {k:>11.2f} {slope:>16} "
                f"{f.final_distance:>11.3f} {ad.get(b, math.nan):>10.3f}"
            )
        lines.append(
            f"smaller batches farther at equal epochs: "
            f"{'yes' if self.smaller_batches_farther else 'no'}"
        )
        lines += [check.line() for check in self.checks.values()]
        return "\n".join(lines)

    def records(self) -> dict[str, np.ndarray]:
        """Every trace as arrays: ``B<b>.t``/``B<b>.distance`` and ``B<b>.adapted.*``."""
        out: dict[str, np.ndarray] = {"batch_sizes": np.asarray(self.batch_sizes)}
        for b, f in self.equal_epochs.items():
            out[f"B{b}.t"], out[f"B{b}.distance"] = f.trace.t, f.trace.distance
        for b, tr in self.adapted.items():
            out[f"B{b}.adapted.t"], out[f"B{b}.adapted.distance"] = tr.t, tr.distance
        return out

    def as_dict(self) -> dict:
        """JSON-able view (the sweep's ``summary.json``)."""
        return {
            "model": self.model,
            "data": self.data,
            "batch_sizes": list(self.batch_sizes),
            "t_min": self.t_min,
            "epochs": self.epochs,
            "adapted_epochs": self.config.adapted_epochs,
            "equal_epochs": {str(b): f.as_dict() for b, f in self.equal_epochs.items()},
            "adapted": {
                str(b): {"run": self.adapted_runs[b], "steps": int(tr.t[-1])}
                for b, tr in self.adapted.items()
            },
            "adapted_steps": self.adapted_steps,
            "adapted_distances": {str(b): d for b, d in self.adapted_distances().items()}
            if self.adapted
            else {},
            "adapted_spread": finite_or_none(self.adapted_spread),
            "equal_steps_spread": self.equal_steps_spread,
            "smaller_batches_farther": self.smaller_batches_farther,
            "checks": {k: c.as_dict() for k, c in self.checks.items()},
        }


def distance_at(trace: Trace, step: int) -> float:
    """Distance at ``step``, linearly interpolated in ``log(1 + t)`` between recorded points."""
    if not trace.t[0] <= step <= trace.t[-1]:
        raise ValueError(
            f"step must lie in the trace's range [{trace.t[0]}, {trace.t[-1]}], got {step}"
        )
    return log_interp(trace, step)


# ----------------------------------------------------------------------------- runner
def _batch_fit(b: int, run: Run, t_min: int) -> BatchFit:
    tr = run.trace("")
    trace = Trace(tr.t, tr.distance)
    try:
        fit, err = fit_growth(trace, t_min=t_min), ""
    except ValueError as exc:
        fit, err = None, str(exc)
    if fit is None:
        verdict = Check("log_law", None, "", {"batch_size": b}, reason=f"no fit: {err}")
    else:
        verdict = log_law(fit, batch_size=b)
    return BatchFit(
        b, trace, fit, err, float(trace.distance[-1]), int(trace.t[-1]), str(run.path), verdict
    )


def run_distance(
    config: DistanceConfig | None = None,
    runs: str | os.PathLike = "runs",
    *,
    runtime: Any = None,
    force: bool = False,
    n_jobs: int = 1,
    progress: bool = False,
    backend: str = "loky",
    scheduler: str | None = None,
) -> DistanceResult:
    """Train (or reuse) a distance sweep, fit its traces and judge the paper's claims.

    Parameters
    ----------
    config : DistanceConfig, optional
        The sweep (the defaults: F1 on MNIST-5k, the quick profile's initial phase).
    runs : path
        Folder of every run folder: the training runs and the sweep's own folder.
    runtime : deep.train.Runtime, optional
        Device, data root and threads of the training runs (never part of their identity).
    force : bool
        Rewrite the sweep folder (finished training runs are still reused).
    n_jobs : int
        Runs trained at once (joblib processes).
    backend, scheduler : str
        Where the training runs execute (:func:`deep.sweep.train_many`): ``"loky"`` processes
        here, or ``"dask"`` workers (a local cluster, or the scheduler at ``scheduler``).
    progress : bool
        One line per finished training run on stderr.

    Returns
    -------
    DistanceResult
    """
    config = DistanceConfig() if config is None else config
    if not isinstance(config, DistanceConfig):
        raise TypeError(f"config must be a DistanceConfig, got {type(config).__name__}")
    check_int("n_jobs", n_jobs, 1)
    runs = Path(runs)
    equal_cfg, adapted_cfg = config.train_configs()
    trained = train_many(
        equal_cfg + adapted_cfg,
        runs,
        runtime=runtime,
        n_jobs=n_jobs,
        label="distance" if progress else None,
        backend=backend,
        scheduler=scheduler,
    )
    n = len(equal_cfg)
    equal = {
        b: _batch_fit(b, run, config.t_min)
        for b, run in zip(config.batch_sizes, trained[:n], strict=True)
    }
    adapted, adapted_runs = {}, {}
    for b, run in zip(config.batch_sizes, trained[n:], strict=False):
        tr = run.trace("")
        adapted[b] = Trace(tr.t, tr.distance)
        adapted_runs[b] = str(run.path)
    result = DistanceResult(config, equal, adapted, adapted_runs)
    path = save_sweep(runs, config, result.records(), result.as_dict(), force=force)
    return DistanceResult(config, equal, adapted, adapted_runs, str(path))


def load_distance(path: str | os.PathLike) -> dict:
    """The ``summary.json`` of a finished sweep folder (fits and checks, no training)."""
    return load_run(path).summary


# ----------------------------------------------------------------------------- CLI
_ZERO_IS_NONE = ("adapted_epochs", "grad_clip", "ghost_size")
"""Fields where ``0`` on the command line means ``None`` (skip the sweep, no clipping, plain BN)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``python -m deep distance`` (options are the fields of DistanceConfig)."""
    from .data import DATASETS
    from .models import MODELS

    p = subparsers.add_parser(
        "distance",
        help="||w_t - w_0|| for a sweep of batch sizes, with law fits and the paper's checks",
        description=__doc__.split("\n\n")[0],
    )
    add_config_options(
        p,
        DistanceConfig,
        choices={"model": sorted(MODELS), "data": list(DATASETS)},
        zero_is_none=_ZERO_IS_NONE,
    )
    add_runs_option(p, hidden_aliases=("--out",))
    p.add_argument("--data-root", default=None, help="folder of user data files")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train; auto is CUDA when available (default: auto)",
    )
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    add_backend_arguments(p)
    p.add_argument("--json", action="store_true", help="print the sweep's summary as JSON")
    p.set_defaults(func=_main)
    return p


def config_from_args(args: argparse.Namespace) -> DistanceConfig:
    """The :class:`DistanceConfig` of a parsed command line (unset options keep defaults)."""
    return _config_from_args(DistanceConfig, args)


def _main(args: argparse.Namespace) -> int:
    from .train import Runtime

    try:
        config = config_from_args(args)
        runtime = Runtime(device=args.device, data_root=args.data_root, progress=False)
        if args.jobs < 1:
            raise ValueError(f"--jobs must be a positive integer, got {args.jobs}")
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = run_distance(
        config,
        args.runs,
        runtime=runtime,
        n_jobs=args.jobs,
        progress=True,
        backend=args.backend,
        scheduler=args.scheduler,
    )
    print_result(result, args.json, f"sweep folder: {result.path}")
    return 0


# the one run protocol: diffusion.records.run(DistanceConfig(...)) is the sweep's run folder,
# runtime.jobs training runs at once
register_runner(
    DistanceConfig,
    lambda config, runs="runs", *, runtime=None, force=False: run_distance(
        config, runs, runtime=runtime, force=force, n_jobs=runtime.jobs if runtime else 1
    ),
)
