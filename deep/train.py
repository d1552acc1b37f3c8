"""The trainer: SGD on a classifier, recording how far the weights travel, ||w_t - w_0||.

Read it top to bottom: :class:`TrainConfig` says what to run (and alone names the run
folder), :class:`Runtime` where to run it, :func:`make_plan` fixes the steps, the schedule and
the recording points before the first step, the loop in :func:`_train` makes the updates, and
a :class:`Recorder` alone touches records and checkpoints. Each step takes the next batch of
a seeded order (a pure function of the step), applies the augmentation (seeded by the step),
sets the learning rate from the schedule (a pure function of the step), and makes one SGD
update; the optimiser (and its momentum) lives for the whole run. At log-spaced steps, at
every epoch end and at evaluation points it records the distance from the initial weights,
over the whole network and per parameter tensor, the minibatch loss and the learning rate;
at evaluation points also accuracy and loss on the training and validation sets (evaluation
mode: running statistics, no splitting).

The records form a :class:`diffusion.metrics.Trace` (prefix ``""``): ``t`` is the number of
updates made, ``distance`` = ||w_t - w_0|| over all parameters, extras ``loss`` (loss of
the minibatch of step ``t`` at ``w_t``, in training mode), ``lr`` (rate of update ``t + 1``),
``dist.<parameter name>`` and ``train_acc``/``train_loss``/``val_acc``/``val_loss`` (NaN
where not evaluated). The evaluation points alone form a second trace, prefix ``"eval."``.

Checkpoints are written atomically to the run folder every ``Runtime.checkpoint_interval_s``
seconds (60 by default), every ``Runtime.checkpoint_every`` steps if set, and at the end:
``checkpoint.pt`` holds tensors and plain types only (model, optimiser, step, initial
weights, random states, elapsed time; the final one has no optimiser state, as no update
follows it) and is read with ``torch.load(weights_only=True)``;
the records so far lie beside it in ``checkpoint-records.npz``. A run whose process died
resumes from them and gives the same weights and records, bit for bit on CPU, with the wall
time summed over the segments. A non-finite loss stops the run with
:class:`NonFiniteLossError`, whose message says which checkpoint (if any) is left.

Data-parallel runs (``torchrun``, see :mod:`deep.distributed`): ``TrainConfig.replicas`` is
the world size and ``TrainConfig.bn_mode`` how plain batch norm treats the global batch:
``"replica"`` normalises each replica's ``B / K`` samples separately (per-GPU batch norm, as
in the paper's multi-GPU runs: effectively ghost batch norm of ``B / K``), ``"sync"``
normalises over the whole batch (``SyncBatchNorm``). Either way the running statistics are
averaged over the replicas before every evaluation and every checkpoint.
"""

from __future__ import annotations

import math
import os
import random
import time
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from deep._distance_kernels import PairedBlocks
from deep.data import (
    AUGMENTATIONS,
    DATASETS,
    BatchOrder,
    augment_batch,
    center_crop,
    default_augmentation,
    load_dataset,
)
from deep.distributed import (
    BN_MODES,
    DistInfo,
    average_running_stats,
    convert_to_sync,
    data_parallel,
    setup,
    teardown,
)
from deep.ghost_bn import RUNNING_STATS, convert_to_ghost
from deep.models import MODELS, build
from deep.regime import LR_RULES, AdaptedRegime, Schedule, build_schedule, steps_for_epochs
from diffusion.metrics import Trace, log_schedule
from diffusion.records import (
    HASH_NEUTRAL,
    Run,
    StagedFile,
    commit_in_order,
    config_hash,
    find_run,
    load_run,
    run_dir,
    save_run,
    stage_npz,
    stage_with,
    to_jsonable,
)
from diffusion.runtime import Runtime, check_runtime
from diffusion.validation import check_bool, check_choice, check_int, check_real

try:  # torch >= 2.6: saving can skip the zip CRCs (see _tensor_checksum)
    from torch.utils.serialization import config as _serialization_config
except ImportError:  # pragma: no cover - older torch computes them, only slower
    _serialization_config = None

