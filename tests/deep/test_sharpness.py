"""Sharpness: Lanczos top Hessian eigenvalues and Keskar's epsilon-sharpness, against closed forms.

Each test names in its docstring the wrong implementation (mutant) it was seen to catch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deep.__main__ import main
from deep.sharpness import (
    epsilon_sharpness,
    load_run_data,
    random_subspace,
    recalibrate_batch_norm,
    sharpness_of_run,
    subset_indices,
    top_hessian_eigenvalues,
)
from deep.train import Runtime, TrainConfig, load_model, train


def _squares(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out.squeeze(-1) - y) ** 2).mean()


def _linear(d: int, dtype=torch.float64) -> nn.Linear:
    torch.manual_seed(1)
    return nn.Linear(d, 1, bias=False).to(dtype)


@pytest.fixture(scope="module")
def problem():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(203, 12, generator=gen, dtype=torch.float64)
    y = torch.randn(203, generator=gen, dtype=torch.float64)
    return x, y


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    """A short ghost-BN run of the digits MLP (a few seconds)."""
    config = TrainConfig(
        model="mlp_digits", data="digits", batch_size=64, epochs=1.0, ghost_size=32, seed=3
    )
    runtime = Runtime(device="cpu", progress=False)
    return train(config, tmp_path_factory.mktemp("runs"), runtime=runtime).path


# ----------------------------------------------------------------------------- Hessian
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_least_squares_hessian_is_2_xtx_over_n(problem, dtype, rtol):
    """Top 3 eigenvalues of 2 X^T X / n, to 1e-6 in float64 (1e-5 in float32).

    Mutants caught: a missing factor 2; the sum instead of the mean of the loss; chunks
    weighted equally although the last one is short (203 = 3 x 64 + 11).
    """
    x, y = problem
    exact = np.linalg.eigvalsh(2 * (x.T @ x).numpy() / len(x))[::-1][:3]
    res = top_hessian_eigenvalues(_linear(12), _squares, (x, y), k=3, dtype=dtype, batch_size=64)
    np.testing.assert_allclose(res.eigenvalues, exact, rtol=rtol)
    assert res.n_params == 12 and res.n_samples == 203 and res.dtype == str(dtype)[6:]
    assert res.loss == pytest.approx(float(_squares(_linear(12)(x), y).detach()), rel=1e-6)


def test_largest_algebraic_eigenvalues_of_an_indefinite_hessian(problem):
    """``f = mean c_i (x_i . w)^2`` has Hessian 2 X^T diag(c) X / n, with a dominant negative part.

    Mutant caught: ``which="LM"`` (largest magnitude) returns the negative eigenvalues.
    """
    x, _ = problem
    c = torch.where(torch.arange(len(x)) < 3, -200.0, 1.0).double()  # 3 strong negative directions
    exact = np.linalg.eigvalsh(2 * (x.T * c).numpy() @ x.numpy() / len(x))
    assert abs(exact[0]) > exact[-1] > 0  # the spectrum is dominated by negative values
    res = top_hessian_eigenvalues(
        _linear(12), lambda out, cc: (cc * out.squeeze(-1) ** 2).mean(), (x, c), k=2
    )
    np.testing.assert_allclose(res.eigenvalues, exact[::-1][:2], rtol=1e-6)


def _bn_net() -> nn.Module:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 1)).double()
    bn = net[1]
    bn.running_mean.copy_(torch.tensor([0.5, -1.0, 0.2, 2.0]))
    bn.running_var.copy_(torch.tensor([2.0, 0.5, 1.5, 3.0]))
    return net.train()


def test_batch_norm_is_evaluated_on_running_statistics_and_the_model_is_untouched():
    """The spectrum is that of the network in evaluation mode (a dense Hessian by autograd).

    Mutant caught: keeping training mode (batch statistics; the running statistics would
    also move).
    """
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(40, generator=gen, dtype=torch.float64)
    net = _bn_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = top_hessian_eigenvalues(net, _squares, (x, y), k=2)

    ref = _bn_net().eval()
    names = [n for n, _ in ref.named_parameters()]
    shapes = [p.shape for p in ref.parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in ref.parameters()])

    def loss(flat):
        parts = dict(
            zip(
                names,
                (
                    t.view(s)
                    for t, s in zip(flat.split([s.numel() for s in shapes]), shapes, strict=True)
                ),
                strict=True,
            )
        )
        return _squares(torch.func.functional_call(ref, parts, (x,)), y)

    dense = torch.autograd.functional.hessian(loss, flat0).numpy()
    np.testing.assert_allclose(res.eigenvalues, np.linalg.eigvalsh(dense)[::-1][:2], rtol=1e-6)
    assert net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


# ----------------------------------------------------------------------------- Keskar
def _orthogonal_design(h: np.ndarray, n: int, w_star: np.ndarray, noise: float):
    """X with X^T X / n = diag(h); y = X w* + a residual orthogonal to X's columns."""
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.standard_normal((n, len(h) + 1)))
    x = np.sqrt(n) * q[:, :-1] * np.sqrt(h)
    resid = np.sqrt(n) * noise * q[:, -1]
    return torch.from_numpy(x), torch.from_numpy(x @ w_star + resid), noise**2


