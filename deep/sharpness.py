"""How sharp is a minimum: the top of the Hessian spectrum, and Keskar's epsilon-sharpness.

Both measures look at the training loss ``f(w) = mean_i loss(model_w(x_i), y_i)`` over a
*stated* subset of the training data (``n`` samples), with the network in evaluation mode:
batch norm uses its running statistics and dropout is off, so ``f`` is a deterministic
function of the weights ``w`` alone (in training mode a sample's loss would depend on the
rest of its batch). The model passed in is never modified: the measures work on a copy in
the requested precision.

``top_hessian_eigenvalues``
    The ``k`` largest (algebraic) eigenvalues of the Hessian of ``f``. Each Hessian-vector
    product is a double backward pass, ``H v = grad(grad f . v)``, accumulated over chunks of
    the data; Lanczos (ARPACK through :func:`scipy.sparse.linalg.eigsh` on a
    :class:`scipy.sparse.linalg.LinearOperator`) finds the eigenvalues from those products
    alone, so the Hessian is never formed.
``epsilon_sharpness``
    Keskar et al. (ICLR 2017), metric 2.1: with a ``P x p`` matrix ``A`` (the identity, or
    ``p`` random orthonormal directions so that ``A^+ = A^T``) and the box
    ``C = {z : |z_i| <= epsilon (|(A^+ w)_i| + 1)}``,

    ``phi(w) = 100 (max_{z in C} f(w + A z) - f(w)) / (1 + f(w))``,

    the maximum found, as Keskar did, by L-BFGS-B (:func:`scipy.optimize.minimize`, exact
    gradients of ``f`` by backpropagation, ``maxiter`` iterations from ``z = 0``). L-BFGS-B
    finds a local maximum: ``phi`` is a lower bound of the true one.

``sharpness_of_run`` measures both on a finished training run (final weights from its
checkpoint, the same training data, a seeded subset of it).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.optimize
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn

from diffusion.records import kept_measurement
from diffusion.validation import check_choice, check_int, check_real

__all__ = [
    "LossFn",
    "HessianEigenResult",
    "EpsilonSharpnessResult",
    "SharpnessResult",
    "RunData",
    "top_hessian_eigenvalues",
    "epsilon_sharpness",
    "random_subspace",
    "load_run_data",
    "subset_indices",
    "sharpness_of_run",
    "add_parser",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(outputs, targets) -> scalar``: the *mean* loss of a batch."""

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class HessianEigenResult:
    """Result of :func:`top_hessian_eigenvalues`.

    Attributes
    ----------
    eigenvalues : numpy.ndarray
        The ``k`` largest eigenvalues of the Hessian, in decreasing order.
    eigenvectors : numpy.ndarray or None
        ``(n_params, k)`` unit eigenvectors (columns, same order) when asked for.
    loss : float
        ``f(w)``, the mean loss over the samples.
    n_samples : int
        Samples the loss averages over.
    n_params : int
        Dimension of the Hessian (trainable parameters).
    dtype : str
        Precision of the Hessian-vector products (``"float32"`` or ``"float64"``).
    n_hvp : int
        Hessian-vector products Lanczos used.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None
    loss: float
    n_samples: int
    n_params: int
    dtype: str
    n_hvp: int

    @classmethod
    def from_dict(cls, d: dict) -> HessianEigenResult:
        """The result of :meth:`as_dict` (without eigenvectors)."""
        return cls(
            np.asarray(d["eigenvalues"], dtype=float),
            None,
            float(d["loss"]),
            int(d["n_samples"]),
            int(d["n_params"]),
            str(d["dtype"]),
            int(d["n_hvp"]),
        )

    def as_dict(self) -> dict:
        """JSON-able view (without the eigenvectors)."""
        return {
            "eigenvalues": self.eigenvalues.tolist(),
            "loss": self.loss,
            "n_samples": self.n_samples,
            "n_params": self.n_params,
            "dtype": self.dtype,
            "n_hvp": self.n_hvp,
        }


@dataclass(frozen=True)
class EpsilonSharpnessResult:
    """Result of :func:`epsilon_sharpness`.

    Attributes
    ----------
    sharpness : float
        Keskar's ``phi = 100 (max_loss - loss) / (1 + loss)`` (percent).
    loss : float
        ``f(w)``.
    max_loss : float
        The largest ``f(w + A z)`` found in the box.
    epsilon : float
        Relative radius of the box.
    subspace_dim : int or None
        ``p`` (``None``: the full space, ``A`` the identity).
    n_samples, n_params : int
        Samples of the loss; dimension of the weights.
    n_evaluations : int
        Loss-and-gradient evaluations L-BFGS-B made.
    dtype : str
        Precision of the evaluations.
    """

    sharpness: float
    loss: float
    max_loss: float
    epsilon: float
    subspace_dim: int | None
    n_samples: int
    n_params: int
    n_evaluations: int
    dtype: str

    def as_dict(self) -> dict:
        """JSON-able view."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> EpsilonSharpnessResult:
        """The result of :meth:`as_dict`."""
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class SharpnessResult:
    """Result of :func:`sharpness_of_run`: both measures on one finished run.

    Attributes
    ----------
    run : str
        The run folder.
    hessian : HessianEigenResult
        Top Hessian eigenvalues at the final weights.
    epsilon : EpsilonSharpnessResult or None
        Keskar's sharpness (``None`` when not asked for).
    n_samples : int
        Training samples both measures average over.
    seed : int
        Seed of the subset.
    config : dict
        The run's configuration (as in its ``config.json``).
    """

    run: str
    hessian: HessianEigenResult
    epsilon: EpsilonSharpnessResult | None
    n_samples: int
    seed: int
    config: dict = field(repr=False)

    @property
    def top_eigenvalue(self) -> float:
        """The largest Hessian eigenvalue."""
        return float(self.hessian.eigenvalues[0])

    def as_dict(self) -> dict:
        """JSON-able view."""
        return {
            "run": self.run,
            "top_eigenvalue": self.top_eigenvalue,
            "hessian": self.hessian.as_dict(),
            "epsilon": self.epsilon.as_dict() if self.epsilon else None,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "batch_size": self.config.get("batch_size"),
        }