__all__ = [
    "TrainConfig",
    "Runtime",
    "Plan",
    "make_plan",
    "make_sgd",
    "Recorder",
    "train",
    "NonFiniteLossError",
    "CHECKPOINT_FILE",
    "CHECKPOINT_RECORDS_FILE",
    "load_checkpoint",
    "load_model",
]

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_RECORDS_FILE = "checkpoint-records.npz"
CHECKPOINT_FORMAT = 2
_CHECKPOINT_KEYS = ("format", "step", "hash", "model", "optimizer", "initial", "rows", "rng")
EVAL_KEYS = ("train_acc", "train_loss", "val_acc", "val_loss")
_EVAL_BATCH = 1024


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite at the weights after ``step`` updates."""

    def __init__(
        self, step: int, loss: float, checkpoint_step: int | None = None, path: Path | None = None
    ) -> None:
        kept = (
            f"the checkpoint of step {checkpoint_step} in {str(path)!r} is kept"
            if checkpoint_step is not None
            else "no checkpoint had been written"
        )
        super().__init__(
            f"non-finite training loss {loss} at step {step} (the loss of the weights "
            f"after {step} updates); {kept}"
        )
        self.step = step
        self.loss = loss
        self.checkpoint_step = checkpoint_step


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TrainConfig:
    """What to train, on what, and how.

    Parameters
    ----------
    model, data : str
        Names in :data:`deep.models.MODELS` and :data:`deep.data.DATASETS`.
    batch_size : int
        Global batch size ``B`` (split evenly over replicas under DDP).
    epochs : float
        Epochs of the base regime (multiplied by ``B / base_batch_size`` when
        ``regime_adaptation``).
    lr : float
        Learning rate at ``base_batch_size``; scaled by ``lr_scaling``.
    base_batch_size : int
        The small batch ``B_0`` that ``lr``, ``epochs`` and ``milestones`` were tuned for.
    lr_scaling : {"none", "linear", "sqrt"}
        Rule from ``lr`` at ``B_0`` to the rate at ``B``.
    ghost_size : int, optional
        Ghost batch size per replica; ``None`` keeps plain batch norm.
    regime_adaptation : bool
        Multiply epochs and milestones by ``B / B_0``.
    milestones : tuple of float
        Epochs (base regime) at which the learning rate is multiplied by ``lr_decay``.
    lr_decay : float
        Factor at each milestone.
    momentum, weight_decay : float
        SGD settings.
    warmup_epochs : float
        Linear warm-up (epochs of the run) from ``lr`` to the scaled rate; 0 for none.
    grad_clip : float, optional
        Clip the global gradient norm to this value; off by default.
    seed : int
        Seeds the initial weights, the split, the batch order, augmentation and dropout.
    trace_per_decade : int
        Log-spaced recording points per decade of steps.
    eval_every : int, "epoch" or None
        Evaluate every so many steps, at every epoch end, or only at the end.
    augment : {"auto", "none", "cifar"}
        Training augmentation; ``"auto"`` is the paper's for the dataset.
    max_steps : int, optional
        Stop after this many updates even if the regime asks for more.
    replicas : int, optional
        Data-parallel replicas (the ``torchrun`` world size); ``None`` takes ``WORLD_SIZE``
        from the environment (1 outside ``torchrun``). :func:`train` refuses to run a
        config in a world of another size.
    bn_mode : {"replica", "sync"}
        How plain batch norm sees the global batch under DDP: per replica (``B / K`` samples
        each, as per-GPU batch norm) or synchronised over all ``B`` (``SyncBatchNorm``). It
        is stored as ``"replica"`` where it cannot matter (one replica, or ghost batch norm,
        whose ghost batches are always per replica).
    ghost_running_stats : {"mean", "sequential"}
        How ghost batch norm updates its running statistics (:mod:`deep.ghost_bn`): once per
        step from the size-weighted mean of the ghost batches' statistics (``"mean"``, the
        default), or once per ghost batch, in order, as the paper's Algorithm 1 and the
        authors' code do (``"sequential"``).

    Notes
    -----
    Only what the result depends on is here (it is hashed into the run folder's name, whose
    prefix is :attr:`KIND`); where and how the run executes is a :class:`Runtime`.
    """

    KIND: ClassVar[str] = "train"

    model: str
    data: str
    batch_size: int = 128
    epochs: float = 10.0
    lr: float = 0.1
    base_batch_size: int = 128
    lr_scaling: str = "none"
    ghost_size: int | None = None
    regime_adaptation: bool = False
    milestones: tuple[float, ...] = ()
    lr_decay: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    trace_per_decade: int = 20
    eval_every: int | str | None = "epoch"
    augment: str = "auto"
    max_steps: int | None = None
    replicas: int | None = None
    bn_mode: str = "replica"
    ghost_running_stats: str = field(default="mean", metadata={HASH_NEUTRAL: "mean"})

    def __post_init__(self) -> None:
        _plain_scalars(self)
        # the registries' own wording (deep.models.build, deep.data.load_dataset), which the
        # configurations built on this one (gamma, distance) report too
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; valid names are {sorted(MODELS)}")
        if self.data not in DATASETS:
            raise ValueError(f"unknown dataset {self.data!r}; valid names are {list(DATASETS)}")
        for name in ("batch_size", "base_batch_size", "trace_per_decade"):
            check_int(name, getattr(self, name), 1)
        if self.ghost_size is not None:
            check_int("ghost_size", self.ghost_size, 2)
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, 1)
        if self.ghost_size is not None and self.ghost_size > self.batch_size:
            raise ValueError(
                f"ghost_size ({self.ghost_size}) must not exceed batch_size ({self.batch_size})"
            )
        check_int("seed", self.seed, 0)
        reals = {
            "epochs": check_real("epochs", self.epochs, 0.0, low_open=True),
            "lr": check_real("lr", self.lr, 0.0, low_open=True),
            "lr_decay": check_real("lr_decay", self.lr_decay, 0.0, 1.0, low_open=True),
            "momentum": check_real("momentum", self.momentum, 0.0, 1.0, high_open=True),
            "weight_decay": check_real("weight_decay", self.weight_decay, 0.0),
            "warmup_epochs": check_real("warmup_epochs", self.warmup_epochs, 0.0),
        }
        if self.grad_clip is not None:  # validated, not converted: the hash keeps 1 and 1.0 apart
            check_real("grad_clip", self.grad_clip, 0.0, low_open=True)
        check_choice("lr_scaling", self.lr_scaling, LR_RULES)
        check_choice("augment", self.augment, ("auto", *AUGMENTATIONS))
        if self.replicas is None:
            object.__setattr__(self, "replicas", _world_size_from_env())
        check_int("replicas", self.replicas, 1)
        check_choice("bn_mode", self.bn_mode, BN_MODES)
        check_choice("ghost_running_stats", self.ghost_running_stats, RUNNING_STATS)
        if self.replicas == 1 or self.ghost_size is not None:
            object.__setattr__(self, "bn_mode", "replica")
        if isinstance(self.eval_every, str):  # the one word it takes; otherwise a step count
            check_choice("eval_every", self.eval_every, ("epoch",))
        elif self.eval_every is not None:
            check_int("eval_every", self.eval_every, 1)
        regime_adaptation = check_bool("regime_adaptation", self.regime_adaptation)
        object.__setattr__(self, "regime_adaptation", regime_adaptation)
        milestones = tuple(self.milestones)
        for m in milestones:  # validated, not converted (as grad_clip)
            check_real("milestones", m, 0.0, low_open=True)
        object.__setattr__(self, "milestones", milestones)
        for name, value in reals.items():
            object.__setattr__(self, name, value)


def _world_size_from_env() -> int:
    text = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"environment variable WORLD_SIZE must be an integer, got {text!r}"
        ) from None


def _plain_scalars(config: object) -> None:
    """Replace numpy scalars in a frozen config's fields by Python ints and floats."""
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, tuple):
            value = tuple(v.item() if isinstance(v, np.generic) else v for v in value)
        elif isinstance(value, (np.integer, np.floating)):
            value = value.item()
        object.__setattr__(config, f.name, value)


