"""First-order methods on ``L(w) = sum_n l(z_n . w)``, traced at log-spaced steps.

An optimiser is a small frozen dataclass describing one update rule (:class:`GD`,
:class:`Momentum`, :class:`SGD`, :class:`NormalizedGD`, :class:`Adam`, or
:class:`CustomUpdate` wrapping any callable ``update(t, w, g) -> w_new``); :func:`optimize`
runs it. With a built-in loss and a built-in rule the steps run in one compiled (numba)
loop between recording times; a custom loss or a custom update runs a Python loop with the
same recording. Every run returns an :class:`OptimResult` whose :class:`~diffusion.metrics.Trace`
holds ``distance = ||w(t) - w(0)||`` and the extras of :mod:`separable.measures`
(``w``, ``norm``, ``loss``, ``angle_gap``, ``direction_gap``, ``margin_gap``, ``rho``).

Step-size conventions: the loss is a *sum* over samples; GD, momentum and SGD default to
``eta = 1 / sigma_max(X)^2`` (JMLR); a minibatch gradient is the sum over the batch (so one
epoch of SGD moves as far as one GD step); a step above ``2 / (beta sigma_max^2)`` (the
theorem's condition) warns with :class:`StepSizeWarning`, where ``beta`` is the loss's
global smoothness or, for the exp loss, ``L(w(0))`` (its smoothness on the initial
sub-level set). A non-finite gradient or weight (or a weight norm that overflows) stops the
run: the result has ``status == "diverged"`` and ``stopped_at`` the step; a run that
diverges before its first recording point (step 1) raises :class:`DivergenceError`.

Convenience functions with the signature ``(X, y, loss, eta, t_max, ...)``: :func:`gd`,
:func:`momentum`, :func:`sgd`, :func:`ngd`, :func:`adam`, :func:`custom`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import numpy as np

from diffusion.metrics import Trace, log_schedule
from diffusion.validation import check_bool, check_int, check_real
from separable._kernels import Rule, State, apply_update, make_problem, run_schedule
from separable.data import as_features, fold
from separable.losses import Loss, get_loss
from separable.measures import gap_measures
from separable.svm import SVMResult, hard_margin_svm

__all__ = [
    "GD",
    "Momentum",
    "SGD",
    "NormalizedGD",
    "Adam",
    "CustomUpdate",
    "Optimizer",
    "OptimResult",
    "StepSizeWarning",
    "DivergenceError",
    "optimize",
    "default_eta",
    "stability_limit",
    "gd",
    "momentum",
    "sgd",
    "ngd",
    "adam",
    "custom",
    "METHODS",
    "make_optimizer",
]


class DivergenceError(FloatingPointError):
    """The run diverged before its first recorded step; ``step`` is where it stopped."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class StepSizeWarning(UserWarning):
    """The step size exceeds the theorem's stability condition ``2 / (beta sigma_max^2)``."""


# ----------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class GD:
    """Gradient descent ``w <- w - eta grad L(w)``; ``eta=None``: ``1/sigma_max^2``."""

    eta: float | None = None
    name = "gd"

    def __post_init__(self) -> None:
        if self.eta is not None:  # None: the default step size for the data
            object.__setattr__(self, "eta", check_real("eta", self.eta, 0.0, low_open=True))

    def _code(self) -> tuple[int, float, float, float]:
        return 0, 0.0, 0.0, 0.0


@dataclass(frozen=True)
class Momentum:
    """Heavy-ball (``nesterov=False``) or Nesterov momentum with coefficient ``beta``.

    Heavy ball: ``v <- beta v - eta g(w)``, ``w <- w + v``. Nesterov is run in its
    look-ahead variable ``y = w + beta v`` (``y <- y + beta^2 v - (1 + beta) eta g(y)``,
    ``v <- beta v - eta g(y)``), which is the iterate recorded.
    """

    eta: float | None = None
    beta: float = 0.9
    nesterov: bool = False

    def __post_init__(self) -> None:
        if self.eta is not None:  # None: the default step size for the data
            object.__setattr__(self, "eta", check_real("eta", self.eta, 0.0, low_open=True))
        object.__setattr__(self, "beta", check_real("beta", self.beta, 0.0, 1.0, high_open=True))
        object.__setattr__(self, "nesterov", check_bool("nesterov", self.nesterov))

    @property
    def name(self) -> str:
        return "nesterov" if self.nesterov else "momentum"

    def _code(self) -> tuple[int, float, float, float]:
        return (2 if self.nesterov else 1), float(self.beta), 0.0, 0.0


