"""Experiment profiles for the large-batch table: the paper's recipe and a quick CPU version.

A :class:`Recipe` is one row of the table -- a network, its dataset and its training
regime, with the small and large batch sizes. :data:`REGIMES` are the table's five columns;
:func:`regime_settings` turns a recipe and a column into the keyword arguments of
``deep.train.TrainConfig``:

============== ========== ================================ ========= ==================
column         batch      learning rate                    ghost BN  epochs, milestones
============== ========== ================================ ========= ==================
SB             ``B_S``    ``lr``                           --        as in the recipe
LB             ``B_L``    ``lr``                           --        as in the recipe
LB+LR          ``B_L``    ``lr * sqrt(B_L / B_S)``         --        as in the recipe
LB+LR+GBN      ``B_L``    ``lr * sqrt(B_L / B_S)``         ``ghost`` as in the recipe
LB+LR+GBN+RA   ``B_L``    ``lr * sqrt(B_L / B_S)``         ``ghost`` stretched by B_L / B_S
============== ========== ================================ ========= ==================

The learning-rate base is always the small batch ``B_S`` (the reference code used 256 in
one driver and the ghost size in the other); regime adaptation multiplies the epochs and
every milestone by ``B_L / B_S`` so the large batch takes as many steps, and drops its
learning rate at the same steps, as the small batch. Gradient clipping at norm 5 is part of
the paper's recipe (the reference code clipped every step); momentum and weight decay are
explicit per recipe and are never silently reset.

Profiles
--------
``quick``
    CPU, about ten minutes. F1 (784-512x5-10 with batch norm) on MNIST-5k -- the 5000-digit
    MNIST subset, split 4000 train / 1000 validation -- with ``B_S = 32`` and ``B_L = 1024``
    (the paper's ratio 4096/128 = 32, scaled to a training set 15x smaller than MNIST's),
    ghost batch 32, 32 epochs with drops at 16 and 24 (RA: 1024 epochs, 4000 updates). At 32
    epochs SB has converged: the table reruns SB for 64 epochs as the control of its
    ``sb_converged`` check. (A BN MLP on MNIST-1D was dropped from this profile: its SB still
    improves after 128 epochs, so no converged table fits a CPU budget.)
``paper``
    The paper's seven networks with their datasets, epochs and batch sizes
    (``B_S = 128`` / ``B_L = 4096``, ghost 128; AlexNet ``B_S = 256`` and
    ``B_L = 4096`` or ``8192``). Needs a GPU and user-supplied CIFAR / ImageNet files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from diffusion.validation import check_int, check_real

__all__ = [
    "REGIMES",
    "EXTRA_REGIMES",
    "ALL_REGIMES",
    "GOYAL_WARMUP_EPOCHS",
    "Recipe",
    "Profile",
    "PROFILES",
    "QUICK",
    "PAPER",
    "get_profile",
    "regime_settings",
    "convergence_settings",
    "CONVERGENCE_FACTOR",
]

REGIMES: tuple[str, ...] = ("SB", "LB", "LB+LR", "LB+LR+GBN", "LB+LR+GBN+RA")
"""The table's columns, in the paper's order."""

EXTRA_REGIMES: tuple[str, ...] = ("LB+LIN+WU", "LB+LR-CLIP")
"""Optional columns beyond the paper's: ``LB+LIN+WU`` is Goyal et al.'s recipe (learning rate
scaled linearly, ``B_L / B_S``, reached by a linear warm-up of :data:`GOYAL_WARMUP_EPOCHS`,
no gradient clipping); ``LB+LR-CLIP`` is the paper's ``LB+LR`` without its clipping. Beside
``LB+LR`` (sqrt rule with clipping, as the paper's code clipped every step) they set warm-up
against clipping."""

ALL_REGIMES: tuple[str, ...] = REGIMES + EXTRA_REGIMES

GOYAL_WARMUP_EPOCHS = 5.0
"""Warm-up of ``LB+LIN+WU``: Goyal et al.'s five epochs."""


@dataclass(frozen=True)
class Recipe:
    """One row of the table: a network, a dataset and the small-batch training regime.

    Parameters
    ----------
    name : str
        Row label (``"F1"``, ``"ResNet44"``...).
    model, data : str
        Names for ``deep.models.build`` and ``deep.data.load_dataset``.
    epochs : int
        Epochs of the small-batch regime (regime adaptation stretches them).
    small_batch, large_batch : int
        ``B_S`` and ``B_L``; ``large_batch > small_batch``.
    lr : float
        Learning rate at ``small_batch``.
    milestones : tuple of int
        Epochs at which the learning rate is multiplied by ``lr_decay``.
    lr_decay : float
        Factor applied at each milestone, in (0, 1].
    momentum, weight_decay : float
        SGD settings, explicit (never silently dropped).
    ghost_size : int
        Ghost batch size of the ``+GBN`` columns; divides ``large_batch``.
    grad_clip : float or None
        Gradient-norm clipping threshold.
    warmup_epochs : float
        Linear warm-up length (0 for none).
    augment : {"auto", "none", "cifar", "imagenet"}
        Training augmentation (``"auto"``: the paper's crops and flips for CIFAR and ImageNet,
        none for MNIST -- the reference code's horizontal flips of digits are not copied).
    eval_every : int, "epoch" or None
        Evaluation interval handed to the trainer (``None``: only at the end).
    trace_per_decade : int
        Density of the log-spaced distance trace.
    paper : tuple of float or None
        The paper's reported validation accuracies (percent) for the five columns, shown
        beside the measured row; ``None`` when the paper has none.
    note : str
        Free text (dataset sizes, departures from the reference code).
    """

    name: str
    model: str
    data: str
    epochs: int
    small_batch: int
    large_batch: int
    lr: float
    milestones: tuple[int, ...] = ()
    lr_decay: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    ghost_size: int = 128
    grad_clip: float | None = 5.0
    warmup_epochs: float = 0.0
    augment: str = "auto"
    eval_every: int | str | None = None
    trace_per_decade: int = 10
    paper: tuple[float, ...] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("name", "model", "data"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise TypeError(f"{name} must be a non-empty string, got {value!r}")
        for name in ("epochs", "small_batch", "large_batch", "ghost_size", "trace_per_decade"):
            check_int(name, getattr(self, name), 1)
        if self.large_batch <= self.small_batch:
            raise ValueError(
                f"large_batch must exceed small_batch ({self.small_batch}), got {self.large_batch}"
            )
        if self.large_batch % self.ghost_size:
            raise ValueError(
                f"ghost_size must divide large_batch ({self.large_batch}), got {self.ghost_size}"
            )
        check_real("lr", self.lr, 0, low_open=True)
        check_real("momentum", self.momentum, 0)
        check_real("weight_decay", self.weight_decay, 0)
        check_real("warmup_epochs", self.warmup_epochs, 0)
        check_real("lr_decay", self.lr_decay, 0, 1, low_open=True)
        if self.grad_clip is not None:
            check_real("grad_clip", self.grad_clip, 0)
        if not isinstance(self.milestones, tuple):
            raise TypeError(f"milestones must be a tuple, got {type(self.milestones).__name__}")
        for m in self.milestones:
            check_int("milestones", m, 1)
        if list(self.milestones) != sorted(set(self.milestones)) or any(
            m >= self.epochs for m in self.milestones
        ):
            raise ValueError(
                f"milestones must be increasing epochs below epochs={self.epochs}, "
                f"got {self.milestones}"
            )
        if self.augment not in ("auto", "none", "cifar", "imagenet"):
            raise ValueError(
                f"augment must be 'auto', 'none', 'cifar' or 'imagenet', got {self.augment!r}"
            )
        if self.eval_every not in ("epoch", None):
            check_int("eval_every", self.eval_every, 1)
        if self.paper is not None and len(self.paper) != len(REGIMES):
            raise ValueError(f"paper must hold {len(REGIMES)} accuracies, got {self.paper!r}")

    @property
    def ratio(self) -> float:
        """``B_L / B_S``, the factor of regime adaptation."""
        return self.large_batch / self.small_batch


@dataclass(frozen=True)
class Profile:
    """A named set of recipes run over several seeds.

    Parameters
    ----------
    name : str
        ``"quick"`` or ``"paper"`` (or any label).
    recipes : tuple of Recipe
        The table's rows.
    seeds : int
        Default number of seeds per cell.
    device : str
        Device for the trainer (``"cpu"``, ``"cuda"``, ``"auto"``).
    description : str
        One paragraph shown with the table.
    regimes : tuple of str
        The columns run (a subset of :data:`REGIMES`, in that order).
    control : bool
        Also train SB ``CONVERGENCE_FACTOR`` times longer, the control of the table's
        ``sb_converged`` check (off for ``paper``, whose regimes are the published ones).
    """

    name: str
    recipes: tuple[Recipe, ...]
    seeds: int = 3
    device: str = "auto"
    description: str = ""
    regimes: tuple[str, ...] = field(default=REGIMES)
    control: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.recipes, tuple) or not self.recipes:
            raise ValueError(f"recipes must be a non-empty tuple of Recipe, got {self.recipes!r}")
        for r in self.recipes:
            if not isinstance(r, Recipe):
                raise TypeError(f"recipes must hold Recipe objects, got {type(r).__name__}")
        names = [r.name for r in self.recipes]
        if len(set(names)) != len(names):
            raise ValueError(f"recipe names must be unique, got {names}")
        check_int("seeds", self.seeds, 1)
        bad = [g for g in self.regimes if g not in ALL_REGIMES]
        if bad or not self.regimes:
            raise ValueError(f"regimes must be drawn from {ALL_REGIMES}, got {self.regimes!r}")

    def recipe(self, name: str) -> Recipe:
        """The recipe called ``name`` (case-insensitive; model names also match)."""
        for r in self.recipes:
            if name.lower() in (r.name.lower(), r.model.lower()):
                return r
        raise ValueError(
            f"model {name!r} is not in profile {self.name!r}: {[r.name for r in self.recipes]}"
        )

    def select(self, names: tuple[str, ...] | list[str] | None) -> Profile:
        """This profile restricted to the recipes named in ``names`` (all when ``None``).

        A name matches a row name or a model name, case-insensitively (``alexnet`` selects
        both AlexNet rows).
        """
        if not names:
            return self
        recipes: list[Recipe] = []
        for n in names:
            self.recipe(n)  # raises for a name that matches nothing
            for r in self.recipes:
                if n.lower() in (r.name.lower(), r.model.lower()) and r not in recipes:
                    recipes.append(r)
        return dataclasses.replace(self, recipes=tuple(recipes))


def regime_settings(recipe: Recipe, regime: str) -> dict[str, Any]:
    """Keyword arguments of ``deep.train.TrainConfig`` for one column of the table.

    Parameters
    ----------
    recipe : Recipe
        The row.
    regime : str
        One of :data:`REGIMES`.

    Returns
    -------
    dict
        ``model``, ``data``, ``batch_size``, ``epochs``, ``lr``, ``base_batch_size``,
        ``lr_scaling``, ``ghost_size``, ``regime_adaptation``, ``milestones``, ``lr_decay``,
        ``momentum``, ``weight_decay``, ``warmup_epochs``, ``grad_clip``, ``augment``,
        ``eval_every``, ``trace_per_decade``. The seed, data root and device are added by
        the caller. ``lr`` is the small-batch rate and ``base_batch_size`` is ``B_S``: the
        trainer applies the sqrt scaling and, with ``regime_adaptation``, stretches the
        epochs and milestones by ``batch_size / base_batch_size``.
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    if regime not in ALL_REGIMES:
        raise ValueError(f"regime must be one of {ALL_REGIMES}, got {regime!r}")
    large = regime != "SB"
    goyal = regime == "LB+LIN+WU"
    scaling = "linear" if goyal else ("sqrt" if "LR" in regime else "none")
    return {
        "model": recipe.model,
        "data": recipe.data,
        "batch_size": recipe.large_batch if large else recipe.small_batch,
        "epochs": recipe.epochs,
        "lr": recipe.lr,
        "base_batch_size": recipe.small_batch,
        "lr_scaling": scaling,
        "ghost_size": recipe.ghost_size if "GBN" in regime else None,
        "regime_adaptation": regime.endswith("RA"),
        "milestones": recipe.milestones,
        "lr_decay": recipe.lr_decay,
        "momentum": recipe.momentum,
        "weight_decay": recipe.weight_decay,
        "warmup_epochs": GOYAL_WARMUP_EPOCHS if goyal else recipe.warmup_epochs,
        "grad_clip": None if goyal or regime.endswith("-CLIP") else recipe.grad_clip,
        "augment": recipe.augment,
        "eval_every": recipe.eval_every,
        "trace_per_decade": recipe.trace_per_decade,
    }


CONVERGENCE_FACTOR = 2
"""SB is rerun ``CONVERGENCE_FACTOR`` times longer as the control of ``sb_converged``."""


def convergence_settings(recipe: Recipe) -> dict[str, Any]:
    """``TrainConfig`` keywords of SB trained :data:`CONVERGENCE_FACTOR` times longer.

    Epochs and every milestone are multiplied by the factor, so the schedule has the same
    shape; if SB had converged at ``recipe.epochs``, the longer run ends at the same
    validation accuracy within the seed spread (the table's ``sb_converged`` check).
    """
    kw = regime_settings(recipe, "SB")
    kw["epochs"] = recipe.epochs * CONVERGENCE_FACTOR
    kw["milestones"] = tuple(m * CONVERGENCE_FACTOR for m in recipe.milestones)
    return kw


# ----------------------------------------------------------------------------- quick (CPU)
QUICK = Profile(
    name="quick",
    device="cpu",
    seeds=5,
    regimes=ALL_REGIMES,
    description=(
        "CPU profile. F1 (784-512x5-10, batch norm) on MNIST-5k (4000 train / 1000 validation, "
        "a new split per seed), B_S=32 vs B_L=1024 (the paper's ratio 4096/128 = 32), ghost 32, "
        "32 epochs with lr x0.1 at epochs 16 and 24 -- long enough for SB to converge (SB at 64 "
        "epochs is run as the control of `sb_converged`); RA stretches epochs and milestones 32x "
        "(4000 updates, as many as SB). Two more columns set warm-up against clipping: "
        "LB+LIN+WU (Goyal et al.: linear lr scaling, 5-epoch warm-up, no clipping) and "
        "LB+LR-CLIP (the sqrt rule without the paper's clipping)."
    ),
    recipes=(
        Recipe(
            name="F1",
            model="f1",
            data="mnist5k",
            epochs=32,
            small_batch=32,
            large_batch=1024,
            lr=0.1,
            milestones=(16, 24),
            momentum=0.9,
            weight_decay=1e-4,
            ghost_size=32,
            paper=(98.27, 97.05, 97.55, 97.60, 98.53),
            note="paper row is F1 on full MNIST (60k), 50 epochs, B_S=128 / B_L=4096",
        ),
    ),
)

# ----------------------------------------------------------------------------- smoke (seconds)
SMOKE = Profile(
    name="smoke",
    device="cpu",
    seeds=2,
    description=(
        "Installation check in seconds, not a result: an MLP on scikit-learn's 8x8 digits, "
        "B_S=32 vs B_L=128, one epoch (the checks are expected to fail at this budget)."
    ),
    recipes=(
        Recipe(
            name="Digits",
            model="mlp_digits",
            data="digits",
            epochs=1,
            small_batch=32,
            large_batch=128,
            lr=0.05,
            ghost_size=32,
            weight_decay=0.0,
            paper=(1.0, 2.0, 3.0, 4.0, 5.0),
            note="placeholder paper numbers (no such row in the paper)",
        ),
    ),
)

# ----------------------------------------------------------------------------- paper (GPU)
_PAPER_NOTE = "B_S=128, B_L=4096, ghost 128; lr sqrt-scaled from B_S"
PAPER = Profile(
    name="paper",
    device="auto",
    seeds=3,
    control=False,
    description=(
        "The paper's networks and datasets (Hoffer et al. 2017, Fig. 2 and Table 1). "
        "B_S=128 vs B_L=4096 with ghost batch 128 (AlexNet: B_S=256 vs B_L=4096 or 8192); "
        "lr scaled by sqrt(B_L/B_S); RA stretches epochs and milestones by B_L/B_S. "
        "Needs a GPU and the CIFAR / ImageNet files under --data-root."
    ),
    recipes=(
        Recipe(
            name="F1",
            model="f1",
            data="mnist",
            epochs=50,
            small_batch=128,
            large_batch=4096,
            lr=0.1,
            milestones=(10, 20, 30),
            momentum=0.9,
            weight_decay=1e-4,
            paper=(98.27, 97.05, 97.55, 97.60, 98.53),
            note=_PAPER_NOTE,
        ),
        Recipe(
            name="C1",
            model="c1",
            data="cifar10",
            epochs=200,
            small_batch=128,
            large_batch=4096,
            lr=1e-2,
            milestones=(120, 180),
            momentum=0.0,
            weight_decay=5e-4,
            paper=(87.80, 83.95, 86.15, 86.4, 88.20),
            note=_PAPER_NOTE + "; reference regime: lr 1e-3 for 60 epochs, then 1e-2, 1e-3 at 120, "
            "1e-4 at 180, momentum 0 (here 1e-2 from the start; momentum 0 made explicit)",
        ),
        Recipe(
            name="ResNet44",
            model="resnet44",
            data="cifar10",
            epochs=182,
            small_batch=128,
            large_batch=4096,
            lr=0.1,
            milestones=(81, 122, 164),
            momentum=0.9,
            weight_decay=1e-4,
            paper=(92.83, 86.10, 89.30, 90.50, 93.07),
            note=_PAPER_NOTE + "; full 182-epoch schedule (the reference script stopped at 100)",
        ),
        Recipe(
            name="VGG",
            model="vgg16",
            data="cifar10",
            epochs=200,
            small_batch=128,
            large_batch=4096,
            lr=0.1,
            milestones=(60, 120, 160),
            lr_decay=0.2,
            momentum=0.9,
            weight_decay=5e-4,
            paper=(92.30, 84.1, 88.6, 91.50, 93.03),
            note=_PAPER_NOTE
            + "; VGG16-BN regime of the authors' later code (absent from the paper's)",
        ),
        Recipe(
            name="C3",
            model="c3",
            data="cifar100",
            epochs=200,
            small_batch=128,
            large_batch=4096,
            lr=1e-2,
            milestones=(120, 180),
            momentum=0.0,
            weight_decay=5e-4,
            paper=(61.25, 51.50, 57.38, 57.5, 63.20),
            note=_PAPER_NOTE + "; regime as C1",
        ),
        Recipe(
            name="WResNet16-4",
            model="wresnet16_4",
            data="cifar100",
            epochs=200,
            small_batch=128,
            large_batch=4096,
            lr=0.1,
            milestones=(60, 120, 160),
            lr_decay=0.2,
            momentum=0.9,
            weight_decay=1e-4,
            paper=(73.70, 68.15, 69.05, 71.20, 73.57),
            note=_PAPER_NOTE + "; the real WRN-16-4 (the reference command built a ResNet44); "
            "lr x0.2 at 60/120/160",
        ),
        Recipe(
            name="AlexNet-4096",
            model="alexnet",
            data="imagenet",
            epochs=30,
            small_batch=256,
            large_batch=4096,
            lr=1e-2,
            milestones=(10, 15, 20, 25),
            lr_decay=0.5,
            momentum=0.9,
            weight_decay=5e-4,
            paper=(57.10, 41.23, 53.25, 54.92, 59.5),
            note="B_S=256, B_L=4096, ghost 128; reference regime 1e-2, 5e-3@10, 1e-3@15, 5e-4@20, "
            "1e-4@25 approximated by x0.5 per milestone",
        ),
        Recipe(
            name="AlexNet-8192",
            model="alexnet",
            data="imagenet",
            epochs=30,
            small_batch=256,
            large_batch=8192,
            lr=1e-2,
            milestones=(10, 15, 20, 25),
            lr_decay=0.5,
            momentum=0.9,
            weight_decay=5e-4,
            paper=(57.10, 41.23, 53.25, 53.93, 59.5),
            note="as AlexNet-4096 with B_L=8192",
        ),
    ),
)

PROFILES: dict[str, Profile] = {"smoke": SMOKE, "quick": QUICK, "paper": PAPER}


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name`` (a key of :data:`PROFILES`); a Profile passes through."""
    if isinstance(name, Profile):
        return name
    if not isinstance(name, str):
        raise TypeError(f"profile must be a name or a Profile, got {type(name).__name__}")
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {name!r}") from None
