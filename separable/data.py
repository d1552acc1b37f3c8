"""Data for the separable layer: the JMLR Fig. 1 set, random separable sets, user files.

Conventions
-----------
Samples are rows: ``X`` has shape ``(N, d)`` and labels ``y`` have shape ``(N,)`` with
values in ``{-1, +1}`` (``{0, 1}`` is accepted and mapped ``0 -> -1``).

The problem studied is the *homogeneous* one (JMLR section 2): the predictor is ``w.x``
with no intercept, and the labels are folded into the samples, ``z_n = y_n x_n``, so that
every function of this layer can take either ``(X, y)`` or the folded matrix ``Z`` alone
(``y=None``). Appending a constant feature (:func:`with_bias`) gives a *different*
problem -- ``argmin ||w||^2 + b^2`` with the bias penalised -- not the intercept SVM; it is
offered only as an explicit option.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from diffusion.validation import check_int, check_real

__all__ = [
    "Dataset",
    "MulticlassDataset",
    "as_features",
    "as_labels",
    "fold",
    "fig1",
    "fig3",
    "random_separable",
    "random_multiclass",
    "with_bias",
    "load",
    "file_digest",
]


# ----------------------------------------------------------------------------- validation
def as_features(X: object, name: str = "X") -> np.ndarray:
    """Return ``X`` as a finite float64 array of shape ``(N, d)`` or raise naming ``name``.

    Raises
    ------
    TypeError
        If ``X`` is not numeric.
    ValueError
        If ``X`` is not two-dimensional, is empty, or holds NaN/inf.
    """
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array, got {type(X).__name__}") from exc
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be two-dimensional (N samples x d features), got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        i, j = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} must be finite, found {name}[{i}, {j}] = {float(arr[i, j])}")
    return arr


def as_labels(y: object, n: int, name: str = "y", allow_one_class: bool = False) -> np.ndarray:
    """Return labels as float64 values in ``{-1, +1}`` (``{0, 1}`` mapped ``0 -> -1``).

    Raises
    ------
    ValueError
        If ``y`` is not one-dimensional of length ``n``, holds other values, or (unless
        ``allow_one_class``) holds a single class.
    """
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a numeric array of labels, got {type(y).__name__}"
        ) from exc
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match X, got shape {arr.shape}")
    positive = arr == 1.0
    if not np.all(positive | (arr == -1.0)):  # comparisons, not np.unique: no sort per call
        if not np.all(np.isfinite(arr)):  # labels of +-1 are finite: checked only here
            raise ValueError(f"{name} must be finite, found {float(arr[~np.isfinite(arr)][0])}")
        values = set(np.unique(arr).tolist())
        if not values <= {0.0, 1.0}:
            raise ValueError(
                f"{name} must hold labels in {{-1, +1}} or {{0, 1}}, found values {sorted(values)}"
            )
        arr = np.where(positive, 1.0, -1.0)
    n_positive = int(np.count_nonzero(positive))
    if n_positive in (0, n) and not allow_one_class:
        raise ValueError(f"{name} holds a single class [{arr[0]}]; two classes are needed")
    return arr


def fold(X: object, y: object | None = None) -> np.ndarray:
    """The folded samples ``Z = y[:, None] * X`` of the homogeneous problem.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Samples (rows), or already-folded samples when ``y`` is None.
    y : array_like, shape (N,), optional
        Labels in ``{-1, +1}`` or ``{0, 1}``.

    Returns
    -------
    numpy.ndarray, shape (N, d)
    """
    Xa = as_features(X)
    if y is None:
        return Xa
    return as_labels(y, Xa.shape[0])[:, None] * Xa


# ----------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class Dataset:
    """A labelled binary data set.

    Attributes
    ----------
    X : numpy.ndarray, shape (N, d)
        Samples (rows).
    y : numpy.ndarray, shape (N,)
        Labels in ``{-1, +1}``.
    name : str
        Where it came from.
    w_hat : numpy.ndarray or None
        The hard-margin SVM solution when known by construction (random sets), else None.
    alpha : numpy.ndarray or None
        Its dual coefficients when known by construction, else None.
    """

    X: np.ndarray
    y: np.ndarray
    name: str = "data"
    w_hat: np.ndarray | None = None
    alpha: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        X = as_features(self.X)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", as_labels(self.y, X.shape[0]))

    @property
    def Z(self) -> np.ndarray:
        """Folded samples ``y_n x_n`` (rows)."""
        return self.y[:, None] * self.X

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Number of features."""
        return int(self.X.shape[1])