@dataclass(frozen=True)
class SGD:
    """Minibatch SGD: the gradient summed over ``batch_size`` samples per step.

    ``replace=False`` reshuffles every epoch and walks through the permutation (the last
    batch of an epoch may be smaller); ``replace=True`` draws each batch independently.
    """

    eta: float | None = None
    batch_size: int = 4
    replace: bool = False
    name = "sgd"

    def __post_init__(self) -> None:
        if self.eta is not None:  # None: the default step size for the data
            object.__setattr__(self, "eta", check_real("eta", self.eta, 0.0, low_open=True))
        object.__setattr__(self, "batch_size", check_int("batch_size", self.batch_size, 1))
        object.__setattr__(self, "replace", check_bool("replace", self.replace))

    def _code(self) -> tuple[int, float, float, float]:
        return 0, 0.0, 0.0, 0.0


@dataclass(frozen=True)
class NormalizedGD:
    """Normalized GD ``w <- w - eta g / ||g||``; ``eta=None``: ``1/sigma_max``."""

    eta: float | None = None
    name = "ngd"

    def __post_init__(self) -> None:
        if self.eta is not None:  # None: the default step size for the data
            object.__setattr__(self, "eta", check_real("eta", self.eta, 0.0, low_open=True))

    def _code(self) -> tuple[int, float, float, float]:
        return 3, 0.0, 0.0, 0.0


@dataclass(frozen=True)
class Adam:
    """Adam (bias-corrected) on the full gradient."""

    eta: float | None = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name = "adam"

    def __post_init__(self) -> None:
        if self.eta is not None:  # None: the default step size for the data
            object.__setattr__(self, "eta", check_real("eta", self.eta, 0.0, low_open=True))
        beta1 = check_real("beta1", self.beta1, 0.0, 1.0, high_open=True)
        beta2 = check_real("beta2", self.beta2, 0.0, 1.0, low_open=True, high_open=True)
        object.__setattr__(self, "beta1", beta1)
        object.__setattr__(self, "beta2", beta2)
        object.__setattr__(self, "eps", check_real("eps", self.eps, 0.0, low_open=True))

    def _code(self) -> tuple[int, float, float, float]:
        return 4, float(self.beta1), float(self.beta2), float(self.eps)


@dataclass(frozen=True)
class CustomUpdate:
    """Any update rule ``update(t, w, g) -> w_new`` (Python loop).

    Parameters
    ----------
    update : callable
        Called at step ``t`` (0-based) with the current weights ``w`` and the full
        gradient ``g = grad L(w)``; returns the new weights (it must not keep ``w``).
    eta : float, optional
        Recorded step size (and used for the step-size warning); ``None``: ``1/sigma_max^2``.
    label : str
        Name of the rule in results.
    """

    update: Callable[[int, np.ndarray, np.ndarray], np.ndarray]
    eta: float | None = None
    label: str = "custom"

    def __post_init__(self) -> None:
        if not callable(self.update):
            raise TypeError(f"update must be callable, got {type(self.update).__name__}")
        if self.eta is not None:  # None: the default step size for the data
            object.__setattr__(self, "eta", check_real("eta", self.eta, 0.0, low_open=True))

    @property
    def name(self) -> str:
        return self.label


Optimizer = Union[GD, Momentum, SGD, NormalizedGD, Adam, CustomUpdate]  # noqa: UP007 (a runtime alias)
"""Any of the update rules."""

METHODS: dict[str, type] = {
    "gd": GD,
    "momentum": Momentum,
    "sgd": SGD,
    "ngd": NormalizedGD,
    "adam": Adam,
}
"""Update rules by command-line name."""


def make_optimizer(method: str, **params) -> Optimizer:
    """Build a rule by name (``gd``, ``momentum``, ``nesterov``, ``sgd``, ``ngd``, ``adam``)."""
    if method == "nesterov":
        return Momentum(nesterov=True, **params)
    try:
        cls = METHODS[method]
    except KeyError:
        raise ValueError(
            f"method must be one of {sorted(METHODS) + ['nesterov']}, got {method!r}"
        ) from None
    return cls(**params)