def test_epsilon_sharpness_of_a_quadratic_in_the_full_space():
    """``f(w) = c + sum h_i (w_i - w*_i)^2`` on the box |z_i| <= eps (|w_i| + 1): the maximum is
    ``c + sum h_i (|w_i - w*_i| + eps (|w_i| + 1))^2``.

    Mutants caught: the box without ``+ 1`` or without ``|.|``; Keskar's ratio without the
    ``1 +`` in the denominator.
    """
    h = np.array([3.0, 1.0, 0.5, 0.1, 2.0])
    w_star = np.array([1.0, -2.0, 0.3, 0.0, -0.5])
    x, y, c = _orthogonal_design(h, 64, w_star, noise=0.7)
    model = _linear(5)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.2, -1.0, -0.4, 0.8, -3.0]]))
    w = model.weight.detach().numpy().ravel()
    eps = 0.05
    loss0 = c + np.sum(h * (w - w_star) ** 2)
    top = c + np.sum(h * (np.abs(w - w_star) + eps * (np.abs(w) + 1)) ** 2)
    res = epsilon_sharpness(model, _squares, (x, y), epsilon=eps)
    assert res.loss == pytest.approx(loss0, rel=1e-10)
    assert res.max_loss == pytest.approx(top, rel=1e-9)
    assert res.sharpness == pytest.approx(100 * (top - loss0) / (1 + loss0), rel=1e-8)
    assert res.subspace_dim is None and res.n_params == 5


def test_epsilon_sharpness_in_a_random_subspace():
    """Isotropic ``f = c + h |w - w*|^2``, orthonormal A, u = A^T (w - w*): the maximum over
    the box |z_i| <= eps (|(A^T w)_i| + 1) is ``c + h (|r_perp|^2 + sum (|u_i| + b_i)^2)``.

    Mutants caught: the box centred on ``|w|`` entries instead of ``|A^+ w|``; a
    non-orthonormal A (Gaussian columns, so that A^+ != A^T).
    """
    p, dim, h = 9, 3, 1.5
    rng = np.random.default_rng(6)
    w_star, w = rng.standard_normal(p), 2 * rng.standard_normal(p)
    x, y, c = _orthogonal_design(np.full(p, h), 80, w_star, noise=0.3)
    model = _linear(p)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w)[None])
    a = random_subspace(p, dim, seed=11)
    np.testing.assert_allclose(a.T @ a, np.eye(dim), atol=1e-12)
    eps = 0.2
    u = a.T @ (w - w_star)
    r_perp = (w - w_star) - a @ u
    b = eps * (np.abs(a.T @ w) + 1)
    top = c + h * (r_perp @ r_perp + np.sum((np.abs(u) + b) ** 2))
    res = epsilon_sharpness(model, _squares, (x, y), epsilon=eps, subspace_dim=dim, seed=11)
    assert res.max_loss == pytest.approx(top, rel=1e-9)
    assert res.subspace_dim == dim


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 12}, "k must be smaller than the number of parameters 12"),
        ({"k": 0}, "k must be an integer >= 1"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"tol": 2.0}, "tol must be"),
    ],
)
def test_hessian_arguments_are_checked(problem, kwargs, match):
    """Bad arguments raise ValueError naming the argument and the value."""
    with pytest.raises(ValueError, match=match):
        top_hessian_eigenvalues(_linear(12), _squares, problem, **kwargs)


def test_data_and_epsilon_are_checked(problem):
    """Mismatched inputs and targets, and a non-positive radius, are refused with their values."""
    x, y = problem
    with pytest.raises(ValueError, match="203 and 10"):
        top_hessian_eigenvalues(_linear(12), _squares, (x, y[:10]))
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0, got -0.1"):
        epsilon_sharpness(_linear(12), _squares, (x, y), epsilon=-0.1)
    with pytest.raises(ValueError, match="subspace_dim must be at most n_params=12, got 13"):
        epsilon_sharpness(_linear(12), _squares, (x, y), subspace_dim=13)