# ----------------------------------------------------------------------------- checks


def _check_dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, str):
        return _DTYPES[check_choice("dtype", dtype, list(_DTYPES))]
    if dtype not in _DTYPES.values():
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def _check_data(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"data must be a pair (inputs, targets) of tensors, got {type(data)}")
    x, y = data
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError("data must be a pair (inputs, targets) of tensors")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"data must hold as many inputs as targets, at least one: got {len(x)} and {len(y)}"
        )
    return x, y


# ----------------------------------------------------------------------------- the loss
class _Objective:
    """``f(w)`` of a model copy in evaluation mode, its gradient and Hessian-vector products.

    Weights are flat float64 numpy vectors at the boundary (what scipy works with); inside,
    everything is in ``dtype``. The loss over the samples is the weighted sum of the chunk
    means, so chunking changes nothing but memory.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: tuple[torch.Tensor, torch.Tensor],
        dtype: torch.dtype,
        batch_size: int,
    ) -> None:
        x, y = _check_data(data)
        self.model = copy.deepcopy(model).to(dtype).eval()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model has no trainable parameters")
        self.loss_fn = loss_fn
        self.dtype = dtype
        n = len(y)
        self.chunks = [
            (
                x[i : i + batch_size].to(dtype) if x.is_floating_point() else x[i : i + batch_size],
                y[i : i + batch_size],
                min(batch_size, n - i) / n,
            )
            for i in range(0, n, batch_size)
        ]
        self.n_samples = n
        self.n_params = sum(p.numel() for p in self.params)
        self.evaluations = 0

    # flat vectors <-> parameter tensors
    def get(self) -> np.ndarray:
        return torch.cat([p.detach().reshape(-1) for p in self.params]).double().numpy()

    def set(self, w: np.ndarray) -> None:
        flat = torch.from_numpy(np.asarray(w, dtype=np.float64)).to(self.dtype)
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(flat, self.params)

    def _split(self, v: np.ndarray) -> list[torch.Tensor]:
        flat = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)).to(self.dtype)
        return [
            t.view_as(p)
            for t, p in zip(flat.split([p.numel() for p in self.params]), self.params, strict=True)
        ]

    def _grads(self, loss: torch.Tensor, create_graph: bool = False) -> list[torch.Tensor]:
        grads = torch.autograd.grad(loss, self.params, create_graph=create_graph, allow_unused=True)
        return [
            torch.zeros_like(p) if g is None else g for g, p in zip(grads, self.params, strict=True)
        ]

    def _chunk_loss(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.model(xb), yb)

    def loss(self) -> float:
        with torch.no_grad():
            return float(sum(w * self._chunk_loss(xb, yb).double() for xb, yb, w in self.chunks))

    def loss_and_grad(self) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        total = 0.0
        grad = torch.zeros(self.n_params, dtype=torch.float64)
        for xb, yb, w in self.chunks:
            loss = self._chunk_loss(xb, yb) * w
            total += float(loss.detach())
            grad += torch.cat([g.reshape(-1) for g in self._grads(loss)]).double()
        return total, grad.numpy()

    def hvp(self, v: np.ndarray) -> np.ndarray:
        vs = self._split(np.asarray(v).reshape(-1))
        out = torch.zeros(self.n_params, dtype=torch.float64)
        for xb, yb, w in self.chunks:
            grads = self._grads(self._chunk_loss(xb, yb) * w, create_graph=True)
            dot = sum((g * u).sum() for g, u in zip(grads, vs, strict=True))
            out += torch.cat([h.reshape(-1) for h in self._grads(dot)]).double()
        return out.numpy()


# ----------------------------------------------------------------------------- Hessian
def top_hessian_eigenvalues(
    model: nn.Module,
    loss_fn: LossFn,
    data: tuple[torch.Tensor, torch.Tensor],
    k: int = 1,
    *,
    dtype: torch.dtype | str = torch.float64,
    batch_size: int = 512,
    tol: float = 0.0,
    seed: int = 0,
    return_eigenvectors: bool = False,
) -> HessianEigenResult:
    """The ``k`` largest eigenvalues of the Hessian of the mean loss over ``data``.

    Parameters
    ----------
    model : torch.nn.Module
        The network; it is copied, cast to ``dtype`` and put in evaluation mode (batch norm
        on running statistics, no dropout). ``model`` itself is not changed.
    loss_fn : callable
        ``loss_fn(outputs, targets)`` -> mean loss of a batch (e.g. ``F.cross_entropy``).
    data : (torch.Tensor, torch.Tensor)
        Inputs and targets: the stated subset of samples ``f`` averages over.
    k : int
        Number of eigenvalues (``1 <= k < n_params``).
    dtype : torch.float32 or torch.float64 (or their names)
        Precision of the Hessian-vector products.
    batch_size : int
        Samples per chunk of the double backward pass (memory only; the result is the same).
    tol : float
        Relative accuracy asked of ARPACK (0: machine precision).
    seed : int
        Seeds the Lanczos start vector, so the result is reproducible.
    return_eigenvectors : bool
        Also return the eigenvectors (``n_params x k`` floats).

    Returns
    -------
    HessianEigenResult

    Notes
    -----
    ``which="LA"``: the largest *algebraic* eigenvalues. Away from a minimum the Hessian
    has negative eigenvalues; the largest in magnitude may be one of them, and it is not
    the curvature that sharpness is about.
    """
    k = check_int("k", k, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    tol = check_real("tol", tol, 0.0, 1.0, high_open=True)
    obj = _Objective(model, loss_fn, data, _check_dtype(dtype), batch_size)
    if k >= obj.n_params:
        raise ValueError(f"k must be smaller than the number of parameters {obj.n_params}, got {k}")
    count = [0]

    def matvec(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        return obj.hvp(v)

    op = LinearOperator((obj.n_params, obj.n_params), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(obj.n_params)
    values, vectors = eigsh(op, k=k, which="LA", v0=v0, tol=tol)
    order = np.argsort(values)[::-1]
    return HessianEigenResult(
        eigenvalues=values[order],
        eigenvectors=vectors[:, order] if return_eigenvectors else None,
        loss=obj.loss(),
        n_samples=obj.n_samples,
        n_params=obj.n_params,
        dtype=str(obj.dtype).removeprefix("torch."),
        n_hvp=count[0],
    )


# ----------------------------------------------------------------------------- Keskar
def random_subspace(n_params: int, dim: int, seed: int = 0) -> np.ndarray:
    """``n_params x dim`` matrix with orthonormal columns spanning a random subspace.

    The Q factor of a standard Gaussian matrix (seeded), so the subspace is uniformly
    distributed and ``A^+ = A^T``.
    """
    n_params = check_int("n_params", n_params, 1)
    dim = check_int("subspace_dim", dim, 1)
    if dim > n_params:
        raise ValueError(f"subspace_dim must be at most n_params={n_params}, got {dim}")
    gauss = np.random.default_rng(seed).standard_normal((n_params, dim))
    q, r = np.linalg.qr(gauss)
    return q * np.sign(np.diag(r))  # the unique Q with a positive-diagonal R


def epsilon_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    epsilon: float = 1e-3,
    subspace_dim: int | None = None,
    seed: int = 0,
    maxiter: int = 10,
    dtype: torch.dtype | str = torch.float64,
    batch_size: int = 512,
) -> EpsilonSharpnessResult:
    """Keskar et al.'s epsilon-sharpness of ``model`` on ``data`` (see the module docstring).

    Parameters
    ----------
    model, loss_fn, data, dtype, batch_size
        As in :func:`top_hessian_eigenvalues` (evaluation mode, ``model`` unchanged).
    epsilon : float
        Relative radius of the box (Keskar used 1e-3 and 5e-4).
    subspace_dim : int, optional
        ``p``: maximise in a random ``p``-dimensional subspace (:func:`random_subspace` with
        ``seed``); ``None`` maximises in the full weight space. The random matrix holds
        ``n_params * p`` floats.
    seed : int
        Seed of the subspace.
    maxiter : int
        L-BFGS-B iterations (Keskar: 10).

    Returns
    -------
    EpsilonSharpnessResult
    """
    epsilon = check_real("epsilon", epsilon, 0.0, low_open=True)
    maxiter = check_int("maxiter", maxiter, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    obj = _Objective(model, loss_fn, data, _check_dtype(dtype), batch_size)
    w0 = obj.get()
    loss0 = obj.loss()
    if subspace_dim is None:
        basis = None
        radius = epsilon * (np.abs(w0) + 1.0)
    else:
        basis = random_subspace(obj.n_params, subspace_dim, seed)
        radius = epsilon * (np.abs(basis.T @ w0) + 1.0)

    def negative(z: np.ndarray) -> tuple[float, np.ndarray]:
        obj.set(w0 + (z if basis is None else basis @ z))
        value, grad = obj.loss_and_grad()
        return -value, -(grad if basis is None else basis.T @ grad)

    result = scipy.optimize.minimize(
        negative,
        np.zeros_like(radius),
        jac=True,
        method="L-BFGS-B",
        bounds=scipy.optimize.Bounds(-radius, radius),
        options={"maxiter": maxiter},
    )
    max_loss = max(-float(result.fun), loss0)  # z = 0 is in the box
    return EpsilonSharpnessResult(
        sharpness=100.0 * (max_loss - loss0) / (1.0 + loss0),
        loss=loss0,
        max_loss=max_loss,
        epsilon=epsilon,
        subspace_dim=None if basis is None else int(basis.shape[1]),
        n_samples=obj.n_samples,
        n_params=obj.n_params,
        n_evaluations=obj.evaluations,
        dtype=str(obj.dtype).removeprefix("torch."),
    )


# ----------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class RunData:
    """A finished training run rebuilt for a measurement.

    Attributes
    ----------
    model : torch.nn.Module
        The network with the requested weights, in evaluation mode.
    x, y : torch.Tensor
        The chosen training samples (inputs as the network sees them in evaluation).
    indices : numpy.ndarray
        Their indices in the run's training split.
    config, summary : dict
        The run's ``config.json`` and ``summary.json``.
    path : pathlib.Path
        The run folder.
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    indices: np.ndarray
    config: dict
    summary: dict
    path: Path


