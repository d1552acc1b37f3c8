"""gamma on a real network: how the spread of loss increments grows with weight distance.

The ultra-slow diffusion picture treats the training loss as a random potential whose
increments between two weight vectors a distance ``d`` apart have a spread growing like
``d^gamma``; the seed measured ``gamma`` close to 1, and the theory maps ``gamma`` to a
distance growing like ``(log t)^(1/gamma)``. :func:`measure_gamma` measures it two ways on
one network, both with :func:`diffusion.metrics.estimate_gamma` (log-spaced distance bins,
spread in each bin, weighted log-log regression, Student-t confidence interval):

Method
------
1. Train the network with SGD (``deep.train.train``, small batch, constant learning rate:
   the initial phase) and keep ``snapshots + 1`` weight vectors along the trajectory, equally
   spaced in steps and including ``w_0`` and ``w_T`` (captured from the trainer's checkpoints).
2. Fix an evaluation batch of ``n_eval`` training samples (seeded choice). The loss
   ``L(w)`` is the mean cross-entropy on it with batch norm in training mode -- the
   normalisation SGD itself sees -- and dropout off; running statistics are never used.
3. *Trajectory*: for every pair ``i < j`` of snapshots, the distance ``||w_j - w_i||`` and
   the increment ``L(w_j) - L(w_i)``.
4. *Perturbation*: around a base point ``w`` (``w_0`` and ``w_T``), ``n_directions``
   directions ``u`` drawn uniformly on the unit sphere of the full parameter space (seeded
   Gaussian vectors, normalised) and ``n_radii`` radii ``r`` log-spaced over
   ``radius_span`` times the distance travelled ``||w_T - w_0||``; the increment is
   ``L(w + r u) - L(w)`` and the distance is ``r``.
5. Each set of (distance, increment) pairs goes to ``estimate_gamma`` with ``center=True``:
   the spread is the standard deviation about the bin mean, so a systematic drift (the loss
   falling along the trajectory, or the mean curvature term ``r^2 tr(H) / 2P`` around a
   point) is not counted as fluctuation. For the perturbations each radius is its own bin.

A smooth loss has increments ``g.u r + O(r^2)``: gamma = 1 where the gradient term
dominates and 2 where curvature does, so the fitted exponent also says which regime the
distances travelled by SGD are in.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from diffusion.metrics import GammaEstimate, estimate_gamma
from diffusion.options import add_config_options, add_runs_option, config_from_args
from diffusion.records import Run, register_runner, run_or_load, to_jsonable

__all__ = ["GammaConfig", "GammaResult", "measure_gamma", "loss_increments", "add_parser"]


@dataclass(frozen=True)
class GammaConfig:
    """What to measure gamma on (a frozen, validated configuration; its hash names the run).

    Parameters
    ----------
    model, data : str
        Network and dataset (``deep.models`` / ``deep.data`` names).
    batch_size : int
        SGD batch of the trajectory.
    epochs : float
        Length of the trajectory (constant learning rate).
    lr, momentum, weight_decay : float
        SGD settings.
    grad_clip : float, optional
        Gradient-norm clipping of the trajectory.
    snapshots : int
        About this many trajectory segments: a checkpoint every ``T // snapshots`` steps
        and at the end ``T``, plus ``w_0``.
    n_directions : int
        Random directions per base point.
    n_radii : int
        Radii per direction.
    radius_span : tuple of float
        Smallest and largest radius as fractions of the distance travelled.
    n_eval : int
        Training samples in the fixed evaluation batch.
    seed : int
        Seed of the run, the evaluation batch and the directions.

    Where it runs (device, data root) is a ``deep.train.Runtime``, never part of the
    measurement's identity.
    """

    KIND: ClassVar[str] = "gamma"

    model: str = "f1"
    data: str = "mnist5k"
    batch_size: int = 32
    epochs: float = 2.0
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float | None = 5.0
    snapshots: int = 16
    n_directions: int = 32
    n_radii: int = 10
    radius_span: tuple[float, float] = (0.01, 1.0)
    n_eval: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "snapshots", "n_directions", "n_radii", "n_eval"):
            v = getattr(self, name)
            low = 3 if name in ("snapshots", "n_radii", "n_directions") else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        span = tuple(self.radius_span)
        if (
            len(span) != 2
            or not all(isinstance(s, (int, float)) and math.isfinite(s) for s in span)
            or not 0 < span[0] < span[1]
        ):
            raise ValueError(
                f"radius_span must be two increasing positive numbers, got {self.radius_span!r}"
            )
        object.__setattr__(self, "radius_span", (float(span[0]), float(span[1])))
        self.train_config()  # validates model, data, lr, epochs... with the trainer's messages

    def train_config(self):
        """The ``deep.train.TrainConfig`` of the trajectory."""
        from .train import TrainConfig

        return TrainConfig(
            model=self.model,
            data=self.data,
            batch_size=self.batch_size,
            epochs=self.epochs,
            lr=self.lr,
            base_batch_size=self.batch_size,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip,
            seed=self.seed,
            eval_every=None,
        )


@dataclass(frozen=True)
class GammaResult:
    """Result of :func:`measure_gamma`.

    Attributes
    ----------
    config : GammaConfig
        What was measured.
    trajectory : GammaEstimate or None
        From pairs of snapshots along the SGD trajectory; ``None`` when the pairs fill
        fewer than 3 distance bins (``trajectory_error`` says why).
    perturbation_init, perturbation_final : GammaEstimate
        From random perturbations around ``w_0`` and ``w_T``.
    distance_travelled : float
        ``||w_T - w_0||``.
    steps : int
        Steps of the trajectory.
    run : Run
        The run folder with the raw (distance, increment) pairs.
    """

    config: GammaConfig
    trajectory: GammaEstimate | None
    perturbation_init: GammaEstimate
    perturbation_final: GammaEstimate
    distance_travelled: float
    steps: int
    run: Run
    trajectory_error: str = ""

    def estimates(self) -> dict[str, GammaEstimate]:
        """The estimates that could be made, by name."""
        out = {
            "trajectory": self.trajectory,
            "perturbation_init": self.perturbation_init,
            "perturbation_final": self.perturbation_final,
        }
        return {k: v for k, v in out.items() if v is not None}

    def table(self) -> str:
        """A plain-text summary, one line per method."""
        c, level = self.config, int(100 * self.perturbation_init.level)
        lines = [
            f"gamma of {c.model}/{c.data}: SGD B={c.batch_size}, lr={c.lr:g}, {self.steps} steps, "
            f"||w_T - w_0|| = {self.distance_travelled:.3f}",
            f"{'method':<20} {'gamma':>7} {'stderr':>7} {level}% CI"
            f"{'':>11} {'bins':>4} {'pairs':>6} {'distances':>19}",
        ]
        for name, est in self.estimates().items():
            lines.append(
                f"{name:<20} {est.gamma:7.3f} {est.gamma_stderr:7.3f} "
                f"[{est.ci[0]:6.3f}, {est.ci[1]:6.3f}] {est.bin_count.size:>4} "
                f"{int(est.bin_count.sum()):>6} {est.bin_distance[0]:8.3g} .. "
                f"{est.bin_distance[-1]:8.3g}"
            )
        if self.trajectory is None:
            lines.append(f"{'trajectory':<20} no estimate: {self.trajectory_error}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "run": str(self.run.path),
            "steps": self.steps,
            "distance_travelled": self.distance_travelled,
            "trajectory": None,
            "trajectory_error": self.trajectory_error,
            **{k: v.as_dict() for k, v in self.estimates().items()},
        }


# ----------------------------------------------------------------------------- the loss
def _training_norm_mode(model: nn.Module) -> None:
    """Batch norm uses batch statistics (as in SGD); every other layer (dropout) is in eval mode."""
    model.eval()
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.train()


@torch.no_grad()
def loss_increments(
    model: nn.Module,
    base: torch.Tensor,
    points: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
) -> np.ndarray:
    """``L(points[k]) - L(base)`` for weight vectors given as flat parameter vectors.

    The loss is evaluated in float64 on a copy of ``model`` (the model itself is untouched),
    so increments far below float32 resolution are still measured.

    Parameters
    ----------
    model : torch.nn.Module
        The network (its architecture; its weights are replaced by the vectors).
    base : torch.Tensor
        Flat parameter vector (``parameters_to_vector`` order).
    points : torch.Tensor
        ``(K, P)`` flat parameter vectors.
    x, y : torch.Tensor
        The fixed evaluation batch.

    Returns
    -------
    numpy.ndarray
        ``K`` increments of the mean cross-entropy (batch norm on batch statistics).
    """
    n_params = sum(p.numel() for p in model.parameters())
    if base.ndim != 1 or base.numel() != n_params:
        raise ValueError(
            f"base must be a flat vector of {n_params} parameters, got shape {tuple(base.shape)}"
        )
    if points.ndim != 2 or points.shape[1] != n_params:
        raise ValueError(f"points must have shape (K, {n_params}), got {tuple(points.shape)}")
    loss_at = _LossAt(model, x, y)
    l0 = loss_at(base)
    return np.array([loss_at(p) - l0 for p in points])


class _LossAt:
    """``L(w)`` of a flat parameter vector, in float64 on a private copy of the model."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model = copy.deepcopy(model).to(torch.float64)
        _training_norm_mode(self.model)
        self.params = list(self.model.parameters())
        self.x, self.y = x.to(torch.float64), y

    @torch.no_grad()
    def __call__(self, vec: torch.Tensor) -> float:
        vector_to_parameters(vec.to(torch.float64), self.params)
        return float(F.cross_entropy(self.model(self.x), self.y))


