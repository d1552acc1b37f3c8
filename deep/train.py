"""The trainer: SGD on a classifier, recording how far the weights travel, ||w_t - w_0||.

Read it top to bottom: :class:`TrainConfig` says what to run, :func:`train` runs it. Each
step takes the next batch of a seeded order (a pure function of the step), applies the
augmentation (seeded by the step), sets the learning rate from the schedule (a pure function
of the step), and makes one SGD update; the optimiser (and its momentum) lives for the whole
run. At log-spaced steps, at every epoch end and at evaluation points it records the
distance from the initial weights, over the whole network and per parameter tensor, the
minibatch loss and the learning rate; at evaluation points also accuracy and loss on the
training and validation sets (evaluation mode: running statistics, no splitting).

The records form a :class:`diffusion.metrics.Trace` (prefix ``""``): ``t`` is the number of
updates made, ``distance`` = ||w_t - w_0|| over all parameters, extras ``loss`` (loss of
the minibatch of step ``t`` at ``w_t``, in training mode), ``lr`` (rate of update ``t + 1``),
``dist.<parameter name>`` and ``train_acc``/``train_loss``/``val_acc``/``val_loss`` (NaN
where not evaluated). The evaluation points alone form a second trace, prefix ``"eval."``.

Checkpoints (model, optimiser, step, initial weights, records so far, RNG states) are
written atomically to ``checkpoint.pt`` in the run folder every ``checkpoint_every`` steps
and at the end; a run whose process died resumes from it and gives the same weights and
records, bit for bit on CPU. A non-finite loss stops the run with
:class:`NonFiniteLossError`, leaving the last good checkpoint in place.
"""

from __future__ import annotations

import io
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from deep.data import (
    AUGMENTATIONS,
    DATASETS,
    BatchOrder,
    augment_batch,
    center_crop,
    default_augmentation,
    load_dataset,
)
from deep.distributed import DistInfo, setup, teardown
from deep.ghost_bn import convert_to_ghost
from deep.models import MODELS, build
from deep.regime import LR_RULES, build_schedule, steps_for_epochs
from diffusion.metrics import Trace, log_schedule
from diffusion.records import (
    IncompleteRunError,
    Run,
    atomic_write_bytes,
    config_hash,
    load_run,
    run_dir,
    save_run,
)

__all__ = [
    "TrainConfig",
    "train",
    "NonFiniteLossError",
    "CHECKPOINT_FILE",
    "load_checkpoint",
    "load_model",
]