def subset_indices(n_train: int, n_samples: int | None, seed: int) -> np.ndarray:
    """Sorted indices of ``n_samples`` training samples drawn without replacement (seeded).

    ``None`` (or at least ``n_train``) takes the whole training split.
    """
    if n_samples is None or n_samples >= n_train:
        return np.arange(n_train)
    check_int("n_samples", n_samples, 1)
    return np.sort(np.random.default_rng(seed).choice(n_train, size=n_samples, replace=False))


def load_run_data(
    run_dir: str | os.PathLike,
    *,
    n_samples: int | None = 1024,
    seed: int = 0,
    at: str = "final",
    data_root: str | None = None,
) -> RunData:
    """Rebuild the network and the training samples of a finished run of ``deep.train``.

    Parameters
    ----------
    run_dir : path
        The run folder (``config.json``, ``records.npz``, ``summary.json``, checkpoint).
    n_samples : int or None
        Training samples to take (a seeded subset; ``None``: all).
    seed : int
        Seed of the subset.
    at : {"final", "initial"}
        Weights to load. ``"initial"`` puts the run's initial weights ``w_0`` in the trained
        network and recomputes its batch-norm statistics on the chosen samples
        (:func:`recalibrate_batch_norm`, in chunks of 512 whatever the run's batch size, so
        that runs sharing ``w_0`` share the network; the running statistics at ``w_0`` are
        the untrained defaults, which would make evaluation mode a different function from
        the one training saw).
    data_root : str, optional
        Folder of user data files (for runs on ``mnist``, ``cifar10``, ... files).

    Returns
    -------
    RunData
    """
    from deep.data import center_crop, load_dataset
    from deep.train import load_checkpoint, load_model
    from diffusion.records import load_run

    check_choice("at", at, ("final", "initial"))
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"run folder {str(path)!r} does not exist")
    run = load_run(path)
    if "model" not in run.config or "data" not in run.config:
        raise ValueError(f"{str(path)!r} is not a training run (its config has no model/data)")
    cfg = run.config
    model = load_model(run, data_root=data_root)
    if cfg["data"] == "random":
        data = load_dataset(
            "random",
            seed=cfg["seed"],
            input_shape=model.input_shape,
            num_classes=model.num_classes,
        )
    else:
        data = load_dataset(cfg["data"], data_root, cfg["seed"])
    idx = subset_indices(len(data.train), n_samples, seed)
    shape = tuple(data.input_shape)
    x = center_crop(data.train.x[torch.from_numpy(idx)], shape[1:] if len(shape) == 3 else None)
    y = data.train.y[torch.from_numpy(idx)]
    if at == "initial":
        initial = load_checkpoint(path)["initial"]
        params = list(model.parameters())
        with torch.no_grad():
            for p, p0 in zip(params, initial, strict=True):
                p.copy_(p0)
        recalibrate_batch_norm(model, x)
    return RunData(model.eval(), x, y, idx, dict(cfg), dict(run.summary), path)


