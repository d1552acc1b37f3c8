"""Gradient noise: the simple noise scale B_simple = tr(Sigma) / |G|^2, and the diffusion it drives.

McCandlish et al. (2018, "An empirical model of large-batch training"): over a population of
``n`` samples with per-example gradients ``g_i``, the full gradient is ``G = mean_i g_i`` and
the per-example covariance ``Sigma = mean_i (g_i - G)(g_i - G)^T``. A minibatch of ``B``
samples drawn with replacement has ``E |G_B|^2 = |G|^2 + tr(Sigma) / B``; ``B_simple =
tr(Sigma) / |G|^2`` is the batch size at which the noise in ``G_B`` is as large as the
signal. Here the population is a stated subset of the training data and the network is in
evaluation mode (batch norm on running statistics, no dropout), so that a sample's
gradient does not depend on the rest of its batch.

``gradient_noise_scale``
    Exact over the subset, from per-example gradients (``torch.func.vmap`` of
    ``torch.func.grad``), accumulated chunk by chunk in float64.
``two_batch_noise_scale``
    McCandlish et al.'s Appendix A.1 estimator for models too big for per-example
    gradients: the squared norms of gradients of a small (``b``) and a big (``B``) batch give
    unbiased estimates ``|G|^2 ~ (B |G_B|^2 - b |G_b|^2) / (B - b)`` and
    ``tr(Sigma) ~ (|G_b|^2 - |G_B|^2) / (1/b - 1/B)``; each is averaged over independent
    pairs of batches (with standard errors), and ``B_simple`` is the ratio of the averages.

SGD with learning rate ``eta``, momentum ``mu`` and batch ``B`` adds per step a noise of
covariance ``eta^2 Sigma / B`` to the weights, carried ``1 / (1 - mu)`` further by momentum,
so the weights diffuse with the coefficient (per step, up to a constant factor)

    ``D = eta^2 tr(Sigma) / (B (1 - mu)^2)``          (:func:`diffusion_coefficient`)

-- the quantity the paper's sqrt(B) learning-rate rule keeps constant.
:func:`compare_with_distance_sweep` sets ``D`` of each batch size of a finished distance
sweep (``python -m deep distance``) beside the measured log slope of ``||w_t - w_0||``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from diffusion.records import kept_measurement, load_run
from diffusion.validation import check_int

from .sharpness import (
    LossFn,
    _check_data,
    _check_dtype,
    add_run_arguments,
    emit,
    finished_runs,
    load_run_data,
)

__all__ = [
    "NoiseScale",
    "RunNoise",
    "SweepComparison",
    "gradient_noise_scale",
    "two_batch_noise_scale",
    "diffusion_coefficient",
    "noise_scale_of_run",
    "compare_with_distance_sweep",
    "add_parser",
]

METHODS = ("per_example", "two_batch")


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class NoiseScale:
    """The gradient noise of a model on a population of samples.

    Attributes
    ----------
    b_simple : float
        ``tr(Sigma) / |G|^2``.
    trace_sigma : float
        ``tr(Sigma)``, the per-example gradient variance summed over parameters.
    grad_sq_norm : float
        ``|G|^2``, the squared norm of the mean gradient.
    trace_sigma_se, grad_sq_norm_se : float
        Standard errors of the two (0 for the exact per-example computation).
    n_samples : int
        Size of the population.
    method : str
        ``"per_example"`` or ``"two_batch"``.
    batch_sizes : tuple of int
        ``(b, B)`` of the two-batch estimator (empty for per-example).
    n_pairs : int
        Pairs of batches averaged (0 for per-example).
    """

    b_simple: float
    trace_sigma: float
    grad_sq_norm: float
    trace_sigma_se: float
    grad_sq_norm_se: float
    n_samples: int
    method: str
    batch_sizes: tuple[int, ...] = ()
    n_pairs: int = 0

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {**self.__dict__, "batch_sizes": list(self.batch_sizes)}


@dataclass(frozen=True)
class RunNoise:
    """Result of :func:`noise_scale_of_run`.

    Attributes
    ----------
    run : str
        The run folder.
    noise : NoiseScale
        Noise of the gradient at the chosen weights.
    at : str
        ``"final"`` or ``"initial"`` weights.
    batch_size : int
        The run's batch size ``B``.
    lr : float
        Its peak learning rate ``eta``.
    momentum : float
        Its momentum ``mu``.
    diffusion : float
        ``eta^2 tr(Sigma) / (B (1 - mu)^2)``.
    config : dict
        The run's configuration.
    """

    run: str
    noise: NoiseScale
    at: str
    batch_size: int
    lr: float
    momentum: float
    diffusion: float
    config: dict = field(repr=False)

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "run": self.run,
            "at": self.at,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "momentum": self.momentum,
            "diffusion": self.diffusion,
            "noise": self.noise.as_dict(),
        }


@dataclass(frozen=True)
class SweepComparison:
    """Predicted diffusion against the measured log slope, per batch size of a distance sweep.

    Attributes
    ----------
    batch_sizes : numpy.ndarray
        Increasing batch sizes.
    diffusion : numpy.ndarray
        Predicted ``D`` of each (:func:`diffusion_coefficient`).
    slope, slope_se : numpy.ndarray
        Measured slope ``b`` of ``a + b log t`` fitted to ``||w_t - w_0||`` and its standard
        error (NaN where the sweep has no fit).
    exponent, exponent_se : float
        ``alpha`` of the weighted least-squares fit ``log b = c + alpha log D`` (NaN with
        fewer than three fitted batch sizes): 1 if the slope is proportional to ``D``, 1/2 if
        to ``sqrt(D)``.
    noise : tuple of RunNoise
        The per-run measurements.
    """

    batch_sizes: np.ndarray
    diffusion: np.ndarray
    slope: np.ndarray
    slope_se: np.ndarray
    exponent: float
    exponent_se: float
    noise: tuple[RunNoise, ...]

    def as_dict(self) -> dict:
        """JSON-able view (NaN as None)."""

        def clean(a: np.ndarray) -> list:
            return [None if not math.isfinite(v) else float(v) for v in np.asarray(a, float)]

        return {
            "batch_sizes": self.batch_sizes.tolist(),
            "diffusion": clean(self.diffusion),
            "slope": clean(self.slope),
            "slope_se": clean(self.slope_se),
            "exponent": clean([self.exponent])[0],
            "exponent_se": clean([self.exponent_se])[0],
            "noise": [r.as_dict() for r in self.noise],
        }


# ----------------------------------------------------------------------------- measurements
def _trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    if not params:
        raise ValueError("model has no trainable parameters")
    return params


def _prepared(model: nn.Module, data: Any, dtype: Any) -> tuple[nn.Module, torch.Tensor, Any]:
    import copy

    x, y = _check_data(data)
    dtype = _check_dtype(dtype)
    model = copy.deepcopy(model).to(dtype).eval()
    return model, x.to(dtype) if x.is_floating_point() else x, y


def gradient_noise_scale(
    model: nn.Module,
    loss_fn: LossFn,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    batch_size: int = 64,
    dtype: torch.dtype | str = torch.float32,
) -> NoiseScale:
    """``B_simple = tr(Sigma) / |G|^2`` over ``data`` from per-example gradients.

    Parameters
    ----------
    model : torch.nn.Module
        The network; a copy in ``dtype`` and evaluation mode is used, ``model`` is unchanged.
    loss_fn : callable
        ``loss_fn(outputs, targets)`` -> mean loss of a batch; applied to each sample alone.
    data : (torch.Tensor, torch.Tensor)
        The population: inputs and targets.
    batch_size : int
        Samples whose gradients are held at once (``batch_size x n_params`` floats).
    dtype : torch.float32 or torch.float64
        Precision of the gradients (sums are accumulated in float64).

    Returns
    -------
    NoiseScale
        With ``Sigma`` the population covariance (divisor ``n``) and ``G`` the mean gradient.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    model, x, y = _prepared(model, data, dtype)
    params = _trainable(model)
    buffers = dict(model.named_buffers())

    def sample_loss(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(model, (p, buffers), (xi.unsqueeze(0),)), yi.unsqueeze(0))

    per_example = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    total = {k: torch.zeros(p.shape, dtype=torch.float64) for k, p in params.items()}
    sq = 0.0
    for i in range(0, len(y), batch_size):
        g = per_example(params, x[i : i + batch_size], y[i : i + batch_size])
        for k, gk in g.items():  # per tensor: no (chunk x n_params) copy
            total[k] += gk.sum(0, dtype=torch.float64)
            sq += float(torch.linalg.vector_norm(gk, dtype=torch.float64) ** 2)
    n = len(y)
    g2 = sum(float((t / n).pow(2).sum()) for t in total.values())
    trace = max(sq / n - g2, 0.0)
    return NoiseScale(trace / g2 if g2 > 0 else math.inf, trace, g2, 0.0, 0.0, n, "per_example")