# ----------------------------------------------------------------------------- pieces
def _step_generator(seed: int, step: int) -> torch.Generator:
    """The augmentation generator of one step (a pure function of seed and step)."""
    state = np.random.SeedSequence([seed, step, 0xA09]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class _DistanceMeter:
    """||p - p_0|| of every parameter tensor, in float64 on the host, as often as asked.

    On CPU (float32 or float64 parameters) one compiled pass reads each pair once and sums in
    float64, on torch's threads, with the same result on any number of them
    (:class:`deep._distance_kernels.PairedBlocks`, checked and cut into blocks at the first
    record and again only if a tensor moves). Elsewhere the differences are written into
    scratch tensors (made once, so that no record pays for a fresh allocation) and one fused
    multi-tensor kernel takes their norms, in the parameters' precision.
    """

    def __init__(self, params: list[torch.Tensor], initial: list[torch.Tensor]) -> None:
        self.params, self.initial = params, initial
        self._blocks: PairedBlocks | None = None
        self._scratch: list[torch.Tensor] | None = None

    def __call__(self) -> np.ndarray:
        if self._blocks is None or not self._blocks.current(self.params, self.initial):
            try:
                self._blocks = PairedBlocks(self.params, self.initial)
            except ValueError:  # not contiguous CPU float32/float64 tensors: tensor operations
                if self._scratch is None:
                    self._scratch = [torch.empty_like(p, requires_grad=False) for p in self.params]
                return _tensor_distances(self.params, self.initial, self._scratch)
        return np.sqrt(self._blocks(torch.get_num_threads()))


def _tensor_distances(
    params: list[torch.Tensor], initial: list[torch.Tensor], buffers: list[torch.Tensor]
) -> np.ndarray:
    """||p - p_0|| through ``buffers`` and one multi-tensor norm, on any device."""
    with torch.no_grad():
        for out, p, p0 in zip(buffers, params, initial, strict=True):
            torch.sub(p, p0, out=out)
        norms = torch._foreach_norm(buffers)
    return torch.stack(norms).double().cpu().numpy()


@torch.no_grad()
def _evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    size: tuple[int, ...] | None = None,
) -> tuple[float, float]:
    """(accuracy, mean loss) in evaluation mode, in fixed batches (never split per ghost batch)."""
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(y), _EVAL_BATCH):
        xb, yb = x[i : i + _EVAL_BATCH].to(device), y[i : i + _EVAL_BATCH].to(device)
        out = model(center_crop(xb, size))
        loss += float(F.cross_entropy(out, yb, reduction="sum"))
        correct += int((out.argmax(1) == yb).sum())
    model.train(was_training)
    return correct / len(y), loss / len(y)


