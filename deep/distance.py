"""How far the weights travel, ||w_t - w_0||, for a sweep of batch sizes -- and by which law.

Two sweeps over the same batch sizes, each run recorded on a log-spaced step schedule by
``deep.train.train`` and fitted with the shared ruler (:func:`diffusion.metrics.fit_growth`):

``equal epochs``
    Every batch size trains for the same number of epochs at the same learning rate, with no
    learning-rate drop (the paper's "initial phase"). A batch ``B`` makes ``E n / B`` steps,
    so smaller batches take more steps -- and, if the distance grows like ``log t``, travel
    farther. Each trace is fitted over ``t_min <= t`` (``t_min`` defaults to 10 steps, the
    memory ``1 / (1 - momentum)`` of momentum 0.9, before which the motion is ballistic) by
    the log, polylog, power and power-with-offset laws, and the laws are ranked by BIC.
``adapted``
    Regime adaptation with the sqrt learning-rate rule from the smallest batch ``B_0``:
    batch ``B`` trains ``E B / B_0`` epochs at ``lr sqrt(B / B_0)``, i.e. exactly as many
    steps as ``B_0``. The paper's claim is that the distance is then a function of the step
    alone; :attr:`DistanceResult.adapted_spread` measures how close the curves are.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from diffusion.metrics import GrowthFit, Trace, fit_growth
from diffusion.records import atomic_write_json

__all__ = ["BatchFit", "DistanceResult", "run_distance", "distance_at", "add_parser"]


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
    """

    batch_size: int
    trace: Trace
    fit: GrowthFit | None
    fit_error: str
    final_distance: float
    steps: int
    run: str

    @property
    def log_beats_power(self) -> bool | None:
        """Whether ``a + b log t`` has a smaller BIC than ``a t^nu`` (``None`` without a fit)."""
        if self.fit is None or "log" not in self.fit.fits or "power" not in self.fit.fits:
            return None
        return self.fit.beats("log", "power")

    @property
    def log_slope(self) -> tuple[float, float] | None:
        """Slope ``b`` of ``a + b log t`` and its standard error."""
        if self.fit is None or "log" not in self.fit.fits:
            return None
        f = self.fit.fits["log"]
        return f.params["b"], f.stderr["b"]

    def as_dict(self) -> dict:
        """JSON-able view (the trace as arrays)."""
        return {
            "batch_size": self.batch_size,
            "steps": self.steps,
            "final_distance": self.final_distance,
            "run": self.run,
            "t": self.trace.t.tolist(),
            "distance": self.trace.distance.tolist(),
            "fit": self.fit.as_dict() if self.fit else None,
            "fit_error": self.fit_error,
            "log_beats_power": self.log_beats_power,
            "log_slope": list(self.log_slope) if self.log_slope else None,
        }


