"""Data sets: the JMLR Fig. 1 set, random sets with a known SVM, user files, validation."""

from __future__ import annotations

import numpy as np
import pytest

from separable.data import (
    Dataset,
    as_labels,
    fig1,
    fig3,
    fold,
    load,
    random_multiclass,
    random_separable,
    with_bias,
)


def test_fig1_support_points_and_extra_points_off_the_margin():
    ds = fig1(seed=3)
    assert ds.n == 16 and ds.d == 2
    np.testing.assert_array_equal(ds.X[:4], [[0.5, 1.5], [1.5, 0.5], [-0.5, -1.5], [-1.5, -0.5]])
    np.testing.assert_array_equal(ds.y[:4], [1, 1, -1, -1])
    assert (ds.y == 1).sum() == 8
    margins = ds.Z @ np.array([0.5, 0.5])
    np.testing.assert_allclose(margins[:4], 1.0)
    assert margins[4:].min() >= 1.5  # min_excess = 0.5
    np.testing.assert_array_equal(fig1(seed=3).X, ds.X)  # seeded
    assert not np.array_equal(fig1(seed=4).X, ds.X)


def test_fig3_scales_the_second_coordinate_and_keeps_extras_off_the_new_margin():
    ds = fig3(seed=0)
    np.testing.assert_array_equal(ds.X[:2], [[0.5, 30.0], [1.5, 10.0]])
    m = ds.Z @ ds.w_hat
    np.testing.assert_allclose(m[[1, 3]], 1.0)
    assert m[4:].min() >= 1.5


@pytest.mark.parametrize("n,d,k", [(40, 5, 5), (30, 4, 2), (12, 3, 1), (10, 6, 6)])
def test_random_separable_has_the_constructed_svm(n, d, k):
    ds = random_separable(n, d, n_support=k, margin=0.7, seed=11)
    Z, w, a = ds.Z, ds.w_hat, ds.alpha
    np.testing.assert_allclose(np.linalg.norm(w), 1 / 0.7)
    np.testing.assert_allclose(Z.T @ a, w, atol=1e-12)  # stationarity
    m = Z @ w
    np.testing.assert_allclose(m[a > 0], 1.0, atol=1e-12)  # complementarity
    assert (a > 0).sum() == k and a.min() >= 0
    assert m[a == 0].min() >= 2.0 - 1e-12  # excess = 1
    assert set(np.unique(ds.y)) == {-1.0, 1.0}


def test_fold_and_label_conventions():
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_array_equal(fold(X, [0, 1]), [[-1.0, -2.0], [3.0, -1.0]])
    np.testing.assert_array_equal(fold(X), X)
    np.testing.assert_array_equal(as_labels([0, 1, 1], 3), [-1, 1, 1])


def test_with_bias_appends_a_constant_feature():
    Xb = with_bias(np.ones((3, 2)), 2.0)
    np.testing.assert_array_equal(Xb[:, -1], 2.0)
    assert Xb.shape == (3, 3)


def test_load_npz_and_csv(tmp_path):
    X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.3, -2.0]])
    y01 = np.array([1, 0, 1])
    np.savez(tmp_path / "d.npz", X=X, y=y01)
    ds = load(tmp_path / "d.npz")
    np.testing.assert_array_equal(ds.y, [1, -1, 1])
    np.testing.assert_array_equal(ds.X, X)
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,1\n-1,0.5,-1\n0.3,-2,1\n")
    dc = load(tmp_path / "d.csv", bias=True)
    np.testing.assert_array_equal(dc.X, with_bias(X))
    np.testing.assert_array_equal(dc.y, [1, -1, 1])


@pytest.mark.parametrize(
    "content,match",
    [
        ("1,2,3\n1,2\n", "same number"),
        ("1,2,1\n2,x,-1\n", "non-numeric"),
        ("1,2,7\n2,3,1\n", "y must hold labels"),
    ],
)
def test_load_rejects_malformed_csv(tmp_path, content, match):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(ValueError, match=match):
        load(tmp_path / "bad.csv")


def test_load_rejects_unknown_suffix_and_missing_arrays(tmp_path):
    (tmp_path / "d.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match="npz or .csv"):
        load(tmp_path / "d.txt")
    np.savez(tmp_path / "e.npz", X=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"lacks array\(s\) \['y'\]"):
        load(tmp_path / "e.npz")


@pytest.mark.parametrize(
    "X,y,match",
    [
        (np.array([[1.0, np.nan]]), [1], r"X must be finite, found X\[0, 1\] = nan"),
        (np.array([[1.0, np.inf], [1, 2]]), [1, -1], "X must be finite"),
        (np.ones(3), [1, -1, 1], "X must be two-dimensional"),
        (np.ones((3, 2)), [1, -1], r"y must have shape \(3,\)"),
        (np.ones((3, 2)), [1, 1, 1], "y holds a single class"),
        (np.ones((2, 2)), [1, 2], "y must hold labels"),
    ],
)
def test_bad_input_names_the_argument(X, y, match):
    with pytest.raises(ValueError, match=match):
        Dataset(X, y)


def test_random_multiclass_is_separable_by_its_centres():
    ds = random_multiclass(10, 4, 3, separation=3.0, noise=1.0, seed=5)
    # the centres' directions separate the classes by construction
    centres = np.array([ds.X[ds.y == k].mean(axis=0) for k in range(3)])
    assert ds.X.shape == (30, 4)
    scores = ds.X @ centres.T
    assert np.all(scores.argmax(axis=1) == ds.y)
    with pytest.raises(ValueError, match="noise must be"):
        random_multiclass(5, 3, 3, separation=1.0, noise=2.0)


def test_arguments_follow_the_shared_validation_contract():
    """diffusion.validation: a wrong type is a TypeError (a ValueError before the shared
    checks), numpy scalars are the numbers they hold."""
    with pytest.raises(TypeError, match="seed must be an integer, got bool"):
        fig1(seed=True)
    with pytest.raises(TypeError, match="n must be an integer, got float"):
        random_separable(10.0, 2)
    with pytest.raises(TypeError, match="noise must be a real number, got str"):
        random_multiclass(5, 3, 3, separation=1.0, noise="0.1")
    with pytest.raises(ValueError, match="min_excess must be a finite number > 0 and < 2"):
        fig1(min_excess=2.0)
    a, b = fig1(seed=np.int64(2), n_extra=np.int64(4)), fig1(seed=2, n_extra=4)
    np.testing.assert_array_equal(a.X, b.X)