def _rng_state() -> dict:
    """Every random state of the process, as tensors and plain types (``weights_only`` safe)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": [version, list(internal), gauss_next],
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`train` (a run folder or the file itself).

    Checkpoints hold tensors and plain types only and are read with ``weights_only=True``:
    a file holding anything else is refused, nothing in it runs.

    Raises
    ------
    FileNotFoundError
        If there is no checkpoint.
    ValueError
        Naming the file, if it is not a readable checkpoint of tensors and plain types.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise ValueError(
            f"checkpoint {str(path)!r} is not a readable checkpoint of tensors and plain "
            f"types ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    missing = [k for k in _CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} lacks the keys {missing}")
    stored = ckpt.pop(_CHECKSUM_KEY, None)  # absent from checkpoints written before it
    if stored is not None and stored != _tensor_checksum(ckpt):
        raise ValueError(
            f"checkpoint {str(path)!r} is corrupted: its tensors do not match the checksum "
            "stored with them"
        )
    return ckpt


_CHECKSUM_KEY = "crc32"


def _tensor_checksum(obj) -> int:
    """CRC-32 of the bytes of every tensor in ``obj`` (nested dicts, lists, tuples), in order.

    ``torch.save`` writes a CRC-32 of each zip record, but ``torch.load`` never checks it: a
    flipped bit in a weight loads silently. Checkpoints are therefore written without
    torch's (it took 12 of the 14 ms of saving F1's checkpoint) and carry this one over
    their tensors instead (about 0.5 ms per MB), which :func:`load_checkpoint` checks.
    """
    crc = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            flat = item.detach().reshape(-1).contiguous().cpu().view(torch.uint8).numpy()
            crc = zlib.crc32(flat, crc)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
    return crc


def _save_checkpoint(payload: dict, fh) -> None:
    """``torch.save`` of a checkpoint, with :func:`_tensor_checksum` in place of zip CRCs."""
    payload = {**payload, _CHECKSUM_KEY: _tensor_checksum(payload)}
    without_crc = (
        nullcontext()
        if _serialization_config is None
        else _serialization_config.patch({"save.compute_crc32": False})
    )
    with without_crc:
        torch.save(payload, fh)


def load_model(run: Run | str | Path, data_root: str | None = None) -> nn.Module:
    """The trained model of a finished run (final weights from its checkpoint), in eval mode.

    ``data_root`` is needed for datasets read from user files (their class count).
    """
    run = run if isinstance(run, Run) else load_run(run)
    try:
        config = TrainConfig(**{**run.config, "milestones": tuple(run.config["milestones"])})
    except TypeError as exc:
        raise ValueError(
            f"run folder {str(run.path)!r} is stale: its config.json was written by an older "
            f"trainer ({exc})"
        ) from exc
    data = _load_data(config, data_root)
    model = _build_model(config, data)
    model.load_state_dict(load_checkpoint(run.path)["model"])
    return model.eval()


def _load_data(config: TrainConfig, data_root: str | None):
    if config.data == "random":
        probe = build(config.model)
        return load_dataset(
            "random", seed=config.seed, input_shape=probe.input_shape, num_classes=probe.num_classes
        )
    return load_dataset(config.data, data_root, config.seed)


def _build_model(config: TrainConfig, data, info: DistInfo | None = None) -> nn.Module:
    torch.manual_seed(config.seed)
    model = build(config.model, data.num_classes)
    if math.prod(model.input_shape) != math.prod(data.input_shape) or (
        not model.flat_input and tuple(model.input_shape) != tuple(data.input_shape)
    ):
        raise ValueError(
            f"model {config.model!r} takes samples of shape {model.input_shape} but dataset "
            f"{config.data!r} has samples of shape {data.input_shape}"
        )
    if config.ghost_size is not None:
        convert_to_ghost(model, config.ghost_size, running_stats=config.ghost_running_stats)
    if config.bn_mode == "sync" and info is not None and info.distributed:
        convert_to_sync(model, info.device)
    return model


def make_sgd(params: list[torch.Tensor], lr: float, config: TrainConfig) -> torch.optim.SGD:
    """The run's optimiser: ``torch.optim.SGD`` with the config's momentum and weight decay,
    fused where torch has a fused kernel for the parameters' device (CPU, CUDA).

    The fused step makes one pass over each tensor instead of three (weight decay, momentum,
    update) for the same updates, bit for bit: on CPU it is 0.6 against 1.7 ms for F1.
    """
    return torch.optim.SGD(
        params,
        lr=lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        fused=_fusable(params),
    )


def _fusable(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused SGD takes these parameters (floating point, all on CPU or CUDA)."""
    return bool(params) and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params
    )