@dataclass(frozen=True)
class DistanceResult:
    """Result of :func:`run_distance`.

    Attributes
    ----------
    model, data : str
        Network and dataset.
    batch_sizes : tuple of int
        The sweep, increasing.
    equal_epochs : dict of int to BatchFit
        Equal-epoch runs with their fits.
    adapted : dict of int to Trace
        Regime-adapted runs (sqrt learning rate, equal steps).
    adapted_runs : dict of int to str
        Their run folders.
    t_min : int
        Start of the fitted window.
    epochs, adapted_epochs : float
        Epochs of the equal-epoch runs and of the base batch in the adapted runs.
    """

    model: str
    data: str
    batch_sizes: tuple[int, ...]
    equal_epochs: dict[int, BatchFit]
    adapted: dict[int, Trace]
    adapted_runs: dict[int, str]
    t_min: int
    epochs: float
    adapted_epochs: float

    @property
    def log_beats_power_everywhere(self) -> bool:
        """The log law beats the power law by BIC for every batch size (fits present)."""
        return all(f.log_beats_power is True for f in self.equal_epochs.values())

    @property
    def smaller_batches_farther(self) -> bool:
        """Final distance at equal epochs strictly decreases with the batch size."""
        d = [self.equal_epochs[b].final_distance for b in self.batch_sizes]
        return all(a > b for a, b in zip(d[:-1], d[1:], strict=True))

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
        """A plain-text table: per batch size, the laws' BIC, the log slope and the distances."""
        head = (
            f"{'B':>6} {'steps':>7} {'best':>12} {'dBIC(power)':>11} {'dBIC(log)':>9} "
            f"{'log slope b':>16} {'d(E epochs)':>11} {'d(adapted)':>10}"
        )
        lines = [
            f"{self.model}/{self.data}: equal epochs E={self.epochs:g} (fit t >= {self.t_min}); "
            f"adapted: sqrt lr + RA from B={self.batch_sizes[0]}, E={self.adapted_epochs:g}, "
            f"{self.adapted_steps} steps",
            head,
        ]
        ad = self.adapted_distances()
        for b in self.batch_sizes:
            f = self.equal_epochs[b]
            if f.fit is not None:
                best = f.fit.best.law
                dp = f.fit.delta("power") if "power" in f.fit.fits else math.nan
                dl = f.fit.delta("log") if "log" in f.fit.fits else math.nan
                s, e = f.log_slope or (math.nan, math.nan)
                slope = f"{s:.3f} ± {e:.3f}"
            else:
                best, dp, dl, slope = "(no fit)", math.nan, math.nan, "--"
            lines.append(
                f"{b:>6} {f.steps:>7} {best:>12} {dp:>11.1f} {dl:>9.1f} {slope:>16} "
                f"{f.final_distance:>11.3f} {ad.get(b, math.nan):>10.3f}"
            )
        lines.append(
            f"log beats power (BIC) for every batch size: {_yes(self.log_beats_power_everywhere)}; "
            f"smaller batches farther at equal epochs: {_yes(self.smaller_batches_farther)}; "
            f"spread (max-min)/mean at equal steps: adapted {self.adapted_spread:.3f}, "
            f"equal epochs {self.equal_steps_spread:.3f}"
        )
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "model": self.model,
            "data": self.data,
            "batch_sizes": list(self.batch_sizes),
            "t_min": self.t_min,
            "epochs": self.epochs,
            "adapted_epochs": _finite_or_none(self.adapted_epochs),
            "equal_epochs": {str(b): f.as_dict() for b, f in self.equal_epochs.items()},
            "adapted": {
                str(b): {
                    "t": tr.t.tolist(),
                    "distance": tr.distance.tolist(),
                    "run": self.adapted_runs[b],
                }
                for b, tr in self.adapted.items()
            },
            "adapted_steps": self.adapted_steps,
            "adapted_distances": {str(b): d for b, d in self.adapted_distances().items()},
            "adapted_spread": _finite_or_none(self.adapted_spread),
            "equal_steps_spread": self.equal_steps_spread,
            "log_beats_power_everywhere": self.log_beats_power_everywhere,
            "smaller_batches_farther": self.smaller_batches_farther,
        }


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def distance_at(trace: Trace, step: int) -> float:
    """Distance at ``step``, linearly interpolated in ``log(1 + t)`` between recorded points."""
    if not trace.t[0] <= step <= trace.t[-1]:
        raise ValueError(
            f"step must lie in the trace's range [{trace.t[0]}, {trace.t[-1]}], got {step}"
        )
    return float(np.interp(np.log1p(step), np.log1p(trace.t.astype(float)), trace.distance))


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


