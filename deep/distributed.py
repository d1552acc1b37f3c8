"""Process-group helpers for data-parallel training under ``torchrun``.

``torchrun --nproc_per_node K -m deep train ...`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``;
:func:`setup` then joins the group (NCCL on GPUs, gloo on CPU) and picks the device. Each
replica processes ``B / K`` samples of the global batch ``B`` (consecutive slices of the same
seeded batch), gradients are averaged by ``DistributedDataParallel``, and only rank 0 writes
files. Ghost batch norm works on each replica's slice, so its ghost size is per replica.

Plain batch norm has two modes (:data:`BN_MODES`): ``"replica"`` normalises each replica's
``B / K`` samples on their own (what DDP does by itself: per-GPU batch norm, i.e. ghost batch
norm of ``B / K``), ``"sync"`` converts the layers so that they normalise over all ``B``
samples (:class:`torch.nn.SyncBatchNorm` on CUDA; on CPU, where that layer does not run, a
small layer with the same arithmetic that all-reduces the sums with autograd-aware
collectives). In both modes :func:`average_running_stats` averages every floating-point
buffer over the replicas before evaluation and saving, so what is evaluated and stored does
not depend on one replica's share of the data (running averages are linear in the batch
statistics, so averaging at any step gives the same final buffers up to rounding).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BN_MODES",
    "DistInfo",
    "setup",
    "teardown",
    "resolve_device",
    "data_parallel",
    "average_running_stats",
    "convert_to_sync",
    "CpuSyncBatchNorm",
]

BN_MODES = ("replica", "sync")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` replicas, on ``device``."""

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA (this process's GPU) when available, else CPU; otherwise ``device``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available")
        return torch.device("cuda", local_rank)
    if device != "cpu":
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return torch.device("cpu")


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``) and pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    owns = False
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        owns = True
    return DistInfo(rank, world, dev, owns)


def teardown(info: DistInfo) -> None:
    """Leave the process group if :func:`setup` created it (a caller's own group is left alone)."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def data_parallel(model: nn.Module, info: DistInfo) -> nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` under DDP (buffers stay per replica)."""
    if not info.distributed:
        return model
    return nn.parallel.DistributedDataParallel(
        model,
        device_ids=[info.device.index] if info.device.type == "cuda" else None,
        broadcast_buffers=False,
    )


@torch.no_grad()
def average_running_stats(model: nn.Module, info: DistInfo) -> None:
    """Average every floating-point buffer (running means and variances) over the replicas.

    A collective: every replica must call it at the same step. Nothing happens in a single
    process.
    """
    if not info.distributed:
        return
    buffers = [b for b in model.buffers() if b.is_floating_point()]
    for b in buffers:
        dist.all_reduce(b)
        b.div_(info.world_size)


class _AllReduceSum(torch.autograd.Function):
    """Sum over replicas whose gradient is the sum of the replicas' gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(x)


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the global batch of all replicas, for CPU process groups (gloo).

    In training mode the per-channel sum and the sum of squared deviations are all-reduced
    with autograd-aware collectives, so the forward and the gradients equal those of one
    batch norm over the concatenated batch; the running statistics get the global mean and
    the unbiased global variance, as :class:`torch.nn.SyncBatchNorm` does on CUDA. In
    evaluation mode it is plain batch norm with the running statistics.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return F.batch_norm(
                input,
                self.running_mean,
                self.running_var,
                self.weight,
                self.bias,
                self.training or not self.track_running_stats,
                self.momentum if self.momentum is not None else 0.0,
                self.eps,
            )
        dims = [0, *range(2, input.dim())]
        count = torch.tensor(
            float(input.numel() // input.shape[1]), dtype=input.dtype, device=input.device
        )
        count = _all_reduce_sum(count)
        mean = _all_reduce_sum(input.sum(dims)) / count
        shape = [1, -1] + [1] * (input.dim() - 2)
        centred = input - mean.reshape(shape)
        var = _all_reduce_sum((centred * centred).sum(dims)) / count
        out = centred * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 0.1
                unbiased = var.detach() * count / (count - 1)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        return out


def convert_to_sync(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace the plain ``BatchNorm1d``/``2d`` layers of ``model`` by synchronised ones.

    ``torch.nn.SyncBatchNorm`` on CUDA; :class:`CpuSyncBatchNorm` (same state, same
    arithmetic) on CPU. Ghost batch-norm layers are left alone (their ghost batches are per
    replica). Converts in place and returns ``model``.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) in (nn.BatchNorm1d, nn.BatchNorm2d):
            layer = CpuSyncBatchNorm(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            layer.load_state_dict(child.state_dict())
            setattr(model, name, layer)
        else:
            convert_to_sync(child, device)
    return model