# ----------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    """Everything a run decides before its first step (a pure function of the config and data).

    Attributes
    ----------
    total_steps : int
        Updates made.
    schedule : deep.regime.Schedule
        Learning rate of every update.
    regime : deep.regime.AdaptedRegime
        Epochs and milestones after regime adaptation.
    local_batch : int
        Samples per replica and step.
    augmentation : str
        The training augmentation.
    crop : tuple of int or None
        Image height and width (the crop of the augmentation and of evaluation).
    record_at, eval_at : frozenset of int
        Steps at which the trace is recorded and at which the model is evaluated.
    """

    total_steps: int
    schedule: Schedule
    regime: AdaptedRegime
    local_batch: int
    augmentation: str
    crop: tuple[int, ...] | None
    record_at: frozenset[int]
    eval_at: frozenset[int]


def make_plan(config: TrainConfig, data, world_size: int = 1) -> Plan:
    """The :class:`Plan` of ``config`` on ``data`` with ``world_size`` replicas.

    Raises
    ------
    ValueError
        If the batch exceeds the training split, does not divide over the replicas, or the
        ghost size exceeds the per-replica batch.
    """
    n_train = len(data.train)
    if config.batch_size > n_train:
        raise ValueError(
            f"batch_size {config.batch_size} exceeds the {n_train} samples of the {config.data!r} "
            "training split (a step would repeat samples)"
        )
    local_batch, rest = divmod(config.batch_size, world_size)
    if rest:
        raise ValueError(
            f"batch_size {config.batch_size} is not divisible by the {world_size} replicas"
        )
    if config.ghost_size is not None and config.ghost_size > local_batch:
        raise ValueError(
            f"ghost_size {config.ghost_size} exceeds the per-replica batch {local_batch}"
        )
    schedule, regime, total = build_schedule(
        base_lr=config.lr,
        batch_size=config.batch_size,
        base_batch_size=config.base_batch_size,
        lr_scaling=config.lr_scaling,
        epochs=config.epochs,
        milestones=config.milestones,
        lr_decay=config.lr_decay,
        warmup_epochs=config.warmup_epochs,
        n_samples=n_train,
        regime_adaptation=config.regime_adaptation,
    )
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    epoch_ends = {
        s
        for e in range(1, int(regime.epochs) + 1)
        if (s := steps_for_epochs(e, n_train, config.batch_size)) <= total
    }
    if config.eval_every == "epoch":
        eval_at = set(epoch_ends)
    elif config.eval_every is None:
        eval_at = set()
    else:
        eval_at = set(range(config.eval_every, total + 1, config.eval_every))
    eval_at.add(total)
    logged = log_schedule(total, config.trace_per_decade, start=0).tolist() if total else [0]
    augmentation = default_augmentation(config.data) if config.augment == "auto" else config.augment
    return Plan(
        total_steps=total,
        schedule=schedule,
        regime=regime,
        local_batch=local_batch,
        augmentation=augmentation,
        crop=tuple(data.input_shape[1:]) if len(data.input_shape) == 3 else None,
        record_at=frozenset(logged) | epoch_ends | eval_at,
        eval_at=frozenset(eval_at),
    )


# ----------------------------------------------------------------------------- the recorder
class Recorder:
    """The only part of the trainer that touches the records and the checkpoint files.

    It keeps the initial weights, appends one row per recorded step (distances, loss,
    learning rate, scores), decides when a checkpoint is due (time since the last one, step
    cadence), writes and reads checkpoints, and adds up the wall time over resumed segments.

    A checkpoint is two files written atomically: ``checkpoint-records.npz`` (the rows so
    far) first, then ``checkpoint.pt`` (model, optimiser but for the final one, step,
    initial weights, random states, row count, elapsed time: tensors and plain types only).
    A kill between the two leaves a records file with more rows than the checkpoint names,
    and only its first rows are read.
    """

    def __init__(
        self,
        path: Path,
        config: TrainConfig,
        model: nn.Module,
        plan: Plan,
        info: DistInfo,
        runtime: Runtime,
        on_checkpoint: Callable[[int], None] | None = None,
    ) -> None:
        self.path, self.config, self.plan, self.info, self.runtime = (
            path,
            config,
            plan,
            info,
            runtime,
        )
        self.names = [name for name, _ in model.named_parameters()]
        self.params = [p for _, p in model.named_parameters()]
        self.initial = [p.detach().clone() for p in self.params]
        self._distances = _DistanceMeter(self.params, self.initial)
        self.rows: dict[str, list] = {key: [] for key in _ROW_KEYS}
        self.on_checkpoint = on_checkpoint
        self.start_step = 0
        self.saved_step: int | None = None
        self.elapsed_before = 0.0
        self._segment_start = time.perf_counter()
        self._last_save = time.monotonic()

    # ---- resume
    def resume(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
        """Restore the run folder's checkpoint into ``model`` and ``optimizer``; the start step.

        Without a checkpoint the dropout stream of this replica is seeded and 0 is returned.
        """
        ckpt_path = self.path / CHECKPOINT_FILE
        if not ckpt_path.is_file():
            return self.fresh()
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["hash"] != config_hash(self.config):
            raise ValueError(f"checkpoint {str(ckpt_path)!r} belongs to another configuration")
        model.load_state_dict(ckpt["model"])
        if ckpt["optimizer"] is not None:  # None in the final checkpoint: no step follows it
            fused = [group.get("fused") for group in optimizer.param_groups]
            optimizer.load_state_dict(ckpt["optimizer"])
            for group, flag in zip(optimizer.param_groups, fused, strict=True):
                group["fused"] = flag  # this machine's choice, not the writer's (same updates)
        device = self.params[0].device
        self.initial = [t.to(device) for t in ckpt["initial"]]
        self._distances = _DistanceMeter(self.params, self.initial)
        self.rows = _read_rows(self.path / CHECKPOINT_RECORDS_FILE, ckpt["rows"], len(self.names))
        states = ckpt["rng"]
        _set_rng_state(states[self.info.rank] if self.info.rank < len(states) else states[0])
        self.start_step = self.saved_step = int(ckpt["step"])
        self.elapsed_before = float(ckpt["wall_time_s"])
        return self.start_step

    def fresh(self) -> int:
        """Start from step 0: seed this replica's dropout stream."""
        torch.manual_seed(self.config.seed + 7919 * (self.info.rank + 1))
        return 0

    # ---- rows
    def record(self, step: int, loss: float, scores: tuple[float, ...] | None) -> float:
        """Append the row of ``step``; returns the distance ||w_t - w_0||."""
        layers = self._distances()
        distance = float(np.sqrt(np.sum(layers**2)))
        row = (step, distance, loss, self.plan.schedule(step), layers)
        for key, value in zip(_ROW_KEYS, (*row, *(scores or (math.nan,) * 4)), strict=True):
            self.rows[key].append(value)
        return distance

    @property
    def finished(self) -> bool:
        """Whether the last row is the final step: resumed from a final checkpoint written
        after that row, as runs did before the final checkpoint came first."""
        return bool(self.rows["t"]) and self.rows["t"][-1] == self.plan.total_steps

    # ---- checkpoints
    def due(self, step: int) -> bool:
        """Whether a checkpoint is due after ``step`` updates (the same answer on every replica)."""
        if step >= self.plan.total_steps:
            return False
        every = self.runtime.checkpoint_every
        due = bool(every and step % every == 0)
        due = due or time.monotonic() - self._last_save >= self.runtime.checkpoint_interval_s
        if self.info.distributed:
            flag = torch.tensor([float(due)], device=self.info.device)
            dist.broadcast(flag, 0)
            due = bool(flag.item())
        return due

    def rng_states(self) -> list[dict]:
        """Every replica's random state, in rank order (collective under DDP)."""
        states = [_rng_state()]
        if self.info.distributed:
            states = [None] * self.info.world_size
            dist.all_gather_object(states, _rng_state())
        return states

    def save(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        *,
        states: list[dict] | None = None,
        background: bool = False,
    ) -> Callable[[], None]:
        """Write the checkpoint of ``step`` (collective under DDP; rank 0 writes).

        Parameters
        ----------
        step : int
            Updates done.
        model, optimizer
            Their states are stored (with the initial weights, the rows and the random states).
            ``optimizer`` is None for the final checkpoint, after which no update is made: its
            momenta would be a third of the file for nothing.
        states : list of dict, optional
            The replicas' random states to store (:meth:`rng_states`); taken now if omitted.
        background : bool
            Return before the files are in place, leaving work to another thread: writing
            them, when a core is free of torch's threads (:func:`_core_to_spare`), else only
            the wait for the disk (fsync) and the renames, after writing them here (a writer
            thread beside the OpenMP team would take turns with it; one blocked in fsync
            does not). The model and optimizer must stay as they are until the returned
            function has been called.

        Returns
        -------
        callable
            Waits for the files (raising what writing them raised), then completes the
            checkpoint (``on_checkpoint``, and the barrier under DDP). Already called when
            ``background`` is false.
        """
        states = self.rng_states() if states is None else states
        wait_for_files: Callable[[], object] = lambda: None  # noqa: E731
        if self.info.is_main:
            rows = self._row_arrays()
            payload = {
                "format": CHECKPOINT_FORMAT,
                "step": step,
                "hash": config_hash(self.config),
                "config": to_jsonable(asdict(self.config)),
                "model": model.state_dict(),
                "optimizer": None if optimizer is None else optimizer.state_dict(),
                "initial": [t.cpu() for t in self.initial],
                "rows": len(self.rows["t"]),
                "rng": states,
                "wall_time_s": self.wall_time,
            }

            def stage() -> list[StagedFile]:
                staged = [stage_npz(self.path / CHECKPOINT_RECORDS_FILE, rows)]
                try:
                    write = partial(_save_checkpoint, payload)
                    staged.append(stage_with(self.path / CHECKPOINT_FILE, write))
                except BaseException:
                    staged[0].discard()
                    raise
                return staged  # committed in this order: the records first

            if not background:
                commit_in_order(stage())
            else:
                # in both cases the thread ends when the files are in place
                work = (
                    (lambda: commit_in_order(stage()))
                    if _core_to_spare()
                    else partial(commit_in_order, stage())
                )
                pool = ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
                wait_for_files = pool.submit(work).result
                pool.shutdown(wait=False)

        def complete() -> None:
            wait_for_files()
            if self.info.is_main and self.on_checkpoint is not None:
                self.on_checkpoint(step)
            self.saved_step = step
            self._last_save = time.monotonic()
            if self.info.distributed:
                dist.barrier()

        if background:
            return complete
        complete()
        return lambda: None

    @property
    def wall_time(self) -> float:
        """Seconds of training so far, over every resumed segment."""
        return self.elapsed_before + time.perf_counter() - self._segment_start

    def _row_arrays(self) -> dict[str, np.ndarray]:
        out = {key: np.asarray(self.rows[key], dtype=float) for key in _ROW_KEYS if key != "layers"}
        out["t"] = np.asarray(self.rows["t"], dtype=np.int64)
        out["layers"] = np.asarray(self.rows["layers"], dtype=float).reshape(-1, len(self.names))
        return out

    # ---- the records of the finished run
    def records(self) -> dict[str, np.ndarray]:
        """The run's two traces as arrays (see the module docstring)."""
        rows = self._row_arrays()
        t, layers = rows["t"], rows["layers"]
        extras = {"loss": rows["loss"], "lr": rows["lr"]}
        extras.update({f"dist.{name}": layers[:, i] for i, name in enumerate(self.names)})
        extras.update({key: rows[key] for key in EVAL_KEYS})
        trace = Trace(t, rows["distance"], extras)
        evaluated = np.isin(t, sorted(self.plan.eval_at))
        eval_trace = Trace(
            t[evaluated], trace.distance[evaluated], {k: rows[k][evaluated] for k in EVAL_KEYS}
        )
        return {**trace.to_arrays(""), **eval_trace.to_arrays("eval.")}