def recalibrate_batch_norm(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> None:
    """Set every batch-norm layer's running statistics to their average over ``x``.

    The statistics are reset and accumulated with a cumulative average (``momentum=None``)
    over forward passes of chunks of ``batch_size`` samples in training mode, without
    gradients: the running mean is the samples' mean, the running variance the mean of the
    chunks' (unbiased) variances -- what batch norm sees in batches of that size. The model
    ends in evaluation mode; nothing else in it changes.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size])
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def sharpness_of_run(
    run_dir: str | os.PathLike,
    *,
    n_samples: int | None = 1024,
    k: int = 1,
    epsilon: float | None = 1e-3,
    subspace_dim: int | None = None,
    maxiter: int = 10,
    dtype: torch.dtype | str = torch.float32,
    tol: float = 1e-4,
    seed: int = 0,
    data_root: str | None = None,
) -> SharpnessResult:
    """Sharpness of the final weights of a finished training run.

    The measurement is kept beside the run's records (``sharpness-<hash>.json``, named by the
    run's identity and these settings) and read back instead of measured again; a file that
    cannot be read is measured anew and replaced.

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`deep.train.train`.
    n_samples : int or None
        Training samples the loss averages over: a subset drawn with ``seed`` (the same
        subset for every run of the same training split); ``None`` takes them all.
    k : int
        Top Hessian eigenvalues to compute.
    epsilon : float or None
        Box radius of Keskar's sharpness; ``None`` skips it.
    subspace_dim : int, optional
        Random subspace dimension of Keskar's sharpness (``None``: full space).
    maxiter : int
        L-BFGS-B iterations.
    dtype : torch.float32 or torch.float64
        Precision of both measures.
    tol : float
        Relative tolerance of Lanczos.
    seed : int
        Seed of the subset, of the Lanczos start and of the subspace.
    data_root : str, optional
        Folder of user data files (for runs on user-supplied datasets).

    Returns
    -------
    SharpnessResult
    """
    settings = {
        "n_samples": n_samples,
        "k": k,
        "epsilon": epsilon,
        "subspace_dim": subspace_dim,
        "maxiter": maxiter,
        "dtype": str(dtype),
        "tol": tol,
        "seed": seed,
    }
    return kept_measurement(
        run_dir,
        "sharpness",
        settings,
        lambda: _measure(
            run_dir, n_samples, k, epsilon, subspace_dim, maxiter, dtype, tol, seed, data_root
        ),  # fmt: skip
        _from_kept,
    )


def _from_kept(doc: dict | None) -> SharpnessResult | None:
    """The kept measurement as a result, or ``None`` when there is none or it is malformed."""
    if doc is None:
        return None
    try:
        r = doc["result"]
        eps = EpsilonSharpnessResult.from_dict(r["epsilon"]) if r["epsilon"] else None
        hessian = HessianEigenResult.from_dict(r["hessian"])
        return SharpnessResult(
            str(r["run"]), hessian, eps, int(r["n_samples"]), int(r["seed"]), dict(doc["config"])
        )
    except (KeyError, TypeError, ValueError):
        return None


def _measure(run_dir, n_samples, k, epsilon, subspace_dim, maxiter, dtype, tol, seed, data_root):
    """Both measures on a finished run (no cache)."""
    run = load_run_data(run_dir, n_samples=n_samples, seed=seed, data_root=data_root)
    data = (run.x, run.y)
    hessian = top_hessian_eigenvalues(
        run.model, F.cross_entropy, data, k, dtype=dtype, tol=tol, seed=seed
    )
    eps = None
    if epsilon is not None:
        eps = epsilon_sharpness(
            run.model,
            F.cross_entropy,
            data,
            epsilon=epsilon,
            subspace_dim=subspace_dim,
            seed=seed,
            maxiter=maxiter,
            dtype=dtype,
        )
    return SharpnessResult(str(run.path), hessian, eps, len(run.y), seed, run.config)


# ----------------------------------------------------------------------------- CLI
def finished_runs(runs: str | os.PathLike, names: list[str] | None = None) -> list[Path]:
    """Finished training-run folders: ``names`` under ``runs`` (or paths), or all of them.

    A training run has a ``summary.json`` and a checkpoint; with no ``names`` every such
    folder directly under ``runs`` is returned, sorted.
    """
    from deep.train import CHECKPOINT_FILE

    root = Path(runs)
    if names:
        out = []
        for name in names:
            path = Path(name) if Path(name).is_dir() else root / name
            if not (path / "summary.json").is_file() or not (path / CHECKPOINT_FILE).is_file():
                raise FileNotFoundError(
                    f"run {name!r} is not a finished training run under {str(root)!r}"
                )
            out.append(path)
        return out
    if not root.is_dir():
        raise FileNotFoundError(f"--runs folder {str(root)!r} does not exist")
    found = sorted(
        p.parent for p in root.glob(f"*/{CHECKPOINT_FILE}") if (p.parent / "summary.json").is_file()
    )
    if not found:
        raise FileNotFoundError(f"no finished training runs under {str(root)!r}")
    return found


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments shared by ``sharpness`` and ``noise``: which runs, which samples, output."""
    p.add_argument("run", nargs="*", help="run folders (names under --runs, or paths); all if none")
    p.add_argument("--runs", default="runs", help="folder of run folders (default: runs)")
    p.add_argument("--samples", type=int, default=1024, help="training samples (seeded subset)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset")
    p.add_argument(
        "--dtype",
        choices=tuple(_DTYPES),
        default="float32",
        help="precision of the measurement (float64 for closed-form checks; default: float32)",
    )
    p.add_argument("--data-root", default=None, help="folder of user data files")
    p.add_argument("--out", default=None, help="also write the JSON result to this file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``python -m deep sharpness``."""
    p = subparsers.add_parser(
        "sharpness",
        help="top Hessian eigenvalues and Keskar's epsilon-sharpness of finished runs",
        description=__doc__.split("\n\n")[0],
    )
    add_run_arguments(p)
    p.add_argument("--k", type=int, default=1, help="top Hessian eigenvalues")
    p.add_argument("--epsilon", type=float, default=1e-3, help="Keskar's box radius (0: skip)")
    p.add_argument(
        "--subspace-dim", type=int, default=None, help="random subspace for Keskar (default: full)"
    )
    p.add_argument("--maxiter", type=int, default=10, help="L-BFGS-B iterations")
    p.set_defaults(func=_main)
    return p


def emit(args: argparse.Namespace, payload: Any, lines: list[str]) -> None:
    """Print the JSON or the table, and write ``--out`` atomically."""
    import json

    from diffusion.records import atomic_write_json

    if args.out:
        atomic_write_json(args.out, payload)
    print(json.dumps(payload, indent=1) if args.json else "\n".join(lines))


def _main(args: argparse.Namespace) -> int:
    if args.epsilon < 0:
        raise ValueError(f"--epsilon must be >= 0, got {args.epsilon}")
    results = [
        sharpness_of_run(
            path,
            n_samples=args.samples,
            k=args.k,
            epsilon=args.epsilon or None,
            subspace_dim=args.subspace_dim,
            maxiter=args.maxiter,
            dtype=args.dtype,
            seed=args.seed,
            data_root=args.data_root,
        )
        for path in finished_runs(args.runs, args.run)
    ]
    lines = [f"{'run':<28} {'B':>6} {'top eigenvalue':>15} {'eps-sharpness %':>16} {'loss':>9}"]
    for r in results:
        eps = f"{r.epsilon.sharpness:16.4g}" if r.epsilon else f"{'--':>16}"
        lines.append(
            f"{Path(r.run).name:<28} {r.config.get('batch_size', 0):>6} "
            f"{r.top_eigenvalue:15.5g} {eps} {r.hessian.loss:9.4f}"
        )
    emit(args, [r.as_dict() for r in results], lines)
    return 0
