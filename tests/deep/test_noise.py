"""Gradient noise scale: per-example and two-batch estimates against explicit gradients.

Each test names in its docstring the wrong implementation (mutant) it was seen to catch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deep.__main__ import main
from deep.noise import (
    compare_with_distance_sweep,
    diffusion_coefficient,
    gradient_noise_scale,
    noise_scale_of_run,
    two_batch_noise_scale,
)
from deep.sharpness import load_run_data
from deep.train import Runtime, TrainConfig, load_checkpoint, train
from diffusion.records import save_run


@dataclass(frozen=True)
class _Sweep:
    """Stands for a distance sweep's configuration (its run folder holds the summary)."""

    name: str = "sweep"


def _squares(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out.squeeze(-1) - y) ** 2).mean()


@pytest.fixture(scope="module")
def linear():
    """A linear least-squares problem and its explicit per-example gradients 2 x_i (x_i.w - y_i)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(301, 8, generator=gen, dtype=torch.float64)
    y = x @ torch.ones(8, dtype=torch.float64) + torch.randn(301, generator=gen).double()
    torch.manual_seed(1)
    model = nn.Linear(8, 1, bias=False).double()
    w = model.weight.detach().numpy().ravel()
    g = 2 * x.numpy() * (x.numpy() @ w - y.numpy())[:, None]
    mean = g.mean(0)
    trace = np.trace(np.cov(g.T, ddof=0))
    return model, (x, y), trace, float(mean @ mean)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two short digits runs (ghost BN) at batch sizes 64 and 128."""
    root = tmp_path_factory.mktemp("runs")
    runtime = Runtime(device="cpu", progress=False)
    out = {}
    for b in (64, 128):
        config = TrainConfig(
            model="mlp_digits", data="digits", batch_size=b, epochs=1.0, ghost_size=32, lr=0.05
        )
        out[b] = train(config, root, runtime=runtime).path
    return out


def test_b_simple_of_a_linear_model_from_explicit_per_example_gradients(linear):
    """tr(Sigma) (population covariance), |G|^2 and their ratio, to 1e-10.

    Mutants caught: the sample covariance (ddof=1: off by 301/300); a gradient sum that
    drops the last, short chunk (301 = 37 x 8 + 5).
    """
    model, data, trace, g2 = linear
    res = gradient_noise_scale(model, _squares, data, batch_size=8, dtype="float64")
    assert res.trace_sigma == pytest.approx(trace, rel=1e-10)
    assert res.grad_sq_norm == pytest.approx(g2, rel=1e-10)
    assert res.b_simple == pytest.approx(trace / g2, rel=1e-10)
    assert res.n_samples == 301 and res.method == "per_example"


def test_per_example_gradients_use_running_statistics():
    """Per-example gradients of a batch-norm network equal one backward pass per sample in
    evaluation mode.

    Mutant caught: leaving the copy in training mode (batch norm on a batch of one).
    """
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    net[1].running_mean.uniform_(-1, 1)
    net[1].running_var.uniform_(0.5, 2)
    net.train()
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    res = gradient_noise_scale(net, F.cross_entropy, (x, y), batch_size=8, dtype="float64")
    ref = net.double().eval()
    grads = []
    for i in range(20):
        loss = F.cross_entropy(ref(x[i : i + 1].double()), y[i : i + 1])
        grads.append(
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(ref.parameters()))])
        )
    g = torch.stack(grads).numpy()
    assert res.trace_sigma == pytest.approx(np.trace(np.cov(g.T, ddof=0)), rel=1e-9)
    assert res.grad_sq_norm == pytest.approx(float(g.mean(0) @ g.mean(0)), rel=1e-9)


def test_two_batch_estimator_is_unbiased_within_its_standard_errors(linear):
    """McCandlish's two-batch estimates of tr(Sigma) and |G|^2 fall within 4 standard errors
    (of the 400 pairs) of the exact values; the standard errors are a few percent.

    Mutants caught: ``tr(Sigma) = (|G_b|^2 - |G_B|^2) / (B - b)`` (the batch sizes, not
    their inverses); ``|G|^2`` weighted by the wrong batch (``b |G_B|^2 - B |G_b|^2``).
    """
    model, data, trace, g2 = linear
    res = two_batch_noise_scale(
        model, _squares, data, small=4, big=64, n_pairs=400, seed=0, dtype="float64"
    )
    assert abs(res.trace_sigma - trace) < 4 * res.trace_sigma_se < 0.4 * trace
    assert abs(res.grad_sq_norm - g2) < 4 * res.grad_sq_norm_se < 0.2 * g2
    assert res.batch_sizes == (4, 64) and res.n_pairs == 400
    assert res.b_simple == pytest.approx(res.trace_sigma / res.grad_sq_norm)


def test_two_batch_arguments_are_checked(linear):
    """Bad batch sizes are refused, naming both."""
    model, data, _, _ = linear
    with pytest.raises(ValueError, match="big must exceed small, got small=8, big=8"):
        two_batch_noise_scale(model, _squares, data, small=8, big=8)
    with pytest.raises(ValueError, match="n_pairs must be an integer >= 2, got 1"):
        two_batch_noise_scale(model, _squares, data, n_pairs=1)