_ROW_KEYS = ("t", "distance", "loss", "lr", "layers", *EVAL_KEYS)


def _read_rows(path: Path, count: int, n_params: int) -> dict[str, list]:
    """The first ``count`` rows of a checkpoint's records file."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in _ROW_KEYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"checkpoint records {str(path)!r} are unreadable: {exc}") from exc
    if len(arrays["t"]) < count or arrays["layers"].shape[1:] != (n_params,):
        raise ValueError(
            f"checkpoint records {str(path)!r} hold {len(arrays['t'])} rows of "
            f"{arrays['layers'].shape[1:]} distances; the checkpoint needs {count} of ({n_params},)"
        )
    rows = {key: arrays[key][:count].tolist() for key in _ROW_KEYS if key != "layers"}
    rows["layers"] = list(arrays["layers"][:count])
    return rows


# ----------------------------------------------------------------------------- the run
def train(
    config: TrainConfig,
    runs: str | Path = "runs",
    *,
    runtime: Runtime | None = None,
    force: bool = False,
    resume: bool = True,
    on_checkpoint: Callable[[int], None] | None = None,
    progress: bool | None = None,
) -> Run:
    """Train ``config`` and write its run folder under ``runs`` (or return the finished run).

    Parameters
    ----------
    config : TrainConfig
        The run (its identity: the folder is ``train-<hash>``).
    runs : path
        Parent folder of run folders (see :mod:`diffusion.records`).
    runtime : Runtime, optional
        Device, data folder, threads, progress bar and checkpoint cadence; ``Runtime()``
        if omitted. Never part of the run's identity.
    force : bool
        Train again even when a finished run exists.
    resume : bool
        Continue from the run folder's checkpoint when there is one.
    on_checkpoint : callable, optional
        Called with the step after each checkpoint is written (rank 0).
    progress : bool, optional
        Overrides ``runtime.progress``.

    Returns
    -------
    diffusion.records.Run
        Records (the traces, see the module docstring) and summary (final accuracies, steps,
        epochs, cumulative wall time, device, replicas and batch-norm mode).

    Raises
    ------
    NonFiniteLossError
        When the training loss becomes NaN or infinite.
    ValueError
        For a batch larger than the training split, a world size other than
        ``config.replicas``, or an unreadable checkpoint.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    runtime = check_runtime(runtime, Runtime())
    if progress is not None:
        runtime = replace(runtime, progress=bool(progress))
    path = run_dir(runs, config)
    if not force:
        run = find_run(runs, config)
        if run is not None:
            return run
    info = setup(runtime.device)
    try:
        if info.world_size != config.replicas:
            raise ValueError(
                f"config.replicas is {config.replicas} but this process is one of "
                f"{info.world_size} replicas (WORLD_SIZE); the world size is part of the run"
            )
        with torch_threads(runtime.threads):
            records, summary = _train(config, runtime, info, path, resume, on_checkpoint)
        run = save_run(runs, config, records, summary) if info.is_main else None
        if info.distributed:
            dist.barrier()
        # the other replicas read the folder rank 0 wrote; rank 0 returns what it wrote
        return run if run is not None else load_run(path)
    finally:
        teardown(info)