def run_distance(
    root: str | os.PathLike,
    *,
    model: str = "f1",
    data: str = "mnist5k",
    batch_sizes: tuple[int, ...] | list[int] = (32, 128, 512, 2048),
    epochs: float = 20.0,
    adapted_epochs: float | None = 2.0,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    grad_clip: float | None = 5.0,
    t_min: int = 10,
    seed: int = 0,
    data_root: str | None = None,
    device: str = "auto",
    trace_per_decade: int = 20,
    n_jobs: int = 1,
) -> DistanceResult:
    """Distance traces for a sweep of batch sizes, with growth-law fits.

    Parameters
    ----------
    root : path
        Folder of the run folders (finished runs are reused).
    model, data : str
        Network and dataset (``deep.models`` / ``deep.data`` names).
    batch_sizes : sequence of int
        The sweep; the smallest is the base ``B_0`` of the adapted runs.
    epochs : float
        Epochs of every equal-epoch run (constant learning rate ``lr``).
    adapted_epochs : float or None
        Epochs of ``B_0`` in the adapted sweep (batch ``B`` trains ``adapted_epochs B / B_0``
        epochs at ``lr sqrt(B / B_0)``); ``None`` skips that sweep.
    lr, momentum, weight_decay, grad_clip : float
        SGD settings (no learning-rate drop: the initial phase).
    t_min : int
        First step of the fitted window.
    seed : int
        Seed of every run (same initial weights for every batch size).
    data_root, device : str
        Passed to the trainer.
    trace_per_decade : int
        Density of the recorded trace.
    n_jobs : int
        Runs trained at once (joblib processes).

    Returns
    -------
    DistanceResult
    """
    from .train import Runtime, TrainConfig

    sizes = _check_batch_sizes(batch_sizes)
    if isinstance(t_min, bool) or not isinstance(t_min, int) or t_min < 1:
        raise ValueError(f"t_min must be a positive int, got {t_min!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int, got {n_jobs!r}")
    common = dict(
        model=model,
        data=data,
        lr=lr,
        base_batch_size=sizes[0],
        momentum=momentum,
        weight_decay=weight_decay,
        grad_clip=grad_clip,
        seed=seed,
        trace_per_decade=trace_per_decade,
        eval_every=None,
        milestones=(),
    )
    configs = [TrainConfig(batch_size=b, epochs=epochs, lr_scaling="none", **common) for b in sizes]
    if adapted_epochs is not None:
        configs += [
            TrainConfig(
                batch_size=b,
                epochs=adapted_epochs,
                lr_scaling="sqrt",
                regime_adaptation=True,
                **common,
            )
            for b in sizes
        ]
    runtime = Runtime(device=device, data_root=data_root, progress=False)
    runs = _train_all(configs, Path(root), n_jobs, runtime)

    equal = {}
    for b, run in zip(sizes, runs[: len(sizes)], strict=True):
        trace = run.trace("")
        trace = Trace(trace.t, trace.distance)
        try:
            fit, err = fit_growth(trace, t_min=t_min), ""
        except ValueError as exc:
            fit, err = None, str(exc)
        equal[b] = BatchFit(
            b, trace, fit, err, float(trace.distance[-1]), int(trace.t[-1]), str(run.path)
        )
    adapted, adapted_runs = {}, {}
    for b, run in zip(sizes, runs[len(sizes) :], strict=True):
        tr = run.trace("")
        adapted[b] = Trace(tr.t, tr.distance)
        adapted_runs[b] = str(run.path)
    return DistanceResult(
        model,
        data,
        sizes,
        equal,
        adapted,
        adapted_runs,
        t_min,
        float(epochs),
        float(adapted_epochs) if adapted_epochs is not None else math.nan,
    )


def _train_one(config: Any, root: str, threads: int, runtime: Any):
    import torch

    from .train import train

    if threads > 0:
        torch.set_num_threads(threads)
    return train(config, root, runtime=runtime)


def _train_all(configs: list, root: Path, n_jobs: int, runtime: Any) -> list:
    root.mkdir(parents=True, exist_ok=True)
    if n_jobs == 1:
        return [_train_one(c, str(root), 0, runtime) for c in configs]
    from joblib import Parallel, delayed

    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    return Parallel(n_jobs=n_jobs)(
        delayed(_train_one)(c, str(root), threads, runtime) for c in configs
    )


# ----------------------------------------------------------------------------- CLI
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``python -m deep distance``."""
    p = subparsers.add_parser(
        "distance",
        help="||w_t - w_0|| for a sweep of batch sizes, with law fits",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--model", default="f1")
    p.add_argument("--data", default="mnist5k")
    p.add_argument("--batch-sizes", default="32,128,512,2048", help="comma-separated sweep")
    p.add_argument("--epochs", type=float, default=20.0, help="epochs of the equal-epoch runs")
    p.add_argument(
        "--adapted-epochs",
        type=float,
        default=2.0,
        help="epochs of the smallest batch in the adapted sweep (0 to skip it)",
    )
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--t-min", type=int, default=10, help="first step of the fitted window")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", default="runs")
    p.set_defaults(func=_main)
    return p


def _main(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    out = Path(args.out)
    result = run_distance(
        out / "distance",
        model=args.model,
        data=args.data,
        batch_sizes=sizes,
        epochs=args.epochs,
        adapted_epochs=args.adapted_epochs or None,
        lr=args.lr,
        t_min=args.t_min,
        seed=args.seed,
        data_root=args.data_root,
        device=args.device,
        n_jobs=args.jobs,
    )
    path = atomic_write_json(out / f"distance-{args.model}-{args.data}.json", result.as_dict())
    print(result.table())
    print(f"written: {path}")
    return 0