# ----------------------------------------------------------------------------- measurement
def _trajectory(config: GammaConfig, root: Path, runtime: Any) -> tuple[torch.Tensor, int]:
    """Train; return the ``(snapshots + 1, P)`` parameter vectors along the run and its steps."""
    from .data import load_dataset
    from .regime import steps_for_epochs
    from .train import Runtime, load_checkpoint, train

    n_train = len(load_dataset(config.data, runtime.data_root, config.seed).train)
    total = steps_for_epochs(config.epochs, n_train, config.batch_size)
    if total < config.snapshots:
        raise ValueError(
            f"epochs={config.epochs} gives {total} steps, fewer than snapshots={config.snapshots}"
        )
    every = total // config.snapshots
    tcfg = config.train_config()
    from diffusion.records import run_dir

    folder = run_dir(root, tcfg)
    snaps: dict[int, torch.Tensor] = {}
    initial: list[torch.Tensor] = []

    def grab(step: int) -> None:
        ckpt = load_checkpoint(folder)
        if not initial:
            initial.append(torch.cat([t.reshape(-1) for t in ckpt["initial"]]).float())
        names = [k for k in ckpt["model"] if k in _param_names]
        snaps[step] = torch.cat([ckpt["model"][k].reshape(-1) for k in names]).float()

    from .models import build

    _param_names = {n for n, _ in build(config.model).named_parameters()}
    runtime = Runtime(
        device=runtime.device,
        data_root=runtime.data_root,
        threads=runtime.threads,  # the trajectory's numbers depend on it (see the README)
        progress=False,
        checkpoint_every=every,
    )
    run = train(tcfg, root, runtime=runtime, resume=False, force=True, on_checkpoint=grab)
    steps = sorted(snaps)
    if not initial or steps[-1] != total:
        raise RuntimeError(f"trajectory snapshots missing: got steps {steps} of a {total}-step run")
    chosen = [s for s in steps if s % every == 0 or s == total]
    points = torch.stack([initial[0]] + [snaps[s] for s in chosen])
    return points, int(run.summary["steps"])