def test_arguments_follow_the_shared_validation_contract(problem):
    """diffusion.validation: a wrong type is a TypeError, numpy scalars are the numbers they hold.

    Before the shared checks ``k=True`` and a float ``subspace_dim`` were ValueErrors, and
    ``np.float32`` radii and tolerances were refused.
    """
    with pytest.raises(TypeError, match="k must be an integer, got bool"):
        top_hessian_eigenvalues(_linear(12), _squares, problem, k=True)
    with pytest.raises(TypeError, match="epsilon must be a real number, got str"):
        epsilon_sharpness(_linear(12), _squares, problem, epsilon="0.1")
    with pytest.raises(TypeError, match="subspace_dim must be an integer"):
        random_subspace(12, 2.0)
    res = epsilon_sharpness(_linear(12), _squares, problem, epsilon=np.float32(0.01))
    assert type(res.epsilon) is float and res.epsilon == pytest.approx(0.01)
    top = top_hessian_eigenvalues(_linear(12), _squares, problem, k=np.int64(1), tol=np.float32(0))
    assert top.eigenvalues.shape == (1,)


# ----------------------------------------------------------------------------- runs
def test_recalibrated_batch_norm_holds_the_statistics_of_the_samples():
    """Running mean = the samples' mean, running var = the mean of the chunks' unbiased variances.

    Mutant caught: an exponential moving average (momentum left at 0.1) over the chunks.
    """
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(100, 6) * 3 + 1
    recalibrate_batch_norm(net, x, batch_size=25)
    with torch.no_grad():
        z = net[0](x)
    torch.testing.assert_close(net[1].running_mean, z.mean(0), rtol=1e-5, atol=1e-5)
    within = torch.stack([c.var(0) for c in z.split(25)]).mean(0)
    torch.testing.assert_close(net[1].running_var, within, rtol=1e-5, atol=1e-5)
    assert not net.training and net[1].momentum == 0.1


def test_sharpness_of_run_measures_the_final_weights_on_the_stated_subset(run_path):
    """The loss is that of the trained network (eval mode) on the seeded subset, and float32
    agrees with float64.

    Mutants caught: measuring the initial weights; a subset other than the stated one.
    """
    res = sharpness_of_run(run_path, n_samples=128, epsilon=1e-3, maxiter=3, seed=2)
    model = load_model(run_path)
    data = load_run_data(run_path, n_samples=128, seed=2)
    idx = subset_indices(1437, 128, 2)
    assert np.array_equal(data.indices, idx) and len(set(idx.tolist())) == 128
    with torch.no_grad():
        loss = float(F.cross_entropy(model(data.x), data.y))
    assert res.hessian.loss == pytest.approx(loss, rel=1e-5)
    assert res.n_samples == 128 and res.hessian.n_params == 26634
    r64 = sharpness_of_run(run_path, n_samples=128, epsilon=None, dtype="float64", seed=2)
    assert r64.top_eigenvalue == pytest.approx(res.top_eigenvalue, rel=1e-3)
    assert res.top_eigenvalue > 0 and res.epsilon.sharpness > 0 and r64.epsilon is None


def test_a_measurement_is_kept_beside_the_run_and_read_back(run_path):
    """A second call reads the kept file (same numbers, no new measurement); other settings
    get another file; an unreadable file is measured anew. Catches a cache keyed without the
    settings (the second settings would read the first file's numbers)."""
    import glob
    import os

    kw = dict(n_samples=64, epsilon=1e-3, maxiter=2, seed=5)
    first = sharpness_of_run(run_path, **kw)
    files = glob.glob(os.path.join(run_path, "sharpness-*.json"))
    assert files
    again = sharpness_of_run(run_path, **kw)
    assert again.top_eigenvalue == first.top_eigenvalue
    assert again.epsilon.sharpness == first.epsilon.sharpness
    other = sharpness_of_run(run_path, **{**kw, "n_samples": 96})
    assert other.n_samples == 96 and other.hessian.loss != first.hessian.loss
    assert len(glob.glob(os.path.join(run_path, "sharpness-*.json"))) == len(files) + 1
    for f in files:
        with open(f, "w") as fh:
            fh.write("{not json")
    redone = sharpness_of_run(run_path, **kw)
    assert redone.top_eigenvalue == pytest.approx(first.top_eigenvalue, rel=1e-6)


def test_cli_prints_json_writes_the_file_and_rejects_unknown_runs(run_path, tmp_path, capsys):
    """``python -m deep sharpness``: JSON per run; a missing run exits with status 2."""
    out = tmp_path / "s.json"
    argv = ["sharpness", "--runs", str(run_path.parent), "--samples", "64", "--json"]
    assert main([*argv, "--epsilon", "0", "--out", str(out)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == json.loads(out.read_text())
    assert shown[0]["run"] == str(run_path) and shown[0]["epsilon"] is None
    assert shown[0]["hessian"]["n_samples"] == 64
    with pytest.raises(SystemExit) as info:
        main(["sharpness", "no-such-run", "--runs", str(run_path.parent)])
    assert info.value.code == 2
    assert "'no-such-run' is not a finished training run" in capsys.readouterr().err