def _train(
    config: TrainConfig,
    runtime: Runtime,
    info: DistInfo,
    path: Path,
    resume: bool,
    on_checkpoint: Callable[[int], None] | None,
) -> tuple[dict, dict]:
    """Plan, loop, summary: the whole run on this replica."""
    device = info.device
    data = _load_data(config, runtime.data_root)
    plan = make_plan(config, data, info.world_size)
    model = _build_model(config, data, info).to(device)
    optimizer = make_sgd(list(model.parameters()), plan.schedule(0), config)
    recorder = Recorder(path, config, model, plan, info, runtime, on_checkpoint)
    start = recorder.resume(model, optimizer) if resume else recorder.fresh()
    net = data_parallel(model, info)
    order = BatchOrder(len(data.train), config.batch_size, config.seed)
    lo, hi = info.rank * plan.local_batch, (info.rank + 1) * plan.local_batch

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = order.indices(step)[lo:hi]
        x = data.train.x[idx].to(device, non_blocking=True)
        y = data.train.y[idx].to(device, non_blocking=True)
        if plan.augmentation == "none":
            return center_crop(x, plan.crop), y
        return augment_batch(x, plan.augmentation, _step_generator(config.seed, step), plan.crop), y

    def scores(step: int) -> tuple[float, ...] | None:
        if step not in plan.eval_at:
            return None
        average_running_stats(model, info)
        if not info.is_main:
            return None
        return (
            *_evaluate(model, data.train.x, data.train.y, device, plan.crop),
            *_evaluate(model, data.val.x, data.val.y, device, plan.crop),
        )

    bar = tqdm(
        total=plan.total_steps,
        initial=start,
        disable=not (runtime.progress and info.is_main),
        desc=f"{config.model}/{config.data} B={config.batch_size}",
        dynamic_ncols=True,
    )
    model.train()
    for step in range(start, plan.total_steps):
        x, y = batch(step)
        loss = F.cross_entropy(net(x), y)
        loss_value = _global_loss(loss, info)
        if not math.isfinite(loss_value):
            bar.close()
            raise NonFiniteLossError(step, loss_value, recorder.saved_step, path)
        if step in plan.record_at:
            distance = recorder.record(step, loss_value, scores(step))
            bar.set_postfix(loss=f"{loss_value:.4f}", dist=f"{distance:.3f}", refresh=False)
        for group in optimizer.param_groups:
            group["lr"] = plan.schedule(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        bar.update(1)
        if recorder.due(step + 1):
            average_running_stats(model, info)
            recorder.save(step + 1, model, optimizer)
    bar.close()
    if not recorder.finished:  # the last point: loss at w_T, running statistics untouched
        # The checkpoint of w_T is written before the final row, keeping the random state
        # from before it, so a run killed before its records are written resumes here and
        # computes the same row again. In one process it is finished while the final
        # evaluation runs (which leaves the weights and buffers alone): written, with a core
        # that torch's threads leave free, else synced to disk; under DDP the evaluation
        # averages the buffers in place, so it waits.
        states = recorder.rng_states()
        x, y = batch(plan.total_steps)
        loss_value = _global_loss(_loss_keeping_buffers(model, x, y), info)
        average_running_stats(model, info)
        complete = recorder.save(
            plan.total_steps, model, None, states=states, background=not info.distributed
        )
        try:
            recorder.record(plan.total_steps, loss_value, scores(plan.total_steps))
        finally:
            complete()
    return recorder.records(), _summary(config, info, data, plan, recorder)


def _summary(config: TrainConfig, info: DistInfo, data, plan: Plan, recorder: Recorder) -> dict:
    """The run's summary.json (final scores are rank 0's, which alone evaluates)."""
    rows = recorder.rows
    final = {f"final_{key}": float(rows[key][-1]) if info.is_main else None for key in EVAL_KEYS}
    n_train = len(data.train)
    return {
        **final,
        "final_distance": float(rows["distance"][-1]),
        "steps": plan.total_steps,
        "epochs": plan.total_steps * config.batch_size / n_train,
        "regime_factor": plan.regime.factor,
        "peak_lr": plan.schedule.peak_lr,
        "steps_per_epoch": n_train / config.batch_size,
        "n_train": n_train,
        "n_val": len(data.val),
        "wall_time_s": recorder.wall_time,
        "resumed_from": recorder.start_step,
        "device": str(info.device),
        "world_size": info.world_size,
        "bn_mode": config.bn_mode,
        "parameters": recorder.names,
    }


def _core_to_spare() -> bool:
    """Whether this process may run on more cores than torch's threads use.

    A writer thread beside torch's OpenMP team on a machine without a free core takes turns
    with the team's threads, which wait for one another at every operator: on two cores
    with two torch threads the background write cost more than writing first.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform (macOS, Windows)
        cores = os.cpu_count() or 1
    return cores > torch.get_num_threads()


def _loss_keeping_buffers(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training-mode loss of a batch, leaving the running statistics as they were."""
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    with torch.no_grad():
        loss = F.cross_entropy(model(x), y)
    for k, v in model.named_buffers():
        v.copy_(buffers[k])
    return loss


def _global_loss(loss: torch.Tensor, info: DistInfo) -> float:
    """The loss averaged over replicas (each replica's is the mean over its equal slice)."""
    value = loss.detach()
    if info.distributed:
        value = value.clone()
        dist.all_reduce(value)
        value /= info.world_size
    return float(value)


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads (unchanged for ``None``)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# the one run protocol: diffusion.records.run(TrainConfig(...)) trains
from diffusion.records import register_runner  # noqa: E402

register_runner(TrainConfig, train)