def _batch_sq_norm(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> float:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss_fn(model(x), y), params, allow_unused=True)
    return float(sum(float((g.double() ** 2).sum()) for g in grads if g is not None))


def two_batch_noise_scale(
    model: nn.Module,
    loss_fn: LossFn,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    small: int = 32,
    big: int = 512,
    n_pairs: int = 32,
    seed: int = 0,
    dtype: torch.dtype | str = torch.float32,
) -> NoiseScale:
    """McCandlish et al.'s two-batch-size estimate of ``B_simple`` (no per-example gradients).

    Parameters
    ----------
    model, loss_fn, data, dtype
        As in :func:`gradient_noise_scale`.
    small, big : int
        The batch sizes ``b < B``; batches are drawn from ``data`` with replacement.
    n_pairs : int
        Independent pairs of batches averaged (at least 2, for the standard errors).
    seed : int
        Seeds the draws.

    Returns
    -------
    NoiseScale
        ``tr(Sigma)`` and ``|G|^2`` are the averages of their unbiased per-pair estimates,
        with standard errors (sample std / sqrt(n_pairs)); ``B_simple`` is their ratio
        (``inf`` when the ``|G|^2`` estimate is not positive).
    """
    small = check_int("small", small, 1)
    big = check_int("big", big, 1)
    if big <= small:
        raise ValueError(f"big must exceed small, got small={small}, big={big}")
    n_pairs = check_int("n_pairs", n_pairs, 2)
    model, x, y = _prepared(model, data, dtype)
    rng = np.random.default_rng(seed)
    traces, norms = np.empty(n_pairs), np.empty(n_pairs)
    for j in range(n_pairs):
        i_small = torch.from_numpy(rng.integers(len(y), size=small))
        i_big = torch.from_numpy(rng.integers(len(y), size=big))
        s2 = _batch_sq_norm(model, loss_fn, x[i_small], y[i_small])
        b2 = _batch_sq_norm(model, loss_fn, x[i_big], y[i_big])
        norms[j] = (big * b2 - small * s2) / (big - small)
        traces[j] = (s2 - b2) / (1.0 / small - 1.0 / big)
    trace, g2 = float(traces.mean()), float(norms.mean())
    return NoiseScale(
        trace / g2 if g2 > 0 else math.inf,
        trace,
        g2,
        float(traces.std(ddof=1) / math.sqrt(n_pairs)),
        float(norms.std(ddof=1) / math.sqrt(n_pairs)),
        len(y),
        "two_batch",
        (small, big),
        n_pairs,
    )


