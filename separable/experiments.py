"""Runs of the separable layer as records: a frozen configuration in, a run folder out.

``run_optimizer(config, runs, *, runtime=None, force=False)`` runs one optimiser on one data
set, compares the final measures with the predictions of :func:`separable.theory.predict`
and writes a run folder (:mod:`diffusion.records`: ``config.json``, ``records.npz`` with the
trace, ``summary.json``), reusing a finished run with the same configuration. It is
registered with the generic :func:`diffusion.records.run`.

Predictions for other methods than GD use the step that makes them GD-like at long times:
heavy-ball/Nesterov momentum ``beta`` moves like GD with ``eta / (1 - beta)``; SGD with
batch ``B`` of ``N`` samples (the gradient summed over the batch) moves per step like GD
with ``eta B / N``. Normalized GD and Adam have no such prediction (None).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from diffusion.records import Run, register_runner, run_or_load
from diffusion.runtime import Runtime, check_runtime
from separable.data import Dataset, fig1, fig3, file_digest, load, random_separable
from separable.losses import LOSSES
from separable.optim import METHODS, OptimResult, make_optimizer, optimize
from separable.theory import Prediction, predict

__all__ = [
    "SeparableRunConfig",
    "load_data",
    "effective_eta",
    "compare",
    "run_optimizer",
    "DATA_SETS",
]

DATA_SETS = ("fig1", "fig3", "random")
"""Built-in data names; anything else is a path to a ``.npz`` or ``.csv`` file."""


@dataclass(frozen=True)
class SeparableRunConfig:
    """One optimiser on one data set.

    Parameters
    ----------
    data : str
        ``"fig1"``, ``"fig3"``, ``"random"`` (``n`` x ``d``, ``d`` support vectors) or a
        path to a ``.npz``/``.csv`` file (its SHA-256 is stored in ``data_digest``, so a
        changed file is a new run).
    data_seed : int
        Seed of the built-in data.
    n, d : int
        Size of the ``random`` set.
    bias : bool
        Append a constant feature (a different problem; see :func:`separable.data.with_bias`).
    method : str
        ``gd``, ``momentum``, ``nesterov``, ``sgd``, ``ngd`` or ``adam``.
    loss : str
        A name in :data:`separable.losses.LOSSES`.
    eta : float, optional
        Step size (default per method, see :mod:`separable.optim`).
    t_max : float
        Steps.
    per_decade : int
        Recording points per decade.
    momentum : float
        Coefficient of ``momentum``/``nesterov``.
    batch_size : int
        SGD batch.
    replace : bool
        SGD sampling with replacement.
    seed : int
        Seed of the SGD sampling.
    data_digest : str
        Filled in from the file for file data.
    """

    KIND: ClassVar[str] = "separable"
    LEGACY_KIND: ClassVar[str] = "SeparableRunConfig"  # runs stored before KIND still load

    data: str = "fig1"
    data_seed: int = 0
    n: int = 40
    d: int = 5
    bias: bool = False
    method: str = "gd"
    loss: str = "logistic"
    eta: float | None = None
    t_max: float = 1e5
    per_decade: int = 20
    momentum: float = 0.9
    batch_size: int = 4
    replace: bool = False
    seed: int = 0
    data_digest: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.data, str) or not self.data:
            raise ValueError(
                f"data must be a data-set name {DATA_SETS} or a file path, got {self.data!r}"
            )
        if self.data not in DATA_SETS:
            if not Path(self.data).is_file():
                raise ValueError(
                    f"data must be one of {DATA_SETS} or an existing .npz/.csv file, "
                    f"got {self.data!r}"
                )
            object.__setattr__(self, "data_digest", file_digest(self.data))
        if self.method not in (*METHODS, "nesterov"):
            raise ValueError(
                f"method must be one of {sorted(METHODS) + ['nesterov']}, got {self.method!r}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        for name in ("data_seed", "n", "d", "per_decade", "batch_size", "seed"):
            value = getattr(self, name)
            low = 0 if name in ("data_seed", "seed") else 1
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.eta is not None and not (math.isfinite(self.eta) and self.eta > 0):
            raise ValueError(f"eta must be a positive finite number or None, got {self.eta!r}")
        t = float(self.t_max)
        if not (math.isfinite(t) and 1 <= t < 2**62 and t == math.floor(t)):
            raise ValueError(
                f"t_max must be an integer-valued number in [1, 2**62), got {self.t_max!r}"
            )
        object.__setattr__(self, "t_max", t)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        for name in ("bias", "replace"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")


def load_data(config: SeparableRunConfig) -> Dataset:
    """The data set named by ``config``."""
    from separable.data import with_bias

    if config.data == "fig1":
        ds = fig1(config.data_seed)
    elif config.data == "fig3":
        ds = fig3(config.data_seed)
    elif config.data == "random":
        ds = random_separable(config.n, config.d, seed=config.data_seed)
    else:
        return load(config.data, bias=config.bias)
    if config.bias:
        return Dataset(with_bias(ds.X), ds.y, name=ds.name + " +bias")
    return ds


def _rule(config: SeparableRunConfig):
    if config.method in ("momentum", "nesterov"):
        return make_optimizer(config.method, eta=config.eta, beta=config.momentum)
    if config.method == "sgd":
        return make_optimizer(
            "sgd", eta=config.eta, batch_size=config.batch_size, replace=config.replace
        )
    if config.method == "adam":
        return make_optimizer("adam", eta=1e-3 if config.eta is None else config.eta)
    return make_optimizer(config.method, eta=config.eta)


def effective_eta(
    result: OptimResult, n_samples: int, *, momentum: float = 0.9, batch_size: int | None = None
) -> float | None:
    """The GD step the method mimics at long times (see the module docstring), or None."""
    if result.method == "gd" or result.method == "custom":
        return result.eta
    if result.method in ("momentum", "nesterov"):
        return result.eta / (1.0 - momentum)
    if result.method == "sgd":
        return result.eta * min(batch_size or n_samples, n_samples) / n_samples
    return None


def compare(result: OptimResult, prediction: Prediction | None) -> dict:
    """Final measures of ``result`` beside the predictions (a JSON-able dict)."""
    fin = result.final()
    L = math.log(fin["t"])
    out = {
        "t": fin["t"],
        "log_t": L,
        "measured": {
            k: fin[k] for k in ("norm", "loss", "angle_gap", "direction_gap", "margin_gap", "rho")
        },
    }
    out["measured"]["tL"] = fin["t"] * fin["loss"]
    out["measured"]["logt_direction_gap"] = L * fin["direction_gap"]
    out["measured"]["logt_margin_gap"] = L * fin["margin_gap"]
    if prediction is None or prediction.w_tilde is None:
        out["predicted"] = None
        return out
    asym = prediction.gaps_at(L)
    out["predicted"] = {
        "theorem": prediction.theorem,
        "eta": prediction.eta,
        "tL": prediction.tL_limit,
        "w_tilde": prediction.w_tilde.tolist(),
        "direction_gap": float(asym["direction_gap"][0]),
        "margin_gap": float(asym["margin_gap"][0]),
        "angle_gap": float(asym["angle_gap"][0]),
        "logt_direction_gap": prediction.direction_const,
        "logt_margin_gap": prediction.margin_const,
        "rate_support": prediction.rate_support,
        "rate_nonsupport": prediction.rate_nonsupport,
    }
    out["rho_error"] = float(np.max(np.abs(np.asarray(fin["rho"]) - prediction.w_tilde)))
    return out


def _compute(config: SeparableRunConfig) -> tuple[dict, dict]:
    ds = load_data(config)
    result = optimize(
        ds.X,
        ds.y,
        _rule(config),
        loss=config.loss,
        t_max=config.t_max,
        per_decade=config.per_decade,
        seed=config.seed,
    )
    eta_eff = effective_eta(result, ds.n, momentum=config.momentum, batch_size=config.batch_size)
    exp_tail = LOSSES[config.loss].tail == "exponential"
    prediction = predict(ds.X, ds.y, eta=eta_eff, svm=result.svm) if eta_eff and exp_tail else None
    records = result.trace.to_arrays()
    records.update(
        {"data.X": ds.X, "data.y": ds.y, "svm.w": result.svm.w, "svm.alpha": result.svm.alpha}
    )
    if prediction is not None and prediction.w_tilde is not None:
        records["prediction.w_tilde"] = prediction.w_tilde
    summary = {
        "data": ds.name,
        "n": ds.n,
        "d": ds.d,
        "method": result.method,
        "loss": result.loss,
        "eta": result.eta,
        "steps": result.steps,
        "status": result.status,
        "stopped_at": result.stopped_at,
        "svm": {
            "w": result.svm.w.tolist(),
            "margin": result.svm.margin,
            "support": result.svm.support.tolist(),
        },
        "comparison": compare(result, prediction),
        "prediction": None if prediction is None else prediction.as_dict(),
    }
    return records, summary


def run_optimizer(
    config: SeparableRunConfig,
    runs: str | os.PathLike = "runs",
    *,
    runtime: Runtime | None = None,
    force: bool = False,
) -> Run:
    """Run (or reuse) the optimiser run of ``config`` under ``runs``.

    Parameters
    ----------
    config : SeparableRunConfig
        The run (its hash names the folder).
    runs : path
        Parent folder of the run folders.
    runtime : diffusion.runtime.Runtime, optional
        Accepted for the one run protocol (:func:`diffusion.records.run`) and ignored: an
        optimiser run is one single-threaded loop (numpy, or a serial numba kernel) on this
        machine, so no field of the runtime (device, data root, jobs, threads, progress,
        checkpoints) applies to it.
        Never part of the run's identity.
    force : bool
        Recompute even when a finished run exists.

    Returns
    -------
    diffusion.records.Run
        Its ``summary`` holds ``comparison`` (measured vs predicted final gaps),
        ``prediction`` and ``svm``; ``run.trace()`` is the optimiser's trace.
    """
    if not isinstance(config, SeparableRunConfig):
        raise TypeError(f"config must be a SeparableRunConfig, got {type(config).__name__}")
    check_runtime(runtime)  # nothing of it applies to a single-threaded optimiser run
    return run_or_load(runs, config, _compute, force=force)


register_runner(SeparableRunConfig, run_optimizer)