# ----------------------------------------------------------------------------- step sizes
def default_eta(rule: Optimizer, Z: np.ndarray) -> float:
    """The rule's step size, or its default for data ``Z`` when ``rule.eta`` is None."""
    if rule.eta is not None:
        return rule.eta
    smax = float(np.linalg.norm(Z, 2))
    if isinstance(rule, NormalizedGD):
        return 1.0 / smax
    return 1.0 / smax**2


def stability_limit(Z: np.ndarray, loss: Loss, w0: np.ndarray) -> float:
    """``2 / (beta sigma_max^2)``; for a loss without global ``beta`` (exp) ``beta = L(w0)``."""
    return _limit(Z, _smoothness(Z, loss, w0))


def _limit(Z: np.ndarray, beta: float) -> float:
    """``2 / (beta sigma_max(Z)^2)`` for a known ``beta``."""
    return 2.0 / (beta * float(np.linalg.norm(Z, 2)) ** 2)


def _smoothness(Z: np.ndarray, loss: Loss, w0: np.ndarray) -> float:
    """The ``beta`` of :func:`stability_limit`."""
    if loss.beta is not None:
        return loss.beta
    if loss.kernel_id == 1:
        return float(np.sum(loss.value(Z @ w0)))
    return loss.estimated_beta()


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True)
class OptimResult:
    """A traced optimisation run.

    Attributes
    ----------
    trace : diffusion.metrics.Trace
        ``t`` (steps), ``distance = ||w(t) - w(0)||`` and extras ``w``, ``norm``, ``loss``,
        ``angle_gap``, ``direction_gap``, ``margin_gap``, ``rho``.
    w : numpy.ndarray
        Weights after the last step taken.
    method : str
    loss : str
    eta : float
    steps : int
        Steps taken (``t_max`` unless diverged).
    status : str
        ``"finished"`` or ``"diverged"``.
    stopped_at : int or None
        The step whose gradient or update was non-finite.
    svm : SVMResult
    """

    trace: Trace
    w: np.ndarray
    method: str
    loss: str
    eta: float
    steps: int
    status: str
    stopped_at: int | None
    svm: SVMResult

    def final(self) -> dict[str, float]:
        """The last recorded scalar measures (and ``t``)."""
        tr = self.trace
        out = {"t": int(tr.t[-1]), "distance": float(tr.distance[-1])}
        for key in ("norm", "loss", "angle_gap", "direction_gap", "margin_gap"):
            out[key] = float(tr.extras[key][-1])
        out["rho"] = tr.extras["rho"][-1].tolist()
        return out


def _python_steps(problem, rule, state, t0, t1, user, loss, rng):
    """The slow path: gradient by numpy (any loss), update compiled or ``user``-defined."""
    Z, w = problem.Z, state.w
    N = Z.shape[0]
    for t in range(t0, t1):
        Zb = Z[_python_batch(rule, state, N, rng)] if rule.batch < N else Z
        with np.errstate(over="ignore", invalid="ignore"):
            g = Zb.T @ loss.derivative(Zb @ w)
        if not np.all(np.isfinite(g)):
            return t, 1
        if user is not None:
            w_new = np.asarray(user.update(t, w.copy(), g), dtype=np.float64)
            if w_new.shape != w.shape:
                raise ValueError(f"update returned shape {w_new.shape}, expected {w.shape}")
            w[:] = w_new
        else:
            apply_update(rule, w, g, state.m, state.v, t)
        with np.errstate(over="ignore"):
            if not np.isfinite(w @ w):
                return t, 1
    return t1, 0


