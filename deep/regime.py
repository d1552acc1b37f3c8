"""Learning-rate regimes for large batches: scaling, warm-up, regime adaptation, per-step schedules.

Everything is stated against one explicit *base batch size* ``B_0`` (the small batch the
recipe was tuned for):

* :func:`scale_lr` -- ``none``: ``lr``; ``linear`` (Goyal et al. 2017): ``lr B / B_0``;
  ``sqrt`` (Hoffer et al. 2017): ``lr sqrt(B / B_0)``.
* :func:`adapt_regime` -- *regime adaptation*: the total number of epochs and every
  epoch-based milestone are multiplied by ``B / B_0``, so the large batch makes as many
  updates, and drops its learning rate at the same updates, as the small batch.
* :class:`Schedule` -- the learning rate as a pure function of the step (optax style):
  linear warm-up to the peak, then piecewise constant with a factor at each milestone.

An epoch is ``n_samples`` samples. The trainer draws batches from a stream of per-epoch
permutations, so every batch is full and a batch may straddle an epoch boundary; ``E``
epochs at batch ``B`` are ``ceil(E n / B)`` steps and a milestone at epoch ``m`` is the step
``ceil(m n / B)``. Hence ``E B / B_0`` epochs at batch ``B`` are exactly as many steps as
``E`` epochs at ``B_0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from diffusion.validation import check_choice, check_int, check_real

__all__ = [
    "LR_RULES",
    "scale_lr",
    "adapt_regime",
    "AdaptedRegime",
    "steps_for_epochs",
    "Schedule",
    "build_schedule",
]

LR_RULES = ("none", "linear", "sqrt")


def scale_lr(base_lr: float, batch_size: int, base_batch_size: int, rule: str) -> float:
    """The learning rate for ``batch_size`` from the one tuned at ``base_batch_size``.

    Parameters
    ----------
    base_lr : float
        Learning rate at the base batch size (positive).
    batch_size, base_batch_size : int
        ``B`` and ``B_0``.
    rule : {"none", "linear", "sqrt"}
        Multiply by 1, ``B / B_0`` or ``sqrt(B / B_0)``.

    Examples
    --------
    >>> scale_lr(0.1, 4096, 128, "sqrt")  # doctest: +ELLIPSIS
    0.5656...
    """
    base_lr = check_real("base_lr", base_lr, 0.0, low_open=True)
    batch_size = check_int("batch_size", batch_size, 1)
    base_batch_size = check_int("base_batch_size", base_batch_size, 1)
    check_choice("rule", rule, LR_RULES)
    ratio = batch_size / base_batch_size
    return base_lr * {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[rule]


@dataclass(frozen=True)
class AdaptedRegime:
    """Epochs and milestones after regime adaptation.

    Attributes
    ----------
    epochs : float
        Total epochs.
    milestones : tuple of float
        Epochs at which the learning rate changes.
    factor : float
        The multiplier applied, ``B / B_0`` (1 without adaptation).
    """

    epochs: float
    milestones: tuple[float, ...]
    factor: float


def adapt_regime(
    epochs: float,
    milestones: tuple[float, ...],
    batch_size: int,
    base_batch_size: int,
    adapt: bool = True,
) -> AdaptedRegime:
    """Multiply the epochs and every epoch milestone by ``B / B_0`` (when ``adapt``).

    Parameters
    ----------
    epochs : float
        Epochs of the base (small-batch) regime; positive.
    milestones : sequence of float
        Increasing epochs, each in ``(0, epochs)``, at which the learning rate changes.
    batch_size, base_batch_size : int
        ``B`` and ``B_0``.
    adapt : bool
        Without adaptation the regime is returned unchanged (factor 1).

    Examples
    --------
    >>> adapt_regime(20, (10, 15), 4096, 128)
    AdaptedRegime(epochs=640.0, milestones=(320.0, 480.0), factor=32.0)
    """
    epochs = check_real("epochs", epochs, 0.0, low_open=True)
    batch_size = check_int("batch_size", batch_size, 1)
    base_batch_size = check_int("base_batch_size", base_batch_size, 1)
    ms = tuple(check_real("milestones", m, 0.0, low_open=True) for m in milestones)
    if any(b <= a for a, b in zip(ms, ms[1:], strict=False)):
        raise ValueError(f"milestones must be strictly increasing, got {tuple(milestones)!r}")
    if ms and ms[-1] >= epochs:
        raise ValueError(
            f"milestones must lie before the last epoch {epochs}, got {tuple(milestones)!r}"
        )
    factor = batch_size / base_batch_size if adapt else 1.0
    return AdaptedRegime(epochs * factor, tuple(m * factor for m in ms), factor)


def steps_for_epochs(epochs: float, n_samples: int, batch_size: int) -> int:
    """``ceil(epochs n / B)``: the steps that cover ``epochs`` passes over ``n`` samples.

    Computed in exact rational arithmetic, so ``epochs * k`` at batch ``B * k`` gives the
    same count as ``epochs`` at ``B`` whenever ``k`` is an integer.
    """
    epochs = check_real("epochs", epochs, 0.0)
    n_samples = check_int("n_samples", n_samples, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    return math.ceil(Fraction(epochs).limit_denominator(10**9) * n_samples / batch_size)


@dataclass(frozen=True)
class Schedule:
    """Learning rate as a pure function of the step: ``schedule(k)`` is the rate of update ``k``.

    Parameters
    ----------
    peak_lr : float
        Rate after warm-up and before the first milestone.
    boundaries : tuple of int
        Non-decreasing steps at which the rate is multiplied by the matching ``factors`` entry
        (cumulatively): from step ``boundaries[i]`` on, the rate is
        ``peak_lr * factors[0] * ... * factors[i]``.
    factors : tuple of float
        One positive multiplier per boundary.
    warmup_steps : int
        Linear warm-up from ``warmup_start * peak_lr`` at step 0 to ``peak_lr`` at step
        ``warmup_steps`` (Goyal et al.); 0 for none.
    warmup_start : float
        Fraction of the peak at step 0, in ``[0, 1]``.
    """

    peak_lr: float
    boundaries: tuple[int, ...] = ()
    factors: tuple[float, ...] = ()
    warmup_steps: int = 0
    warmup_start: float = 0.0

    def __post_init__(self) -> None:
        peak_lr = check_real("peak_lr", self.peak_lr, 0.0, low_open=True)
        if len(self.boundaries) != len(self.factors):
            raise ValueError(
                f"boundaries ({len(self.boundaries)}) and factors ({len(self.factors)}) "
                "must have the same length"
            )
        boundaries = tuple(check_int("boundaries", b, 0) for b in self.boundaries)
        if any(b < a for a, b in zip(boundaries, boundaries[1:], strict=False)):
            raise ValueError(f"boundaries must be non-decreasing, got {self.boundaries!r}")
        factors = tuple(check_real("factors", f, 0.0, low_open=True) for f in self.factors)
        warmup_steps = check_int("warmup_steps", self.warmup_steps, 0)
        warmup_start = check_real("warmup_start", self.warmup_start, 0.0, 1.0)
        object.__setattr__(self, "peak_lr", peak_lr)
        object.__setattr__(self, "boundaries", boundaries)
        object.__setattr__(self, "factors", factors)
        object.__setattr__(self, "warmup_steps", warmup_steps)
        object.__setattr__(self, "warmup_start", warmup_start)

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step!r}")
        lr = self.peak_lr
        for boundary, factor in zip(self.boundaries, self.factors, strict=True):
            if step >= boundary:
                lr *= factor
        if step < self.warmup_steps:
            lr *= self.warmup_start + (1.0 - self.warmup_start) * step / self.warmup_steps
        return lr


def build_schedule(
    *,
    base_lr: float,
    batch_size: int,
    base_batch_size: int,
    lr_scaling: str,
    epochs: float,
    milestones: tuple[float, ...],
    lr_decay: float | tuple[float, ...],
    warmup_epochs: float,
    n_samples: int,
    regime_adaptation: bool,
) -> tuple[Schedule, AdaptedRegime, int]:
    """The whole regime of a run: ``(schedule, adapted regime, total steps)``.

    The peak rate is :func:`scale_lr`; epochs and milestones go through :func:`adapt_regime`
    and are converted to steps with :func:`steps_for_epochs`; ``lr_decay`` is the factor at
    every milestone (or one factor per milestone). The warm-up lasts ``warmup_epochs``
    epochs of the *run* (not adapted) and starts from the unscaled ``base_lr`` as in Goyal
    et al. (from ``base_lr`` to the scaled rate).
    """
    peak = scale_lr(base_lr, batch_size, base_batch_size, lr_scaling)
    regime = adapt_regime(epochs, milestones, batch_size, base_batch_size, regime_adaptation)
    decays = (
        tuple(lr_decay)
        if isinstance(lr_decay, (tuple, list))
        else (lr_decay,) * len(regime.milestones)
    )
    if len(decays) != len(regime.milestones):
        raise ValueError(
            f"lr_decay has {len(decays)} factors for {len(regime.milestones)} milestones"
        )
    total = steps_for_epochs(regime.epochs, n_samples, batch_size)
    boundaries = tuple(steps_for_epochs(m, n_samples, batch_size) for m in regime.milestones)
    warmup_epochs = check_real("warmup_epochs", warmup_epochs, 0.0)
    warmup = steps_for_epochs(warmup_epochs, n_samples, batch_size)
    schedule = Schedule(
        peak,
        boundaries,
        tuple(float(d) for d in decays),
        warmup,
        min(base_lr / peak, 1.0) if warmup else 0.0,
    )
    return schedule, regime, total
