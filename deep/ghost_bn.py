"""Ghost batch normalisation (Hoffer et al. 2017, Algorithm 1) as drop-in layers.

In training mode a batch of ``N`` samples is cut into consecutive *ghost batches* of
``ghost_size`` samples, and each is normalised with its own mean and variance; the affine
weight and bias are shared. In evaluation mode the layer is plain batch norm with the running
statistics, whatever the batch size (the batch is never split at evaluation).

Policies
--------
Remainder
    When ``N`` is not a multiple of ``ghost_size`` the remainder ``N mod ghost_size`` is merged
    into the last ghost batch, so every ghost batch holds between ``ghost_size`` and
    ``2 ghost_size - 1`` samples (no tiny ghost batch with a meaningless variance). When
    ``ghost_size >= N`` the layer is exactly :class:`torch.nn.BatchNorm1d`/``2d``.
Running statistics
    Updated once per training step (not once per ghost batch) with the usual exponential
    average, ``r <- (1 - m) r + m s``, where ``s`` is the size-weighted mean over the ghost
    batches of their means (for ``running_mean``) and of their unbiased variances (for
    ``running_var``). With one ghost batch this is nn.BatchNorm's own update; with equal
    ghost batches the mean is the batch mean and the variance is the average within-ghost
    variance, i.e. the variance the layer actually normalised with.
Distributed training
    Each replica's layer sees only its local batch, so under DDP the ghost size is per replica.

Strategies
----------
``"loop"`` runs the fused batch-norm kernel once per ghost batch (each call writes the ghost
batch's statistics into a scratch row, never touching the running buffers). On CPU this costs
about as much as one plain batch norm, while reshaping to ``(k, g, C, ...)`` and reducing
with generic tensor ops costs several times more. On a GPU the loop launches ``k`` small
kernels per layer, which the reshape (``"vectorized"``) removes. ``"auto"`` picks ``"loop"``
on CPU and ``"vectorized"`` on CUDA; :func:`measure_strategies` times both on the machine at
hand (pass the faster one as ``strategy``), and ``benchmarks/bench_deep.py`` compares them
with plain batch norm and the authors' per-chunk scheme.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = [
    "measure_strategies",
    "GhostBatchNorm1d",
    "GhostBatchNorm2d",
    "convert_to_ghost",
    "STRATEGIES",
    "ghost_sizes",
]

STRATEGIES = ("auto", "loop", "vectorized")


def _check_ghost_size(ghost_size: object) -> int:
    if isinstance(ghost_size, bool) or not isinstance(ghost_size, int) or ghost_size < 2:
        raise ValueError(f"ghost_size must be an integer >= 2, got {ghost_size!r}")
    return ghost_size


def _check_strategy(strategy: object) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    return str(strategy)


def ghost_sizes(batch: int, ghost_size: int) -> list[int]:
    """Sizes of the ghost batches a batch of ``batch`` samples is cut into (remainder merged last).

    Examples
    --------
    >>> ghost_sizes(10, 4)
    [4, 6]
    >>> ghost_sizes(3, 8)
    [3]
    """
    k = max(batch // ghost_size, 1)
    sizes = [ghost_size] * (k - 1)
    sizes.append(batch - ghost_size * (k - 1))
    return sizes


class _GhostBatchNorm(_BatchNorm):
    """Shared implementation; the subclasses only fix the accepted input dimensions."""

    def __init__(
        self,
        num_features: int,
        ghost_size: int = 128,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        strategy: str = "auto",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.ghost_size = _check_ghost_size(ghost_size)
        self.strategy = _check_strategy(strategy)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ghost_size={self.ghost_size}, strategy={self.strategy}"

    def _resolved_strategy(self, x: torch.Tensor) -> str:
        if self.strategy != "auto":
            return self.strategy
        return "vectorized" if x.is_cuda else "loop"

    def _average_factor(self) -> float:
        """The exponential-average factor; advances ``num_batches_tracked`` as nn.BatchNorm."""
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        n = x.shape[0]
        if not self.training or n <= self.ghost_size:
            return super().forward(x)
        sizes = ghost_sizes(n, self.ghost_size)
        if self._resolved_strategy(x) == "loop":
            y, means, variances = self._forward_loop(x, sizes)
        else:
            y, means, variances = self._forward_vectorized(x, sizes)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                weights = torch.tensor(sizes, dtype=means.dtype, device=means.device) / n
                factor = self._average_factor()
                self.running_mean.mul_(1 - factor).add_(factor * (weights @ means))
                self.running_var.mul_(1 - factor).add_(factor * (weights @ variances))
        return y

    def _forward_loop(self, x: torch.Tensor, sizes: list[int]):
        c = self.num_features
        stats_dtype = self.running_mean.dtype if self.running_mean is not None else x.dtype
        means = torch.zeros(len(sizes), c, dtype=stats_dtype, device=x.device)
        variances = torch.ones(len(sizes), c, dtype=stats_dtype, device=x.device)
        outs = []
        # momentum 1.0 makes the kernel write the ghost batch's mean and unbiased variance
        # into its scratch row; the layer's running buffers are left alone
        for j, chunk in enumerate(torch.split(x, sizes)):
            outs.append(
                F.batch_norm(
                    chunk, means[j], variances[j], self.weight, self.bias, True, 1.0, self.eps
                )
            )
        return torch.cat(outs), means, variances

    def _forward_vectorized(self, x: torch.Tensor, sizes: list[int]):
        g, c = self.ghost_size, self.num_features
        k = len(sizes) if sizes[-1] == g else len(sizes) - 1  # ghost batches of exactly g
        if k == 0:
            return self._forward_loop(x, sizes)
        spatial = x[0].numel() // c
        head, tail = x[: k * g], x[k * g :]
        grouped = head.reshape(k, g, c, spatial)
        var, mean = torch.var_mean(grouped, dim=(1, 3), correction=0, keepdim=True)
        y = (grouped - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight.view(1, 1, c, 1) + self.bias.view(1, 1, c, 1)
        y = y.reshape(head.shape)
        count = g * spatial
        dtype = self._stats_dtype(x)
        means = mean.detach().reshape(k, c).to(dtype)
        variances = (var.detach().reshape(k, c) * (count / max(count - 1, 1))).to(dtype)
        if tail.shape[0]:
            y_tail, m_tail, v_tail = self._forward_loop(tail, [tail.shape[0]])
            y = torch.cat([y, y_tail])
            means = torch.cat([means, m_tail])
            variances = torch.cat([variances, v_tail])
        return y, means, variances

    def _stats_dtype(self, x: torch.Tensor) -> torch.dtype:
        return self.running_mean.dtype if self.running_mean is not None else x.dtype


class GhostBatchNorm1d(_GhostBatchNorm):
    """Ghost batch norm over ``(N, C)`` or ``(N, C, L)``; drop-in for :class:`nn.BatchNorm1d`.

    Parameters
    ----------
    num_features : int
        Number of channels ``C``.
    ghost_size : int
        Samples per ghost batch (per replica under DDP), at least 2.
    eps, momentum, affine, track_running_stats
        As in :class:`torch.nn.BatchNorm1d`; the state-dict keys are the same.
    strategy : {"auto", "loop", "vectorized"}
        How ghost batches are normalised in training (see the module docstring).
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(
                f"GhostBatchNorm1d expects a 2D or 3D input, got shape {tuple(x.shape)}"
            )