def diffusion_coefficient(
    lr: float, trace_sigma: float, batch_size: int, momentum: float = 0.0
) -> float:
    """``eta^2 tr(Sigma) / (B (1 - mu)^2)``: the weights' diffusion per SGD step, up to a factor.

    Parameters
    ----------
    lr : float
        Learning rate ``eta``.
    trace_sigma : float
        ``tr(Sigma)`` of the per-example gradients.
    batch_size : int
        ``B``.
    momentum : float
        Heavy-ball momentum ``mu`` in ``[0, 1)``.
    """
    for name, value in (("lr", lr), ("trace_sigma", trace_sigma)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    batch_size = check_int("batch_size", batch_size, 1)
    if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    return lr**2 * trace_sigma / (batch_size * (1.0 - momentum) ** 2)


# ----------------------------------------------------------------------------- runs
def noise_scale_of_run(
    run_dir: str | os.PathLike,
    *,
    n_samples: int | None = 1024,
    at: str = "final",
    method: str = "per_example",
    seed: int = 0,
    dtype: torch.dtype | str = torch.float32,
    small: int = 32,
    big: int = 512,
    n_pairs: int = 32,
    data_root: str | None = None,
) -> RunNoise:
    """Gradient noise of a finished training run and the diffusion coefficient it predicts.

    The measurement is kept beside the run's records (``noise-<hash>.json``, named by the
    run's identity and these settings) and read back instead of measured again.

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`deep.train.train`.
    n_samples : int or None
        Training samples forming the population (seeded subset; ``None``: all).
    at : {"final", "initial"}
        The trained weights, or ``w_0`` (batch-norm statistics recomputed on the samples, see
        :func:`deep.sharpness.load_run_data`).
    method : {"per_example", "two_batch"}
        :func:`gradient_noise_scale` or :func:`two_batch_noise_scale`.
    seed : int
        Seed of the subset (and of the two-batch draws).
    dtype : torch.float32 or torch.float64
        Precision of the gradients.
    small, big, n_pairs : int
        Settings of the two-batch estimator.
    data_root : str, optional
        Folder of user data files (for runs on user-supplied datasets).

    Returns
    -------
    RunNoise
        ``lr`` is the run's peak learning rate (the constant rate of a distance-sweep run).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    settings = {
        "n_samples": n_samples,
        "at": at,
        "method": method,
        "seed": seed,
        "dtype": str(dtype),
        "small": small,
        "big": big,
        "n_pairs": n_pairs,
    }
    return kept_measurement(
        run_dir,
        "noise",
        settings,
        lambda: _measure(
            run_dir, n_samples, at, method, seed, dtype, small, big, n_pairs, data_root
        ),
        _from_kept,
    )


def _from_kept(doc: dict | None) -> RunNoise | None:
    """The kept measurement as a result, or ``None`` when there is none or it is malformed."""
    if doc is None:
        return None
    try:
        r = doc["result"]
        n = dict(r["noise"])
        n["batch_sizes"] = tuple(n.get("batch_sizes", ()))
        return RunNoise(
            str(r["run"]), NoiseScale(**n), str(r["at"]), int(r["batch_size"]), float(r["lr"]),
            float(r["momentum"]), float(r["diffusion"]), dict(doc["config"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None


def _measure(run_dir, n_samples, at, method, seed, dtype, small, big, n_pairs, data_root):
    """The noise of a finished run (no cache)."""
    run = load_run_data(run_dir, n_samples=n_samples, seed=seed, at=at, data_root=data_root)
    data = (run.x, run.y)
    if method == "per_example":
        noise = gradient_noise_scale(run.model, F.cross_entropy, data, dtype=dtype)
    else:
        noise = two_batch_noise_scale(
            run.model,
            F.cross_entropy,
            data,
            small=small,
            big=big,
            n_pairs=n_pairs,
            seed=seed,
            dtype=dtype,
        )
    cfg = run.config
    lr = float(run.summary.get("peak_lr", cfg["lr"]))
    momentum = float(cfg.get("momentum", 0.0))
    batch = int(cfg["batch_size"])
    return RunNoise(
        str(run.path),
        noise,
        at,
        batch,
        lr,
        momentum,
        diffusion_coefficient(lr, noise.trace_sigma, batch, momentum),
        cfg,
    )


def _sweep_entries(distance: Any) -> list[tuple[int, str, float, float]]:
    """``(batch size, run folder, log slope, its se)`` of each equal-epoch run of a sweep.

    ``distance`` is a :class:`deep.distance.DistanceResult`, a finished sweep folder
    (``distance-<hash>``, whose ``summary.json`` is read) or a JSON file of the same content
    (``python -m deep distance --json``).
    """
    if isinstance(distance, (str, os.PathLike)):
        path = Path(distance)
        if not path.exists():
            raise FileNotFoundError(f"distance sweep {str(distance)!r} does not exist")
        try:
            summary = load_run(path).summary if path.is_dir() else json.loads(path.read_text())
            equal = summary["equal_epochs"]
            return sorted(
                (
                    int(b),
                    str(e["run"]),
                    *(e["log_slope"] if e.get("log_slope") else (math.nan, math.nan)),
                )
                for b, e in equal.items()
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{str(path)!r} is not a distance sweep written by 'python -m deep distance': {exc}"
            ) from exc
    entries = []
    for b in distance.batch_sizes:
        f = distance.equal_epochs[b]
        slope, se = f.log_slope or (math.nan, math.nan)
        entries.append((int(b), f.run, float(slope), float(se)))
    return entries


def _power_fit(d: np.ndarray, slope: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Weighted least squares ``log b = c + alpha log D``; NaN with fewer than three points."""
    ok = np.isfinite(slope) & np.isfinite(se) & (slope > 0) & (se > 0) & (d > 0)
    if ok.sum() < 3:
        return math.nan, math.nan
    coef, cov = np.polyfit(np.log(d[ok]), np.log(slope[ok]), 1, w=slope[ok] / se[ok], cov=True)
    return float(coef[0]), float(math.sqrt(cov[0, 0]))


def compare_with_distance_sweep(
    distance: Any,
    *,
    at: str = "initial",
    **kwargs: Any,
) -> SweepComparison:
    """Predicted diffusion ``D`` beside the measured log slope for each batch size of a sweep.

    Parameters
    ----------
    distance : DistanceResult or path
        A finished distance sweep: :func:`deep.distance.run_distance`'s result, its folder,
        or its summary as a JSON file.
    at : {"initial", "final"}
        Weights at which ``tr(Sigma)`` is measured. At ``w_0`` every run of a sweep shares
        the same weights (same seed), so ``D`` differs between batch sizes by ``eta^2 / B``
        alone; at the final weights ``tr(Sigma)`` also reflects where each walk ended.
    **kwargs
        Passed to :func:`noise_scale_of_run` (``n_samples``, ``method``, ``seed``, ...).

    Returns
    -------
    SweepComparison
    """
    entries = _sweep_entries(distance)
    noise = tuple(noise_scale_of_run(run, at=at, **kwargs) for _, run, _, _ in entries)
    d = np.array([r.diffusion for r in noise])
    slope = np.array([e[2] for e in entries], dtype=float)
    se = np.array([e[3] for e in entries], dtype=float)
    alpha, alpha_se = _power_fit(d, slope, se)
    return SweepComparison(np.array([e[0] for e in entries]), d, slope, se, alpha, alpha_se, noise)


# ----------------------------------------------------------------------------- CLI
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``python -m deep noise``."""
    p = subparsers.add_parser(
        "noise",
        help="gradient noise scale B_simple and predicted diffusion of finished runs",
        description=__doc__.split("\n\n")[0],
    )
    add_run_arguments(p)
    p.add_argument("--at", choices=("final", "initial"), default="final", help="which weights")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="per_example",
        help="per_example: B_simple from per-example gradients; two_batch: McCandlish's "
        "small/big batch estimator (default: per_example)",
    )
    p.add_argument("--small", type=int, default=32, help="two-batch: small batch")
    p.add_argument("--big", type=int, default=512, help="two-batch: big batch")
    p.add_argument("--pairs", type=int, default=32, help="two-batch: pairs of batches")
    p.add_argument(
        "--distance",
        default=None,
        help="a finished distance sweep (its folder, or its --json output): compare the "
        "predicted diffusion with the measured log slope per batch size, instead of listing runs",
    )
    p.set_defaults(func=_main)
    return p


def _main(args: argparse.Namespace) -> int:
    kw = dict(
        n_samples=args.samples,
        at=args.at,
        method=args.method,
        seed=args.seed,
        dtype=args.dtype,
        small=args.small,
        big=args.big,
        n_pairs=args.pairs,
        data_root=args.data_root,
    )
    if args.distance:
        cmp = compare_with_distance_sweep(args.distance, **kw)
        lines = [f"{'B':>6} {'predicted D':>12} {'log slope':>18} {'B_simple':>10}"]
        for b, d, s, e, r in zip(
            cmp.batch_sizes, cmp.diffusion, cmp.slope, cmp.slope_se, cmp.noise, strict=True
        ):
            lines.append(f"{b:>6} {d:12.4g} {s:>9.4f} ± {e:<6.4f} {r.noise.b_simple:10.4g}")
        lines.append(f"slope ~ D^alpha: alpha = {cmp.exponent:.3f} ± {cmp.exponent_se:.3f}")
        emit(args, cmp.as_dict(), lines)
        return 0
    results = [noise_scale_of_run(path, **kw) for path in finished_runs(args.runs, args.run)]
    lines = [
        f"{'run':<28} {'B':>6} {'lr':>8} {'tr Sigma':>11} {'|G|^2':>11} {'B_simple':>10} {'D':>11}"
    ]
    for r in results:
        n = r.noise
        lines.append(
            f"{Path(r.run).name:<28} {r.batch_size:>6} {r.lr:8.4g} {n.trace_sigma:11.4g} "
            f"{n.grad_sq_norm:11.4g} {n.b_simple:10.4g} {r.diffusion:11.4g}"
        )
    emit(args, [r.as_dict() for r in results], lines)
    return 0