@dataclass(frozen=True)
class MulticlassDataset:
    """A labelled K-class data set: ``X`` (N, d) and integer labels ``y`` in ``0..K-1``."""

    X: np.ndarray
    y: np.ndarray
    n_classes: int
    name: str = "multiclass"

    def __post_init__(self) -> None:
        X = as_features(self.X)
        y = np.asarray(self.y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.isfinite(y.astype(float))) or np.any(y != np.round(y)):
                raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
        y = y.astype(np.int64)
        object.__setattr__(self, "n_classes", check_int("n_classes", self.n_classes, 2))
        if y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(
                f"y must hold labels in 0..{self.n_classes - 1}, found range [{y.min()}, {y.max()}]"
            )
        if np.unique(y).size < 2:
            raise ValueError(
                f"y holds a single class {np.unique(y).tolist()}; two classes are needed"
            )
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)


def _rng(seed: object) -> np.random.Generator:
    """``seed`` itself when a numpy Generator, else a Generator seeded by the integer ``seed``."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_int("seed", seed, 0))


def _figure_set(
    rng: np.random.Generator,
    n_extra: int,
    min_excess: float,
    scale: np.ndarray,
    w_hat: np.ndarray,
    alpha_core: np.ndarray,
    name: str,
) -> Dataset:
    """The four support points of JMLR Fig. 1 scaled by ``scale``, plus seeded extra points
    drawn in the scaled box ``scale * [0.5, 3.5]^2`` with ``w_hat . x >= 1 + min_excess``."""
    sv = np.array([[0.5, 1.5], [1.5, 0.5]]) * scale
    extra = []
    while len(extra) < n_extra:
        p = rng.uniform(0.5, 3.5, size=2) * scale
        if p @ w_hat >= 1.0 + min_excess:
            extra.append(p)
    extra_arr = np.array(extra).reshape(n_extra, 2)
    half = n_extra // 2
    X = np.vstack([sv, -sv, extra_arr[:half], -extra_arr[half:]])
    y = np.concatenate([[1.0, 1.0, -1.0, -1.0], np.ones(half), -np.ones(half)])
    alpha = np.concatenate([alpha_core, alpha_core, np.zeros(n_extra)])
    return Dataset(X, y, name=name, w_hat=w_hat, alpha=alpha)


def _check_fig_args(seed, n_extra, min_excess) -> tuple[np.random.Generator, int]:
    rng = _rng(seed)
    n_extra = check_int("n_extra", n_extra, 0)
    if n_extra % 2:
        raise ValueError(f"n_extra must be even (half per class), got {n_extra}")
    check_real("min_excess", min_excess, 0.0, 2.0, low_open=True, high_open=True)
    return rng, n_extra


def fig1(seed: int = 0, n_extra: int = 12, min_excess: float = 0.5) -> Dataset:
    """The JMLR Fig. 1 set: two support vectors per class plus seeded points off the margin.

    ``x1 = (0.5, 1.5)``, ``x2 = (1.5, 0.5)`` with label +1 and their negatives with label -1;
    the SVM direction is ``(1, 1)/sqrt(2)``, ``w_hat = (0.5, 0.5)``, margin ``sqrt(2)``,
    ``alpha = 1/8`` per support point. The ``n_extra`` further points (half per class; the
    paper does not specify its generator) are drawn uniformly in ``[0.5, 3.5]^2`` (negated
    for class -1) and kept only if ``w_hat . x >= 1 + min_excess``, so they leave the SVM
    unchanged and fade from the gradient at least like ``t^-(1 + min_excess)``.

    Parameters
    ----------
    seed : int
        Seed of the extra points.
    n_extra : int
        Number of extra points (even).
    min_excess : float
        Smallest functional-margin excess of an extra point, in ``(0, 2)``.
    """
    rng, n_extra = _check_fig_args(seed, n_extra, min_excess)
    return _figure_set(
        rng,
        n_extra,
        min_excess,
        np.ones(2),
        np.array([0.5, 0.5]),
        np.full(2, 0.125),
        f"fig1(seed={seed})",
    )


def fig3(seed: int = 0, n_extra: int = 12, min_excess: float = 0.5, scale: float = 20.0) -> Dataset:
    """The JMLR Fig. 3 (Adam) set: the Fig. 1 set with every second coordinate times ``scale``.

    The support points become ``(0.5, 1.5 s)`` and ``(1.5, 0.5 s)``; for ``s = 20`` only the
    second is a support vector, ``w_hat = x2 / ||x2||^2`` (one support direction: the
    support vectors do not span the plane, JMLR Theorem 3). The extra points are drawn in
    the scaled box and kept off the new margin by ``min_excess``.
    """
    rng, n_extra = _check_fig_args(seed, n_extra, min_excess)
    scale = check_real("scale", scale, 0.0, low_open=True)
    from separable.svm import hard_margin_svm  # the core's SVM changes with the scale

    s = np.array([1.0, float(scale)])
    core = np.array([[0.5, 1.5], [1.5, 0.5]]) * s
    svm = hard_margin_svm(np.vstack([core, core]))
    return _figure_set(
        rng, n_extra, min_excess, s, svm.w, svm.alpha[:2], f"fig3(seed={seed}, scale={scale:g})"
    )


def random_separable(
    n: int,
    d: int,
    *,
    margin: float = 1.0,
    n_support: int | None = None,
    excess: float = 1.0,
    spread: float = 1.0,
    seed: int | np.random.Generator = 0,
) -> Dataset:
    """A random separable set whose hard-margin SVM is known by construction.

    A direction ``u`` is drawn uniformly and ``w_hat = u / margin``. The ``n_support``
    support vectors (folded) are ``z_s = margin u + v_s`` with ``v_s`` orthogonal to ``u``,
    centred with positive weights ``a_s`` so that ``w_hat = sum_s alpha_s z_s`` with
    ``alpha_s = a_s ||w_hat||^2 / sum a`` > 0; the other points have
    ``w_hat . z >= 1 + excess``. Labels are random signs, ``x_n = y_n z_n``.

    Parameters
    ----------
    n, d : int
        Number of samples and of features.
    margin : float
        Geometric margin ``1/||w_hat||`` (> 0).
    n_support : int, optional
        Number of support vectors, ``1 <= n_support <= min(n, d)``; default ``min(n, d)``
        (then, for ``n_support = d``, the support vectors span the space: JMLR Thm 4).
    excess : float
        Smallest functional-margin excess ``w_hat . z - 1`` of a non-support point (> 0).
    spread : float
        Scale of the orthogonal offsets of the points, relative to the margin. The support
        vectors sit near a regular simplex of radius ``spread * margin * sqrt(k - 1)``
        (jittered by 20%), so that ``H = sum_S alpha_n z_n z_n^T`` has its eigenvalues on
        ``span(Z_S)`` near ``spread^2``: ``rho - w_tilde`` decays like ``t^-min(1, spread^2)``.
    seed : int or numpy.random.Generator

    Returns
    -------
    Dataset
        With ``w_hat`` and ``alpha`` (zeros off the support) filled in.
    """
    rng = _rng(seed)
    n = check_int("n", n, 1)
    d = check_int("d", d, 1)
    k = min(n, d) if n_support is None else check_int("n_support", n_support, 1)
    if k > min(n, d):
        raise ValueError(f"n_support must be <= min(n, d) = {min(n, d)}, got {k}")
    margin = check_real("margin", margin, 0.0, low_open=True)
    excess = check_real("excess", excess, 0.0, low_open=True)
    spread = check_real("spread", spread, 0.0, low_open=True)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    proj = np.eye(d) - np.outer(u, u)
    w_hat = u / margin
    a = rng.uniform(0.5, 1.5, size=k)
    # a jittered regular simplex orthogonal to u: well conditioned, yet generic
    basis = np.linalg.svd(proj)[0][:, : d - 1].T if d > 1 else np.zeros((0, d))
    simplex = np.eye(k) - 1.0 / k
    q = np.linalg.svd(simplex)[0][:, : k - 1]
    rot = np.linalg.qr(rng.standard_normal((d - 1, k - 1)))[0].T if k > 1 else np.zeros((0, d - 1))
    v = (simplex @ q) @ rot @ basis * (spread * margin * np.sqrt(k)) if k > 1 else np.zeros((k, d))
    v = v + 0.2 * spread * margin * (rng.standard_normal((k, d)) @ proj)
    v -= (a @ v) / a.sum()
    z_sv = margin * u + v
    alpha_sv = a * (w_hat @ w_hat) / a.sum()
    m = n - k
    height = (1.0 + excess + rng.exponential(0.5, size=m)) * margin
    z_rest = height[:, None] * u + rng.standard_normal((m, d)) @ proj * (spread * margin)
    Z = np.vstack([z_sv, z_rest])
    alpha = np.concatenate([alpha_sv, np.zeros(m)])
    order = rng.permutation(n)
    Z, alpha = Z[order], alpha[order]
    y = rng.choice([-1.0, 1.0], size=n)
    if np.unique(y).size < 2:
        y[0] = -y[0]
    return Dataset(y[:, None] * Z, y, name=f"random(n={n}, d={d}, k={k})", w_hat=w_hat, alpha=alpha)


def random_multiclass(
    n_per_class: int,
    d: int,
    n_classes: int = 3,
    *,
    separation: float = 3.0,
    noise: float = 1.0,
    seed: int | np.random.Generator = 0,
) -> MulticlassDataset:
    """Clusters in balls around the vertices of a randomly rotated regular simplex.

    Class ``k`` has centre ``separation * m_k`` (``m_k . m_j = -1/(K-1)``; needs
    ``K <= d + 1``) and points uniform in the ball of radius ``noise`` around it. With
    ``W = (m_k)`` the margins are ``(m_y - m_k) . x >= separation K/(K-1) -
    noise sqrt(2K/(K-1)) > 0`` whenever ``noise < separation sqrt(K / (2 (K-1)))``: the set is
    then separable through the origin by construction.
    """
    rng = _rng(seed)
    n_per_class = check_int("n_per_class", n_per_class, 1)
    d = check_int("d", d, 1)
    K = check_int("n_classes", n_classes, 2)
    if K > d + 1:
        raise ValueError(f"n_classes must be <= d + 1 = {d + 1} for a simplex of centres, got {K}")
    separation = check_real("separation", separation, 0.0, low_open=True)
    noise = check_real("noise", noise, 0.0)
    if noise >= separation * np.sqrt(K / (2.0 * (K - 1))):
        raise ValueError(
            f"noise must be < separation * sqrt(K/(2(K-1))) = "
            f"{separation * np.sqrt(K / (2.0 * (K - 1))):.4g} for separability, got {noise!r}"
        )
    simplex = np.eye(K) - 1.0 / K
    coords = simplex @ np.linalg.svd(simplex)[0][:, : K - 1]
    coords /= np.linalg.norm(coords, axis=1, keepdims=True)
    rot = np.linalg.qr(rng.standard_normal((d, d)))[0][: K - 1]
    means = coords @ rot
    blocks = []
    for k in range(K):
        g = rng.standard_normal((n_per_class, d))
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        radius = noise * rng.uniform(size=(n_per_class, 1)) ** (1.0 / d)
        blocks.append(separation * means[k] + radius * g)
    y = np.repeat(np.arange(K), n_per_class)
    return MulticlassDataset(np.vstack(blocks), y, K, name=f"multiclass(K={K}, d={d})")


def with_bias(X: object, value: float = 1.0) -> np.ndarray:
    """Append a constant feature: a DIFFERENT problem (``argmin ||w||^2 + b^2``).

    The bias is penalised like any weight, so the result is not the intercept SVM; use it
    only when that is the problem meant.
    """
    Xa = as_features(X)
    if check_real("value", value) == 0:
        raise ValueError(f"value must be a non-zero finite number, got {value!r}")
    return np.hstack([Xa, np.full((Xa.shape[0], 1), float(value))])


# ----------------------------------------------------------------------------- files
def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (so a run's configuration follows the file's content)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load(path: str | os.PathLike, *, bias: bool = False) -> Dataset:
    """Load a binary data set from ``.npz`` (arrays ``X`` and ``y``) or ``.csv``.

    A ``.csv`` file holds one sample per row, features first and the label in the last
    column; a header row is skipped when it is not numeric. Labels may be ``{-1, +1}`` or
    ``{0, 1}``.

    Parameters
    ----------
    path : path-like
    bias : bool
        Append a constant feature (:func:`with_bias`): a different problem, see there.

    Raises
    ------
    ValueError
        Unknown suffix, missing arrays, bad shapes, non-finite features or bad labels.
    FileNotFoundError
        If ``path`` does not exist.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path {str(p)!r} is not a file")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        with np.load(p, allow_pickle=False) as npz:
            missing = [k for k in ("X", "y") if k not in npz.files]
            if missing:
                raise ValueError(f"path {str(p)!r} lacks array(s) {missing}; found {npz.files}")
            X, y = npz["X"], npz["y"]
    elif suffix == ".csv":
        with open(p, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
        if rows:
            try:
                [float(c) for c in rows[0]]
            except ValueError:
                rows = rows[1:]
        if not rows:
            raise ValueError(f"path {str(p)!r} holds no data rows")
        widths = {len(r) for r in rows}
        if len(widths) != 1 or widths.pop() < 2:
            raise ValueError(f"path {str(p)!r}: every row needs the same number (>= 2) of columns")
        try:
            data = np.array([[float(c) for c in r] for r in rows])
        except ValueError as exc:
            raise ValueError(f"path {str(p)!r} holds a non-numeric cell: {exc}") from exc
        X, y = data[:, :-1], data[:, -1]
    else:
        raise ValueError(f"path must end in .npz or .csv, got {str(p)!r}")
    X = as_features(X, "X")
    if bias:
        X = with_bias(X)
    return Dataset(X, as_labels(y, X.shape[0]), name=p.name + (" +bias" if bias else ""))