class GhostBatchNorm2d(_GhostBatchNorm):
    """Ghost batch norm over ``(N, C, H, W)`` inputs; drop-in for :class:`nn.BatchNorm2d`.

    Parameters are those of :class:`GhostBatchNorm1d`.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"GhostBatchNorm2d expects a 4D input, got shape {tuple(x.shape)}")


def convert_to_ghost(module: nn.Module, ghost_size: int, strategy: str = "auto") -> nn.Module:
    """Replace every ``nn.BatchNorm1d``/``2d`` in ``module`` by its ghost version, state kept.

    Parameters
    ----------
    module : torch.nn.Module
        The model; converted in place (like ``nn.SyncBatchNorm.convert_sync_batchnorm``).
    ghost_size : int
        Samples per ghost batch (per replica under DDP).
    strategy : {"auto", "loop", "vectorized"}
        Passed to the ghost layers.

    Returns
    -------
    torch.nn.Module
        ``module`` itself, or the new layer when ``module`` is a batch-norm layer.
    """
    _check_ghost_size(ghost_size)
    _check_strategy(strategy)
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    kinds = {nn.BatchNorm1d: GhostBatchNorm1d, nn.BatchNorm2d: GhostBatchNorm2d}
    kind = kinds.get(type(module))
    if kind is not None:
        ref = module.weight if module.affine else module.running_mean
        ghost = kind(
            module.num_features,
            ghost_size,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            strategy,
            device=None if ref is None else ref.device,
            dtype=None if ref is None else ref.dtype,
        )
        ghost.load_state_dict(module.state_dict())
        ghost.train(module.training)
        return ghost
    if isinstance(module, _GhostBatchNorm):
        module.ghost_size = ghost_size
        module.strategy = strategy
        return module
    for name, child in module.named_children():
        new = convert_to_ghost(child, ghost_size, strategy)
        if new is not child:
            setattr(module, name, new)
    return module


def measure_strategies(
    shape: tuple[int, ...],
    ghost_size: int,
    device: str | torch.device = "cpu",
    repeats: int = 3,
) -> dict[str, float]:
    """Median seconds of one forward + backward of each strategy on a random activation.

    ``"auto"`` is a fixed rule (loop on CPU, reshape on CUDA); this measures the two on the
    machine at hand, e.g. ``min(times, key=times.get)`` for ``convert_to_ghost``'s strategy.

    Parameters
    ----------
    shape : tuple of int
        Activation shape, ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.
    ghost_size : int
        Ghost batch size.
    device : str or torch.device
        Where to measure.
    repeats : int
        Timed repeats after one warm-up.

    Returns
    -------
    dict
        ``{"loop": seconds, "vectorized": seconds}``.
    """
    _check_ghost_size(ghost_size)
    if len(shape) not in (2, 3, 4) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"shape must be 2 to 4 positive integers, got {shape!r}")
    device = torch.device(device)
    cls = GhostBatchNorm2d if len(shape) == 4 else GhostBatchNorm1d
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(device).requires_grad_(True)
    dy = torch.randn(shape, generator=gen).to(device)
    times = {}
    for strategy in ("loop", "vectorized"):
        layer = cls(shape[1], ghost_size, strategy=strategy).to(device)
        samples = []
        for _ in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            layer(x).backward(dy)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            samples.append(time.perf_counter() - start)
        times[strategy] = sorted(samples[1:])[len(samples[1:]) // 2]
    return times