def test_diffusion_coefficient_is_eta_squared_trace_over_batch_with_momentum():
    """``eta^2 tr / (B (1 - mu)^2)``; the sqrt rule eta ~ sqrt(B) keeps it constant.

    Mutants caught: ``eta`` instead of ``eta^2``; ``(1 - mu)`` not squared.
    """
    assert diffusion_coefficient(0.1, 50.0, 32, 0.9) == pytest.approx(0.01 * 50 / 32 / 0.01)
    d = [diffusion_coefficient(0.1 * math.sqrt(b / 32), 50.0, b) for b in (32, 128, 1024)]
    assert d == pytest.approx([d[0]] * 3)
    with pytest.raises(ValueError, match="momentum must be in"):
        diffusion_coefficient(0.1, 1.0, 32, 1.0)


def test_noise_of_a_run_at_the_final_and_initial_weights(runs):
    """At w_T the run's trained network; at w_0 its initial weights with recalibrated batch norm.
    The two-batch estimate agrees with the exact one within its standard errors.

    Mutants caught: ``at="initial"`` keeping the final weights, or the untrained running
    statistics (then the recalibrated means below would not match).
    """
    path = runs[64]
    final = noise_scale_of_run(path, n_samples=256, dtype="float64")
    assert final.batch_size == 64 and final.lr == 0.05 and final.momentum == 0.9
    assert final.diffusion == pytest.approx(0.05**2 * final.noise.trace_sigma / 64 / 0.01)
    two = noise_scale_of_run(path, n_samples=256, method="two_batch", n_pairs=64, dtype="float64")
    assert abs(two.noise.trace_sigma - final.noise.trace_sigma) < 4 * two.noise.trace_sigma_se
    assert abs(two.noise.grad_sq_norm - final.noise.grad_sq_norm) < 4 * two.noise.grad_sq_norm_se

    start = load_run_data(path, n_samples=256, at="initial")
    w0 = load_checkpoint(path)["initial"]
    for p, p0 in zip(start.model.parameters(), w0, strict=True):
        assert torch.equal(p.detach(), p0)
    first, bn = start.model.layers[0], start.model.layers[1]
    with torch.no_grad():
        z = first(start.x.flatten(1))
    torch.testing.assert_close(bn.running_mean, z.mean(0), rtol=1e-4, atol=1e-5)
    initial = noise_scale_of_run(path, n_samples=256, at="initial", dtype="float64")
    assert initial.noise.grad_sq_norm > final.noise.grad_sq_norm  # training reduced |G|


def test_comparison_with_a_distance_sweep_file(runs, tmp_path):
    """Each batch size of the sweep gets its run's diffusion beside the slope from the file.

    Mutant caught: pairing the slopes with the runs in file order rather than by batch size.
    """
    sweep = tmp_path / "distance.json"
    sweep.write_text(
        json.dumps(
            {
                "equal_epochs": {
                    "128": {"run": str(runs[128]), "log_slope": [0.5, 0.05]},
                    "64": {"run": str(runs[64]), "log_slope": [1.0, 0.1]},
                }
            }
        )
    )
    cmp = compare_with_distance_sweep(sweep, n_samples=128, at="initial")
    assert cmp.batch_sizes.tolist() == [64, 128] and cmp.slope.tolist() == [1.0, 0.5]
    for b, d in zip(cmp.batch_sizes, cmp.diffusion, strict=True):
        assert d == noise_scale_of_run(runs[int(b)], n_samples=128, at="initial").diffusion
    assert math.isnan(cmp.exponent)  # two points: no fit
    folder = save_run(tmp_path, _Sweep(), {"t": np.zeros(1)}, json.loads(sweep.read_text()))
    again = compare_with_distance_sweep(folder.path, n_samples=128, at="initial")
    np.testing.assert_array_equal(again.diffusion, cmp.diffusion)
    # same seed, same w_0: D differs by eta^2 / B only
    assert cmp.diffusion[0] / cmp.diffusion[1] == pytest.approx(2.0, rel=1e-6)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="bad.json' is not a distance sweep"):
        compare_with_distance_sweep(bad)


def test_cli_lists_runs_and_compares_with_a_sweep(runs, tmp_path, capsys):
    """``python -m deep noise``: JSON per run; ``--distance`` prints the comparison."""
    root = str(runs[64].parent)
    assert main(["noise", "--runs", root, "--samples", "64", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted(r["batch_size"] for r in shown) == [64, 128]
    sweep = tmp_path / "d.json"
    entry = {"run": str(runs[64]), "log_slope": [1.0, 0.1]}
    sweep.write_text(json.dumps({"equal_epochs": {"64": entry}}))
    assert main(["noise", "--distance", str(sweep), "--samples", "64"]) == 0
    assert "slope ~ D^alpha" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["noise", "--distance", str(tmp_path / "missing.json")])
    assert info.value.code == 2


def test_a_noise_measurement_is_kept_beside_the_run_and_read_back(tmp_path):
    """Second call reads the kept file (identical numbers); other settings measure anew.
    Catches a kept file keyed without the settings."""
    import glob
    import os

    from deep.noise import noise_scale_of_run
    from deep.train import Runtime, TrainConfig, train

    cfg = TrainConfig(model="mlp_digits", data="digits", batch_size=32, epochs=1.0, max_steps=3,
                      eval_every=None, trace_per_decade=5)  # fmt: skip
    run = train(cfg, tmp_path, runtime=Runtime(device="cpu", progress=False))
    first = noise_scale_of_run(run.path, n_samples=64)
    assert glob.glob(os.path.join(run.path, "noise-*.json"))
    again = noise_scale_of_run(run.path, n_samples=64)
    assert again.noise == first.noise and again.diffusion == first.diffusion
    other = noise_scale_of_run(run.path, n_samples=128)
    assert other.noise.n_samples == 128 != first.noise.n_samples