def _compute(config: GammaConfig, root: Path, runtime: Any) -> tuple[dict[str, np.ndarray], dict]:
    from .data import load_dataset
    from .models import build

    points, steps = _trajectory(config, root, runtime)
    data = load_dataset(config.data, runtime.data_root, config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    idx = torch.randperm(len(data.train), generator=gen)[: config.n_eval]
    x, y = data.train.x[idx], data.train.y[idx]
    model = build(config.model, data.num_classes)
    if parameters_to_vector(model.parameters()).numel() != points.shape[1]:
        raise RuntimeError("snapshot size does not match the model's parameters")

    points = points.double()
    loss_at = _LossAt(model, x, y)
    # trajectory: every pair i < j
    losses = np.array([loss_at(p) for p in points])
    i, j = np.triu_indices(points.shape[0], k=1)
    pair_d = np.array(
        [float(torch.linalg.vector_norm(points[b] - points[a])) for a, b in zip(i, j, strict=True)]
    )
    pair_inc = losses[j] - losses[i]

    # perturbations around w_0 and w_T
    travelled = float(torch.linalg.vector_norm(points[-1] - points[0]))
    radii = np.geomspace(*config.radius_span, config.n_radii) * travelled
    dirs = torch.randn(config.n_directions, points.shape[1], generator=gen, dtype=torch.float64)
    dirs /= torch.linalg.vector_norm(dirs, dim=1, keepdim=True)
    records = {
        "pairs.distance": pair_d,
        "pairs.increment": pair_inc,
        "trajectory.loss": losses,
        "perturbation.radius": np.repeat(radii, config.n_directions),
    }
    for name, k in (("init", 0), ("final", -1)):
        base = points[k]
        records[f"perturbation.{name}"] = np.array(
            [loss_at(base + float(r) * u) - losses[k] for r in radii for u in dirs]
        )
    summary = {"steps": steps, "distance_travelled": travelled}
    estimates, why = _estimates(config, records)
    for name, est in estimates.items():
        summary[name] = est.as_dict() if est is not None else None
    summary["trajectory_error"] = why
    return records, summary


def _estimates(
    config: GammaConfig, records: dict[str, np.ndarray]
) -> tuple[dict[str, GammaEstimate | None], str]:
    """The three estimates (trajectory ``None`` when its pairs fill under 3 bins, with why)."""
    n_pairs = records["pairs.distance"].size
    try:
        traj, why = (
            estimate_gamma(
                records["pairs.distance"],
                records["pairs.increment"],
                n_bins=max(3, min(8, n_pairs // 8)),
                min_count=3,
                center=True,
            ),
            "",
        )
    except ValueError as exc:
        traj, why = None, str(exc)
    out: dict[str, GammaEstimate | None] = {"trajectory": traj}
    for name in ("init", "final"):
        out[f"perturbation_{name}"] = estimate_gamma(
            records["perturbation.radius"],
            records[f"perturbation.{name}"],
            n_bins=config.n_radii,
            min_count=config.n_directions,
            center=True,
        )
    return out, why


def measure_gamma(
    config: GammaConfig | None = None,
    runs: str | os.PathLike = "runs",
    *,
    runtime: Any = None,
    force: bool = False,
) -> GammaResult:
    """Measure gamma along an SGD trajectory and at random perturbations (see the module docs).

    Parameters
    ----------
    config : GammaConfig, optional
        The measurement (the defaults: F1 on MNIST-5k, the quick table's recipe).
    runs : path
        Folder of the run folders; a finished measurement with the same configuration is
        reused (folder ``gamma-<hash>``; the trajectory is a trainer run beside it).
    runtime : deep.train.Runtime, optional
        Device, data root and torch threads (never part of the measurement's identity;
        the numbers depend on the thread count: the README gives how much).
    force : bool
        Measure again even when a finished run exists.

    Returns
    -------
    GammaResult
    """
    from .train import Runtime, torch_threads

    config = GammaConfig() if config is None else config
    runtime = runtime or Runtime(progress=False)
    if not isinstance(config, GammaConfig):
        raise TypeError(f"config must be a GammaConfig, got {type(config).__name__}")
    root = Path(runs)
    with torch_threads(runtime.threads):  # the numbers depend on the thread count
        run = run_or_load(root, config, lambda c: _compute(c, root, runtime), force=force)
    est, why = _estimates(config, run.records)
    return GammaResult(
        config,
        est["trajectory"],
        est["perturbation_init"],
        est["perturbation_final"],
        float(run.summary["distance_travelled"]),
        int(run.summary["steps"]),
        run,
        why,
    )


# ----------------------------------------------------------------------------- CLI
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``python -m deep gamma`` (options are the fields of GammaConfig)."""
    from .data import DATASETS
    from .models import MODELS

    p = subparsers.add_parser(
        "gamma",
        help="gamma: spread of loss increments ~ distance^gamma",
        description=__doc__.split("\n\n")[0],
    )
    add_config_options(
        p,
        GammaConfig,
        choices={"model": sorted(MODELS), "data": list(DATASETS)},
        aliases={"n_directions": ("--directions",), "n_radii": ("--radii",)},
    )
    add_runs_option(p, hidden_aliases=("--out",))
    p.add_argument("--data-root", default=None, help="folder of user data files")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train and measure; auto is CUDA when available (default: auto)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads; the measured numbers depend on it, so the default is "
        "the same on every machine (default: 1)",
    )
    p.add_argument("--json", action="store_true", help="print the measurement as JSON")
    p.set_defaults(func=_main)
    return p


def _main(args: argparse.Namespace) -> int:
    from .train import Runtime

    cfg = config_from_args(GammaConfig, args)
    runtime = Runtime(
        device=args.device, data_root=args.data_root, threads=args.threads, progress=False
    )
    result = measure_gamma(cfg, args.runs, runtime=runtime)
    if args.json:
        print(json.dumps(to_jsonable(result.as_dict()), indent=1))
        return 0
    print(result.table())
    print(f"run folder: {result.run.path}")
    return 0


# the one run protocol: diffusion.records.run(GammaConfig(...)) is the measurement's run folder
register_runner(GammaConfig, measure_gamma)
