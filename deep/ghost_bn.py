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
Running statistics (``running_stats``)
    ``"mean"`` (the default): updated once per training step with the usual exponential
    average, ``r <- (1 - m) r + m s``, where ``s`` is the size-weighted mean over the ghost
    batches of their means (for ``running_mean``) and of their unbiased variances (for
    ``running_var``). With one ghost batch this is nn.BatchNorm's own update; with equal
    ghost batches the mean is the batch mean and the variance is the average within-ghost
    variance, i.e. the variance the layer actually normalised with. ``num_batches_tracked``
    counts steps.
    ``"sequential"``: the paper's Algorithm 1 and the authors' code (a stock BatchNorm run on
    each chunk): one update ``r <- (1 - m) r + m s_j`` per ghost batch ``j``, in order, and
    ``num_batches_tracked`` counts ghost batches. With momentum ``m`` and ``k`` ghost batches
    per step the oldest statistics fade as ``(1 - m)^k`` per step instead of ``1 - m``; the
    buffers end up dominated by the last ghost batches of the last step.
Distributed training
    Each replica's layer sees only its local batch, so under DDP the ghost size is per replica.

Strategies
----------
``"loop"`` runs the native batch-norm kernel once per ghost batch inside one autograd
function: each call writes its slice of a preallocated output (forward) and of the input
gradient (backward), and the ghost batch's mean and unbiased variance into a scratch row
(never the running buffers). Compared with ``F.batch_norm`` per chunk and ``torch.cat`` it
saves the concatenation copy, one autograd node per chunk and the split of the gradient.
``"fused"`` (2-D float CPU activations, the fully connected layers) does the same work in
two compiled kernels (:mod:`deep._ghost_kernels`): no per-ghost call overhead, each ghost
batch read from memory once per direction while it sits in cache, the ghost batches shared
among torch's own OpenMP threads (the result is the same, bit for bit, on any number of
threads). It is about as fast as one plain batch norm over the whole batch, on one thread or
two (``benchmarks/bench_deep.py``). Inputs it does not cover take the loop. On a GPU the loop
launches ``k`` small kernels per layer, which the reshape (``"vectorized"``:
``(k, g, C, ...)`` reduced with tensor ops) removes. ``"auto"`` picks ``"fused"`` for 2-D CPU
inputs, ``"loop"`` for other CPU inputs and ``"vectorized"`` on CUDA;
:func:`measure_strategies` times them on the machine at hand.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._ghost_kernels import ghost_backward, ghost_forward

__all__ = [
    "measure_strategies",
    "GhostBatchNorm1d",
    "GhostBatchNorm2d",
    "convert_to_ghost",
    "STRATEGIES",
    "RUNNING_STATS",
    "ghost_sizes",
]

STRATEGIES = ("auto", "loop", "vectorized", "fused")
RUNNING_STATS = ("mean", "sequential")


def _check_ghost_size(ghost_size: object) -> int:
    if isinstance(ghost_size, bool) or not isinstance(ghost_size, int) or ghost_size < 2:
        raise ValueError(f"ghost_size must be an integer >= 2, got {ghost_size!r}")
    return ghost_size


def _check_strategy(strategy: object) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    return str(strategy)


def _check_running_stats(rule: object) -> str:
    if rule not in RUNNING_STATS:
        raise ValueError(f"running_stats must be one of {RUNNING_STATS}, got {rule!r}")
    return str(rule)


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


@functools.lru_cache(maxsize=64)
def _ghost_starts(batch: int, ghost_size: int) -> np.ndarray:
    """Row where each ghost batch starts, then ``batch`` (int64; made once per shape)."""
    return np.concatenate([[0], np.cumsum(ghost_sizes(batch, ghost_size))]).astype(np.int64)


