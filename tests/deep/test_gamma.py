"""gamma on a real network: loss increments, the trajectory and perturbation estimates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parameters_to_vector

from deep.gamma import GammaConfig, loss_increments, measure_gamma
from deep.train import Runtime
from diffusion.metrics import estimate_gamma

TINY = GammaConfig(
    model="mlp_digits",
    data="digits",
    batch_size=32,
    epochs=1.0,
    lr=0.05,
    snapshots=8,
    n_directions=12,
    n_radii=5,
    n_eval=256,
)
CPU = Runtime(device="cpu", progress=False)


def test_loss_increments_equal_a_direct_float64_computation():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Dropout(0.5), nn.Linear(7, 3)
    )
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    base = parameters_to_vector(model.parameters()).detach()
    points = base + 0.1 * torch.randn(4, base.numel())
    before = [p.detach().clone() for p in model.parameters()]
    got = loss_increments(model, base, points, x, y)

    def direct(vec):  # functional forward: BN on batch statistics, dropout off
        w1, b1, g, beta, w2, b2 = torch.split(vec.double(), [35, 7, 7, 7, 21, 3])
        h = x.double() @ w1.view(7, 5).T + b1
        h = F.batch_norm(h, None, None, g, beta, training=True)
        return float(F.cross_entropy(torch.relu(h) @ w2.view(3, 7).T + b2, y))

    want = [direct(p) - direct(base) for p in points]
    assert got == pytest.approx(want, rel=1e-10, abs=1e-12)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    with pytest.raises(ValueError, match="points"):
        loss_increments(model, base, points[:, :3], x, y)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("gamma")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test thread setting
    try:
        return root, measure_gamma(TINY, root, runtime=CPU)
    finally:
        torch.set_num_threads(threads)


def test_measurement_records_and_estimates(measured):
    root, res = measured
    rec = res.run.records
    k = rec["trajectory.loss"].size  # w_0, a checkpoint every T // snapshots steps, w_T
    assert k >= TINY.snapshots + 1
    assert rec["pairs.distance"].size == k * (k - 1) // 2  # every pair of snapshots
    assert res.trajectory is not None, res.trajectory_error
    assert rec["perturbation.init"].size == TINY.n_directions * TINY.n_radii
    radii = np.unique(rec["perturbation.radius"])
    assert radii == pytest.approx(
        np.geomspace(*TINY.radius_span, TINY.n_radii) * res.distance_travelled
    )
    for est in res.estimates().values():
        assert np.isfinite(est.gamma) and est.ci[0] < est.gamma < est.ci[1]
    # the estimate is the shared ruler's, with the documented settings
    ref = estimate_gamma(
        rec["perturbation.radius"],
        rec["perturbation.final"],
        n_bins=TINY.n_radii,
        min_count=TINY.n_directions,
        center=True,
    )
    assert res.perturbation_final.gamma == pytest.approx(ref.gamma)
    assert "trajectory" in res.table() and "perturbation_init" in res.table()
    # a finished measurement is reused
    again = measure_gamma(TINY, root, runtime=CPU)
    assert again.run.path == res.run.path and again.trajectory.gamma == res.trajectory.gamma


def test_small_perturbations_give_gamma_one(tmp_path):
    """Where the loss is linear in r (tiny radii), std over directions of g.u r is prop. to r."""
    cfg = dataclasses.replace(TINY, radius_span=(1e-5, 1e-3), snapshots=4, epochs=0.5)
    res = measure_gamma(cfg, tmp_path, runtime=CPU)
    for est in (res.perturbation_init, res.perturbation_final):
        assert est.gamma == pytest.approx(1.0, abs=0.02)


def test_config_validation():
    with pytest.raises(ValueError, match="radius_span"):
        dataclasses.replace(TINY, radius_span=(1.0, 0.1))
    with pytest.raises(ValueError, match="snapshots"):
        dataclasses.replace(TINY, snapshots=1)
    with pytest.raises(ValueError, match="unknown model"):
        dataclasses.replace(TINY, model="resnet9000")
    with pytest.raises(TypeError, match="GammaConfig"):
        measure_gamma({"model": "f1"}, "unused")


def test_device_is_not_part_of_the_identity():
    from diffusion.records import run_dir

    assert run_dir("r", TINY).name.startswith("gamma-")
    assert not hasattr(TINY, "device") and not hasattr(TINY, "data_root")