CHECKPOINT_FILE = "checkpoint.pt"
EVAL_KEYS = ("train_acc", "train_loss", "val_acc", "val_loss")
_EVAL_BATCH = 1024


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite at the weights after ``step`` updates."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(
            f"non-finite training loss {loss} at step {step} (the loss of the weights "
            f"after {step} updates); the last good checkpoint is kept"
        )
        self.step = step
        self.loss = loss


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TrainConfig:
    """What to train, on what, and how.

    Parameters
    ----------
    model, data : str
        Names in :data:`deep.models.MODELS` and :data:`deep.data.DATASETS`.
    data_root : str, optional
        Folder of user data files (``mnist``, ``cifar10``, ``cifar100``).
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
    checkpoint_every : int, optional
        Write a checkpoint every so many steps (always at the end).
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` is CUDA when available.
    augment : {"auto", "none", "cifar"}
        Training augmentation; ``"auto"`` is the paper's for the dataset.
    max_steps : int, optional
        Stop after this many updates even if the regime asks for more.
    """

    model: str
    data: str
    data_root: str | None = None
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
    checkpoint_every: int | None = None
    device: str = "auto"
    augment: str = "auto"
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; valid names are {sorted(MODELS)}")
        if self.data not in DATASETS:
            raise ValueError(f"unknown dataset {self.data!r}; valid names are {list(DATASETS)}")
        for name in ("batch_size", "base_batch_size", "trace_per_decade"):
            _check_int(name, getattr(self, name), 1)
        for name in ("ghost_size", "checkpoint_every", "max_steps"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 2 if name == "ghost_size" else 1)
        if self.ghost_size is not None and self.ghost_size > self.batch_size:
            raise ValueError(
                f"ghost_size ({self.ghost_size}) must not exceed batch_size ({self.batch_size})"
            )
        _check_int("seed", self.seed, 0)
        for name, positive in (
            ("epochs", True),
            ("lr", True),
            ("lr_decay", True),
            ("momentum", False),
            ("weight_decay", False),
            ("warmup_epochs", False),
        ):
            _check_number(name, getattr(self, name), positive)
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, True)
        if self.lr_scaling not in LR_RULES:
            raise ValueError(f"lr_scaling must be one of {LR_RULES}, got {self.lr_scaling!r}")
        if self.augment not in ("auto", *AUGMENTATIONS):
            raise ValueError(
                f"augment must be one of {('auto', *AUGMENTATIONS)}, got {self.augment!r}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if not (self.eval_every is None or self.eval_every == "epoch"):
            _check_int("eval_every", self.eval_every, 1)
        if not isinstance(self.regime_adaptation, bool):
            raise TypeError(f"regime_adaptation must be a bool, got {self.regime_adaptation!r}")
        milestones = tuple(self.milestones)
        for m in milestones:
            _check_number("milestones", m, True)
        object.__setattr__(self, "milestones", milestones)
        for name in ("epochs", "lr", "lr_decay", "momentum", "weight_decay", "warmup_epochs"):
            object.__setattr__(self, name, float(getattr(self, name)))


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_number(name: str, value: object, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(
            f"{name} must be a finite {'positive' if positive else 'non-negative'} number, "
            f"got {value!r}"
        )


# ----------------------------------------------------------------------------- pieces
def _step_generator(seed: int, step: int) -> torch.Generator:
    """The augmentation generator of one step (a pure function of seed and step)."""
    state = np.random.SeedSequence([seed, step, 0xA09]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _distances(params: list[torch.Tensor], initial: list[torch.Tensor]) -> np.ndarray:
    """||p - p_0|| of every parameter tensor, in the parameters' precision; float64 on the host.

    One fused multi-tensor kernel each for the differences and the norms (one launch on a GPU).
    """
    with torch.no_grad():
        norms = torch._foreach_norm(torch._foreach_sub(params, initial))
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
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(state["python"])


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`train` (a run folder or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    return torch.load(path, map_location="cpu", weights_only=False)


def load_model(run: Run | str | Path) -> nn.Module:
    """The trained model of a finished run (final weights from its checkpoint), in eval mode."""
    run = run if isinstance(run, Run) else load_run(run)
    cfg = run.config
    data = _load_data(TrainConfig(**{**cfg, "milestones": tuple(cfg["milestones"])}))
    model = _build_model(TrainConfig(**{**cfg, "milestones": tuple(cfg["milestones"])}), data)
    model.load_state_dict(load_checkpoint(run.path)["model"])
    return model.eval()


def _load_data(config: TrainConfig):
    if config.data == "random":
        probe = build(config.model)
        return load_dataset(
            "random", seed=config.seed, input_shape=probe.input_shape, num_classes=probe.num_classes
        )
    return load_dataset(config.data, config.data_root, config.seed)


def _build_model(config: TrainConfig, data) -> nn.Module:
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
        convert_to_ghost(model, config.ghost_size)
    return model


# ----------------------------------------------------------------------------- the run
def train(
    config: TrainConfig,
    root: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    force: bool = False,
    on_checkpoint: Callable[[int], None] | None = None,
) -> Run:
    """Train ``config`` and write its run folder under ``root`` (or return the finished run).

    Parameters
    ----------
    config : TrainConfig
        The run.
    root : path
        Parent folder of run folders (see :mod:`diffusion.records`).
    resume : bool
        Continue from the run folder's checkpoint when there is one.
    progress : bool
        Show a progress bar.
    force : bool
        Train again even when a finished run exists.
    on_checkpoint : callable, optional
        Called with the step after each checkpoint is written (rank 0).

    Returns
    -------
    diffusion.records.Run
        Records (the traces, see the module docstring) and summary (final accuracies, steps,
        epochs, wall time, device).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    path = run_dir(root, config)
    if not force:
        try:
            run = load_run(path)
            if run.meta.get("hash") == config_hash(config):
                return run
        except IncompleteRunError:
            pass
    info = setup(config.device)
    try:
        records, summary = _train(config, info, path, resume, progress, on_checkpoint)
        if info.is_main:
            save_run(root, config, records, summary)
        if info.distributed:
            dist.barrier()
        return load_run(path)
    finally:
        teardown(info)


def _train(
    config: TrainConfig, info: DistInfo, path: Path, resume: bool, progress: bool, on_checkpoint
) -> tuple[dict, dict]:
    started = time.perf_counter()
    device = info.device
    # ---- data, model, regime
    data = _load_data(config)
    model = _build_model(config, data).to(device)
    n_train = len(data.train)
    local_batch, rest = divmod(config.batch_size, info.world_size)
    if rest:
        raise ValueError(
            f"batch_size {config.batch_size} is not divisible by the {info.world_size} replicas"
        )
    if config.ghost_size is not None and config.ghost_size > local_batch:
        raise ValueError(
            f"ghost_size {config.ghost_size} exceeds the per-replica batch {local_batch}"
        )
    schedule, regime, total_steps = build_schedule(
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
        total_steps = min(total_steps, config.max_steps)
    augmentation = default_augmentation(config.data) if config.augment == "auto" else config.augment
    crop = tuple(data.input_shape[1:]) if len(data.input_shape) == 3 else None  # image H, W
    order = BatchOrder(n_train, config.batch_size, config.seed)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=schedule(0),
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    names = [name for name, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]

    # ---- when to record, evaluate, checkpoint
    epoch_ends = [
        steps_for_epochs(e, n_train, config.batch_size) for e in range(1, int(regime.epochs) + 1)
    ]
    epoch_ends = [s for s in epoch_ends if s <= total_steps]
    if config.eval_every == "epoch":
        eval_at = set(epoch_ends)
    elif config.eval_every is None:
        eval_at = set()
    else:
        eval_at = set(range(config.eval_every, total_steps + 1, config.eval_every))
    eval_at.add(total_steps)
    record_at = (
        set(log_schedule(total_steps, config.trace_per_decade, start=0).tolist())
        if total_steps >= 1
        else {0}
    )
    record_at |= set(epoch_ends) | eval_at

    # ---- fresh start or resume
    rec: dict[str, list] = {
        "t": [],
        "distance": [],
        "loss": [],
        "lr": [],
        "layers": [],
        "train_acc": [],
        "train_loss": [],
        "val_acc": [],
        "val_loss": [],
    }
    checkpoint_path = path / CHECKPOINT_FILE
    start = 0
    initial = [p.detach().clone() for p in params]
    if resume and checkpoint_path.is_file():
        ckpt = load_checkpoint(checkpoint_path)
        if ckpt["hash"] != config_hash(config):
            raise ValueError(
                f"checkpoint {str(checkpoint_path)!r} belongs to another configuration"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        initial = [t.to(device) for t in ckpt["initial"]]
        rec = ckpt["records"]
        start = ckpt["step"]
        rng = ckpt["rng"][info.rank] if info.rank < len(ckpt["rng"]) else ckpt["rng"][0]
        _set_rng_state(rng)
    else:
        torch.manual_seed(config.seed + 7919 * (info.rank + 1))  # dropout stream of this replica
    net = model
    if info.distributed:
        net = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            broadcast_buffers=False,
        )

    def save_checkpoint(step: int) -> None:
        states = [_rng_state()]
        if info.distributed:
            states = [None] * info.world_size
            dist.all_gather_object(states, _rng_state())
        if info.is_main:
            buf = io.BytesIO()
            torch.save(
                {
                    "step": step,
                    "hash": config_hash(config),
                    "config": asdict(config),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "initial": [t.cpu() for t in initial],
                    "records": rec,
                    "rng": states,
                    "schedule": asdict(schedule),
                },
                buf,
            )
            atomic_write_bytes(checkpoint_path, buf.getvalue())
            if on_checkpoint is not None:
                on_checkpoint(step)
        if info.distributed:
            dist.barrier()

    def record(step: int, loss: float) -> None:
        layers = _distances(params, initial)
        rec["t"].append(step)
        rec["distance"].append(float(np.sqrt(np.sum(layers**2))))
        rec["layers"].append(layers)
        rec["loss"].append(loss)
        rec["lr"].append(schedule(step))
        evaluated = step in eval_at and info.is_main
        scores = (
            (
                *_evaluate(model, data.train.x, data.train.y, device, crop),
                *_evaluate(model, data.val.x, data.val.y, device, crop),
            )
            if evaluated
            else (math.nan,) * 4
        )
        for key, value in zip(EVAL_KEYS, scores, strict=True):
            rec[key].append(value)

    # ---- the loop
    bar = tqdm(
        total=total_steps,
        initial=start,
        disable=not (progress and info.is_main),
        desc=f"{config.model}/{config.data} B={config.batch_size}",
        dynamic_ncols=True,
    )
    model.train()
    step = start
    finished = bool(rec["t"]) and rec["t"][-1] == total_steps  # killed after the last checkpoint
    for step in range(start, total_steps + (0 if finished else 1)):
        idx = order.indices(step)[info.rank * local_batch : (info.rank + 1) * local_batch]
        x = data.train.x[idx].to(device, non_blocking=True)
        y = data.train.y[idx].to(device, non_blocking=True)
        x = augment_batch(x, augmentation, _step_generator(config.seed, step), crop)
        if step == total_steps:  # the last point: loss at w_T without touching running statistics
            buffers = {k: v.clone() for k, v in model.named_buffers()}
            with torch.no_grad():
                loss_value = _global_loss(F.cross_entropy(model(x), y), info)
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
            record(step, loss_value)
            break
        loss = F.cross_entropy(net(x), y)
        loss_value = _global_loss(loss, info)
        if not math.isfinite(loss_value):
            bar.close()
            raise NonFiniteLossError(step, loss_value)
        if step in record_at:
            record(step, loss_value)
            bar.set_postfix(
                loss=f"{loss_value:.4f}", dist=f"{rec['distance'][-1]:.3f}", refresh=False
            )
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        bar.update(1)
        if (
            config.checkpoint_every
            and (step + 1) % config.checkpoint_every == 0
            and step + 1 < total_steps
        ):
            save_checkpoint(step + 1)
    bar.close()
    save_checkpoint(total_steps)

    # ---- records and summary
    t = np.asarray(rec["t"], dtype=np.int64)
    layers = np.asarray(rec["layers"])
    extras = {"loss": np.asarray(rec["loss"]), "lr": np.asarray(rec["lr"])}
    extras.update({f"dist.{name}": layers[:, i] for i, name in enumerate(names)})
    for key in EVAL_KEYS:
        extras[key] = np.asarray(rec[key], dtype=float)
    trace = Trace(t, np.asarray(rec["distance"]), extras)
    evaluated = np.isin(t, sorted(eval_at))
    eval_trace = Trace(
        t[evaluated],
        trace.distance[evaluated],
        {k: extras[k][evaluated] for k in EVAL_KEYS},
    )
    records = {**trace.to_arrays(""), **eval_trace.to_arrays("eval.")}
    summary = {
        "final_val_acc": float(eval_trace.extras["val_acc"][-1]) if info.is_main else None,
        "final_val_loss": float(eval_trace.extras["val_loss"][-1]) if info.is_main else None,
        "final_train_acc": float(eval_trace.extras["train_acc"][-1]) if info.is_main else None,
        "final_train_loss": float(eval_trace.extras["train_loss"][-1]) if info.is_main else None,
        "final_distance": float(trace.distance[-1]),
        "steps": int(total_steps),
        "epochs": total_steps * config.batch_size / n_train,
        "regime_factor": regime.factor,
        "peak_lr": schedule.peak_lr,
        "steps_per_epoch": n_train / config.batch_size,
        "n_train": n_train,
        "n_val": len(data.val),
        "wall_time_s": time.perf_counter() - started,
        "resumed_from": start,
        "device": str(device),
        "world_size": info.world_size,
        "parameters": names,
    }
    return records, summary


def _global_loss(loss: torch.Tensor, info: DistInfo) -> float:
    """The loss averaged over replicas (each replica's is the mean over its equal slice)."""
    value = loss.detach()
    if info.distributed:
        value = value.clone()
        dist.all_reduce(value)
        value /= info.world_size
    return float(value)