def _python_batch(rule: Rule, state: State, N: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the next minibatch (numpy generator), as the compiled sampler does."""
    if rule.replace:
        return rng.integers(0, N, size=rule.batch)
    if state.pos[0] >= N:
        rng.shuffle(state.perm)
        state.pos[0] = 0
    idx = state.perm[state.pos[0] : state.pos[0] + rule.batch]
    state.pos[0] += idx.size
    return idx


def _check_rule(rule: object) -> Optimizer:
    rule = GD() if rule is None else rule
    if not isinstance(rule, (GD, Momentum, SGD, NormalizedGD, Adam, CustomUpdate)):
        raise TypeError(
            f"rule must be an Optimizer (GD, Momentum, SGD, NormalizedGD, Adam, CustomUpdate), "
            f"got {type(rule).__name__}"
        )
    return rule


def _start(w0: object, d: int) -> np.ndarray:
    if w0 is None:
        return np.zeros(d)
    w = as_features(np.reshape(np.asarray(w0, dtype=float), (1, -1)), "w0")[0].copy()
    if w.shape != (d,):
        raise ValueError(f"w0 must have shape ({d},) to match X, got {np.shape(w0)}")
    return w


def _warn_step_size(rule: Optimizer, eta: float, Z: np.ndarray, loss: Loss, w: np.ndarray):
    if not isinstance(rule, (GD, Momentum, SGD, CustomUpdate)):
        return
    beta = _smoothness(Z, loss, w)
    # ||Z||_F >= sigma_max: a step under the limit taken with the Frobenius norm is under the
    # true one, and the SVD (the slowest part of a short run's setup) is not needed
    if eta * beta * float(np.vdot(Z, Z)) * (1.0 + 1e-12) <= 2.0:
        return
    limit = _limit(Z, beta)
    if eta > limit:
        warnings.warn(
            f"eta={eta:.4g} exceeds the stability limit 2/(beta sigma_max^2)={limit:.4g}; "
            f"the run may diverge",
            StepSizeWarning,
            stacklevel=3,
        )


def _pack_rule(rule: Optimizer, eta: float, N: int) -> Rule:
    """The rule as the numbers the kernels read."""
    kind, p1, p2, p3 = (0, 0.0, 0.0, 0.0) if isinstance(rule, CustomUpdate) else rule._code()
    sgd_rule = isinstance(rule, SGD)
    batch = min(rule.batch_size, N) if sgd_rule else N
    return Rule(kind, float(eta), p1, p2, p3, int(batch), bool(rule.replace) if sgd_rule else False)


def _trace_run(problem, packed, state, schedule, rule, loss_obj, rng):
    """Advance to each recording time; return the times and weights there (arrays), the
    status and the last step."""
    fast = loss_obj.kernel_id >= 0 and not isinstance(rule, CustomUpdate)
    if fast:  # one compiled call; segment k's minibatch sampler is seeded by the k-th draw
        seeds = (
            np.zeros(len(schedule), dtype=np.int64)
            if rng is None
            else rng.integers(0, 2**31 - 1, size=len(schedule))
        )
        return run_schedule(problem, packed, state, schedule, seeds)
    user = rule if isinstance(rule, CustomUpdate) else None
    ts, ws = [], []
    t, status = 0, 0
    for target in schedule:
        t, status = _python_steps(problem, packed, state, t, int(target), user, loss_obj, rng)
        if status:
            break
        ts.append(t)
        ws.append(state.w.copy())
    W = np.array(ws) if ws else np.empty((0, state.w.size))
    return np.array(ts, dtype=np.int64), W, status, int(t)


def optimize(
    X: object,
    y: object | None = None,
    rule: Optimizer | None = None,
    *,
    loss: str | Loss = "logistic",
    t_max: float = 1e5,
    w0: object | None = None,
    per_decade: int = 20,
    seed: int = 0,
    svm: SVMResult | None = None,
) -> OptimResult:
    """Run an update rule on the homogeneous problem and trace it at log-spaced steps.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Samples, or folded samples when ``y`` is None.
    y : array_like, shape (N,), optional
        Labels in ``{-1, +1}`` or ``{0, 1}``.
    rule : Optimizer, optional
        Default :class:`GD` ``()``.
    loss : str or Loss
        See :func:`separable.losses.get_loss`.
    t_max : float
        Number of steps (integer-valued, ``>= 1``).
    w0 : array_like, shape (d,), optional
        Start (default zeros).
    per_decade : int
        Recording points per decade of steps.
    seed : int
        Seed of the minibatch sampling (SGD).
    svm : SVMResult, optional
        Precomputed SVM of the data (else computed).

    Returns
    -------
    OptimResult

    Raises
    ------
    NotSeparableError
        If the data are not separable (the gaps would be undefined).
    ValueError, TypeError
        On malformed arguments.
    """
    Z = fold(X, y)
    N, d = Z.shape
    rule = _check_rule(rule)
    loss_obj = get_loss(loss)
    t_max_f = check_real("t_max", t_max, 1.0, 2.0**62, high_open=True)
    if not t_max_f.is_integer():  # t_max may come as a float (1e6)
        raise ValueError(f"t_max must be integer-valued, got {t_max!r}")
    seed = check_int("seed", seed, 0)
    # only minibatches draw: a full-batch run needs no generator (nor its seeding's cost)
    rng = np.random.default_rng(seed) if isinstance(rule, SGD) else None
    w = _start(w0, d)
    svm = hard_margin_svm(Z) if svm is None else svm
    eta = default_eta(rule, Z)
    _warn_step_size(rule, eta, Z, loss_obj, w)
    w_start = w.copy()
    problem = make_problem(Z, max(loss_obj.kernel_id, 0), loss_obj.param)
    state = State(
        w,
        np.zeros(d),
        np.zeros(d),
        np.arange(N, dtype=np.int64) if rng is None else rng.permutation(N).astype(np.int64),
        np.zeros(1, dtype=np.int64),
    )
    schedule = log_schedule(t_max_f, per_decade, start=1)
    T, W, status, t = _trace_run(
        problem, _pack_rule(rule, eta, N), state, schedule, rule, loss_obj, rng
    )
    if status:
        warnings.warn(
            f"{rule.name} diverged: non-finite gradient or weights at step {t}",
            RuntimeWarning,
            stacklevel=2,
        )
        if not T.size:
            raise DivergenceError(
                f"{rule.name} diverged at step {t}, before the first recorded step", t
            )
    with np.errstate(over="ignore"):
        extras = gap_measures(Z, W, svm.w, np.log(T.astype(float)), loss_obj)
    extras["w"] = W
    trace = Trace(T, np.linalg.norm(W - w_start, axis=1), extras)
    return OptimResult(
        trace,
        w.copy(),
        rule.name,
        loss_obj.name,
        eta,
        t if status else int(T[-1]),
        "diverged" if status else "finished",
        t if status else None,
        svm,
    )


# ----------------------------------------------------------------------------- shortcuts
def gd(X, y=None, loss="logistic", eta=None, t_max=1e5, **kw) -> OptimResult:
    """Gradient descent; see :func:`optimize`."""
    return optimize(X, y, GD(eta), loss=loss, t_max=t_max, **kw)


def momentum(
    X, y=None, loss="logistic", eta=None, t_max=1e5, beta=0.9, nesterov=False, **kw
) -> OptimResult:
    """Heavy-ball or Nesterov momentum; see :class:`Momentum` and :func:`optimize`."""
    return optimize(X, y, Momentum(eta, beta, nesterov), loss=loss, t_max=t_max, **kw)


def sgd(
    X, y=None, loss="logistic", eta=None, t_max=1e5, batch_size=4, replace=False, **kw
) -> OptimResult:
    """Minibatch SGD; see :class:`SGD` and :func:`optimize`."""
    return optimize(X, y, SGD(eta, batch_size, replace), loss=loss, t_max=t_max, **kw)


def ngd(X, y=None, loss="logistic", eta=None, t_max=1e5, **kw) -> OptimResult:
    """Normalized GD; see :class:`NormalizedGD` and :func:`optimize`."""
    return optimize(X, y, NormalizedGD(eta), loss=loss, t_max=t_max, **kw)


def adam(
    X, y=None, loss="logistic", eta=1e-3, t_max=1e5, beta1=0.9, beta2=0.999, eps=1e-8, **kw
) -> OptimResult:
    """Adam; see :class:`Adam` and :func:`optimize`."""
    return optimize(X, y, Adam(eta, beta1, beta2, eps), loss=loss, t_max=t_max, **kw)


def custom(
    X, y=None, loss="logistic", eta=None, t_max=1e5, *, update, label="custom", **kw
) -> OptimResult:
    """A user update ``update(t, w, g) -> w_new``; see :class:`CustomUpdate`."""
    return optimize(X, y, CustomUpdate(update, eta, label), loss=loss, t_max=t_max, **kw)