@functools.lru_cache(maxsize=64)
def _size_weights(
    sizes: tuple[int, ...], factor: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``factor * n_j / N`` per ghost batch (the "mean" rule's weights; made once per case)."""
    return factor * torch.tensor(sizes, dtype=dtype, device=device) / sum(sizes)


def _opmath(dtype: torch.dtype) -> torch.dtype:
    """The dtype the native kernel saves its per-batch statistics in (float32 for halves)."""
    return torch.promote_types(dtype, torch.float32)


class _GhostLoop(torch.autograd.Function):
    """Ghost batches through the native batch-norm kernels, written into one output.

    Forward: ``native_batch_norm.out`` on each consecutive slice of ``sizes`` rows writes
    the slice of ``y``, the ghost batch's mean and inverse std (saved for backward), and,
    with momentum 1, its mean and unbiased variance into the scratch rows ``means[j]`` and
    ``variances[j]``. Backward: ``native_batch_norm_backward.out`` per slice writes the slice
    of the input gradient and one row of the weight and bias gradients, summed at the end.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, sizes, eps, means, variances):
        k, c = len(sizes), x.shape[1]
        y = torch.empty_like(x)
        save_mean = x.new_empty((k, c), dtype=_opmath(x.dtype))
        save_invstd = torch.empty_like(save_mean)
        start = 0
        for j, n in enumerate(sizes):
            rows = slice(start, start + n)
            torch.ops.aten.native_batch_norm.out(
                x[rows], weight, bias, means[j], variances[j], True, 1.0, eps,
                out=y[rows], save_mean=save_mean[j], save_invstd=save_invstd[j],
            )  # fmt: skip
            start += n
        ctx.save_for_backward(x, weight, save_mean, save_invstd)
        ctx.sizes, ctx.eps = sizes, eps
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x, weight, save_mean, save_invstd = ctx.saved_tensors
        dy = dy.contiguous(memory_format=_memory_format(x))
        k, c = len(ctx.sizes), x.shape[1]
        affine = weight is not None
        dx = torch.empty_like(x)
        # the kernel's parameter gradients (also without affine parameters: the .out form
        # needs every output defined) in the parameters' dtype
        dw = x.new_empty((k, c), dtype=weight.dtype if affine else x.dtype)
        db = torch.empty_like(dw)
        start = 0
        for j, n in enumerate(ctx.sizes):
            rows = slice(start, start + n)
            torch.ops.aten.native_batch_norm_backward.out(
                dy[rows], x[rows], weight, None, None, save_mean[j], save_invstd[j], True,
                ctx.eps, [True, True, True], out0=dx[rows], out1=dw[j], out2=db[j],
            )  # fmt: skip
            start += n
        dweight = dw.sum(0) if affine else None
        dbias = db.sum(0) if affine else None
        return dx, dweight, dbias, None, None, None, None


class _GhostFused(torch.autograd.Function):
    """Ghost batches of a 2-D CPU activation through the compiled kernels.

    Forward returns the output and, as non-differentiable outputs, each ghost batch's mean
    and unbiased variance (float64 rows) for the running statistics.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, starts, eps):
        k, c = len(starts) - 1, x.shape[1]
        x = x.contiguous()
        w = weight.detach() if weight is not None else torch.ones(c, dtype=x.dtype)
        b = bias.detach() if bias is not None else torch.zeros(c, dtype=x.dtype)
        y = torch.empty_like(x)
        mean, invstd, variances = (torch.empty(k, c, dtype=torch.float64) for _ in range(3))
        ghost_forward(
            x.detach().numpy(), w.numpy(), b.numpy(), starts, eps,
            y.numpy(), mean.numpy(), invstd.numpy(), variances.numpy(),
            threads=torch.get_num_threads(),
        )  # fmt: skip
        ctx.save_for_backward(x, w, mean, invstd)
        ctx.starts, ctx.affine = starts, weight is not None
        ctx.mark_non_differentiable(mean, variances)
        return y, mean, variances

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy, _dmean, _dvar):
        x, w, mean, invstd = ctx.saved_tensors
        dy = dy.contiguous()
        dx = torch.empty_like(x)
        dw, db = (torch.empty_like(mean) for _ in range(2))
        ghost_backward(
            dy.detach().numpy(), x.detach().numpy(), w.numpy(), ctx.starts,
            mean.detach().numpy(), invstd.numpy(),
            dx.numpy(), dw.numpy(), db.numpy(),
            threads=torch.get_num_threads(),
        )  # fmt: skip
        if not ctx.affine:
            return dx, None, None, None, None
        return dx, dw.sum(0).to(w.dtype), db.sum(0).to(w.dtype), None, None


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


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
        running_stats: str = "mean",
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.ghost_size = _check_ghost_size(ghost_size)
        self.strategy = _check_strategy(strategy)
        self.running_stats = _check_running_stats(running_stats)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, ghost_size={self.ghost_size}, strategy={self.strategy}, "
            f"running_stats={self.running_stats}"
        )

    def _resolved_strategy(self, x: torch.Tensor) -> str:
        fused_ok = (
            x.dim() == 2
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64)
            and (self.weight is None or self.weight.dtype == x.dtype)
        )
        if self.strategy == "auto":
            return "vectorized" if x.is_cuda else "fused" if fused_ok else "loop"
        if self.strategy == "fused" and not fused_ok:
            return "loop"
        return self.strategy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        n = x.shape[0]
        if not self.training or n <= self.ghost_size:
            return super().forward(x)
        sizes = ghost_sizes(n, self.ghost_size)
        strategy = self._resolved_strategy(x)
        if strategy == "fused":
            starts = _ghost_starts(n, self.ghost_size)
            y, means, variances = _GhostFused.apply(x, self.weight, self.bias, starts, self.eps)
            dtype = self._stats_dtype(x)
            means, variances = means.to(dtype), variances.to(dtype)
        elif strategy == "loop":
            y, means, variances = self._forward_loop(x, sizes)
        else:
            y, means, variances = self._forward_vectorized(x, sizes)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self._update_running_stats(sizes, means, variances)
        return y

    def _update_running_stats(
        self, sizes: list[int], means: torch.Tensor, variances: torch.Tensor
    ) -> None:
        """Fold the ghost statistics (rows, in batch order) into the running buffers."""
        k = len(sizes)
        if self.running_stats == "mean":
            if self.momentum is None:  # cumulative average over steps
                factor = 1.0 / (float(self.num_batches_tracked) + 1)
            else:
                factor = self.momentum
            self.num_batches_tracked.add_(1)
            weights = _size_weights(tuple(sizes), factor, means.dtype, means.device)
            keep = 1.0 - factor
        else:  # one update per ghost batch, in closed form
            tracked = float(self.num_batches_tracked)  # before this step
            self.num_batches_tracked.add_(k)
            if self.momentum is None:  # cumulative average over ghost batches
                keep = tracked / (tracked + k)
                weights = torch.full((k,), 1.0 / (tracked + k), dtype=means.dtype)
            else:
                m = self.momentum
                keep = (1.0 - m) ** k
                weights = m * (1.0 - m) ** torch.arange(k - 1, -1, -1, dtype=means.dtype)
            weights = weights.to(means.device)
        self.running_mean.mul_(keep).add_(weights @ means)
        self.running_var.mul_(keep).add_(weights @ variances)

    def _stats_rows(self, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scratch rows for the ghost batches' means and unbiased variances."""
        c, dtype = self.num_features, self._stats_dtype(x)
        return (
            torch.zeros(k, c, dtype=dtype, device=x.device),
            torch.ones(k, c, dtype=dtype, device=x.device),
        )

    def _forward_loop(self, x: torch.Tensor, sizes: list[int]):
        means, variances = self._stats_rows(x, len(sizes))
        y = _GhostLoop.apply(x, self.weight, self.bias, sizes, self.eps, means, variances)
        return y, means, variances

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
    strategy : {"auto", "loop", "vectorized", "fused"}
        How ghost batches are normalised in training (see the module docstring).
    running_stats : {"mean", "sequential"}
        ``"mean"``: one update per step from the size-weighted mean of the ghost statistics;
        ``"sequential"``: one update per ghost batch, as Algorithm 1 and the authors' code.
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


def convert_to_ghost(
    module: nn.Module, ghost_size: int, strategy: str = "auto", running_stats: str = "mean"
) -> nn.Module:
    """Replace every ``nn.BatchNorm1d``/``2d`` in ``module`` by its ghost version, state kept.

    Parameters
    ----------
    module : torch.nn.Module
        The model; converted in place (like ``nn.SyncBatchNorm.convert_sync_batchnorm``).
    ghost_size : int
        Samples per ghost batch (per replica under DDP).
    strategy : {"auto", "loop", "vectorized", "fused"}
        Passed to the ghost layers.
    running_stats : {"mean", "sequential"}
        The running-statistics rule of the ghost layers (see the module docstring).

    Returns
    -------
    torch.nn.Module
        ``module`` itself, or the new layer when ``module`` is a batch-norm layer.
    """
    _check_ghost_size(ghost_size)
    _check_strategy(strategy)
    _check_running_stats(running_stats)
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
            running_stats=running_stats,
        )
        ghost.load_state_dict(module.state_dict())
        ghost.train(module.training)
        return ghost
    if isinstance(module, _GhostBatchNorm):
        module.ghost_size = ghost_size
        module.strategy = strategy
        module.running_stats = running_stats
        return module
    for name, child in module.named_children():
        new = convert_to_ghost(child, ghost_size, strategy, running_stats)
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

    ``"auto"`` is a fixed rule (fused kernels for 2-D CPU inputs, else the loop on CPU, the
    reshape on CUDA); this measures the strategies that apply on the machine at hand, e.g.
    ``min(times, key=times.get)`` for ``convert_to_ghost``'s strategy.

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
        ``{"loop": seconds, "vectorized": seconds}``, and ``"fused"`` for a 2-D shape on CPU.
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
    strategies = ["loop", "vectorized"]
    if len(shape) == 2 and device.type == "cpu":
        strategies.append("fused")
    for strategy in strategies:
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
