"""Distance sweep: equal-epoch and regime-adapted runs, growth-law fits, equal-step comparisons."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from deep.distance import DistanceConfig, distance_at, load_distance, run_distance
from deep.train import Runtime
from diffusion.metrics import Trace, fit_growth
from diffusion.records import atomic_write_json, load_run


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("distance")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test thread setting
    try:
        config = DistanceConfig(
            model="mlp_digits",
            data="digits",
            batch_sizes=(64, 16),
            epochs=2.0,
            adapted_epochs=1.0,
            lr=0.05,
            ghost_size=16,
            t_min=5,
            trace_per_decade=10,
        )
        return run_distance(config, root, runtime=Runtime(device="cpu", progress=False))
    finally:
        torch.set_num_threads(threads)


def test_sweep_runs_and_fits(sweep):
    assert sweep.batch_sizes == (16, 64)
    n_train = load_run(sweep.equal_epochs[16].run).summary["n_train"]
    for b, f in sweep.equal_epochs.items():
        cfg = load_run(f.run).config
        assert cfg["batch_size"] == b and cfg["lr_scaling"] == "none" and cfg["milestones"] == []
        assert f.steps == math.ceil(2 * n_train / b)
        assert f.final_distance == pytest.approx(float(f.trace.distance[-1]))
        # the stored fit is the shared ruler's fit of the stored trace over [t_min, end]
        ref = fit_growth(load_run(f.run).trace(""), t_min=5)
        assert f.fit.best.law == ref.best.law
        assert f.fit.fits["log"].params == pytest.approx(ref.fits["log"].params)
        assert f.log_law.numbers["delta_bic_log"] == pytest.approx(ref.delta("log"))
        assert f.log_slope[0] == pytest.approx(ref.fits["log"].params["b"])
    assert sweep.smaller_batches_farther == (
        sweep.equal_epochs[16].final_distance > sweep.equal_epochs[64].final_distance
    )


def test_adapted_runs_take_equal_steps_at_sqrt_scaled_rates(sweep):
    steps = {b: int(tr.t[-1]) for b, tr in sweep.adapted.items()}
    assert steps[16] == steps[64] == sweep.adapted_steps
    for b, path in sweep.adapted_runs.items():
        run = load_run(path)
        assert run.config["base_batch_size"] == 16
        if b > 16:
            assert run.config["regime_adaptation"] is True and run.config["ghost_size"] == 16
        else:  # B_0's run is the same as its equal-epoch run would be at adapted_epochs
            assert run.config["lr_scaling"] == "none" and run.config["ghost_size"] is None
        assert run.summary["peak_lr"] == pytest.approx(0.05 * math.sqrt(b / 16))
    d = sweep.adapted_distances()
    assert sweep.adapted_spread == pytest.approx(
        (max(d.values()) - min(d.values())) / np.mean(list(d.values()))
    )


def test_result_serialises_and_prints(sweep, tmp_path):
    path = atomic_write_json(tmp_path / "d.json", sweep.as_dict())
    doc = json.loads(path.read_text())
    assert doc["batch_sizes"] == [16, 64]
    assert set(doc["equal_epochs"]) == {"16", "64"} and set(doc["adapted"]) == {"16", "64"}
    assert set(doc["checks"]) == {"log_law@16", "log_law@64", "slope_decreases", "adapted_agree"}
    text = sweep.table()
    for check in sweep.checks.values():
        assert check.line() in text


def test_the_sweep_is_a_run_folder_found_again(sweep, tmp_path):
    """The sweep's folder holds its summary and traces; a second call trains nothing and a
    sweep with other settings gets another folder (nothing is overwritten)."""
    doc = load_distance(sweep.path)
    assert doc["checks"]["slope_decreases"]["passed"] == sweep.checks["slope_decreases"].passed
    records = load_run(sweep.path).records
    assert np.array_equal(records["B16.distance"], sweep.equal_epochs[16].trace.distance)
    runs = Path(sweep.path).parent
    before = {p.name for p in runs.iterdir()}
    again = run_distance(sweep.config, runs, runtime=Runtime(device="cpu", progress=False))
    assert again.path == sweep.path and {p.name for p in runs.iterdir()} == before
    other = dataclasses.replace(sweep.config, adapted_epochs=None)
    assert other != sweep.config
    from diffusion.records import run_dir

    assert run_dir(runs, other) != Path(sweep.path)


def test_no_adapted_sweep(tmp_path):
    """``adapted_epochs=None`` (the CLI's --adapted-epochs 0) runs the equal-epoch sweep only."""
    config = DistanceConfig(
        model="mlp_digits",
        data="digits",
        batch_sizes=(32, 64),
        epochs=0.5,
        adapted_epochs=None,
        t_min=2,
        trace_per_decade=5,
    )
    result = run_distance(config, tmp_path, runtime=Runtime(device="cpu", progress=False))
    assert result.adapted == {} and "adapted_agree" not in result.checks
    assert "no adapted sweep" in result.table()


@given(st.lists(st.floats(0.0, 10.0), min_size=2, max_size=20), st.data())
def test_distance_at_matches_the_recorded_points_and_interpolates_in_log_time(values, data):
    t = np.cumsum(
        data.draw(st.lists(st.integers(1, 50), min_size=len(values), max_size=len(values)))
    )
    tr = Trace(t, values)
    for ti, di in zip(t, values, strict=True):
        assert distance_at(tr, int(ti)) == pytest.approx(di)
    if t[1] - t[0] >= 2:
        mid = int(t[0]) + 1
        w = (np.log1p(mid) - np.log1p(t[0])) / (np.log1p(t[1]) - np.log1p(t[0]))
        assert distance_at(tr, mid) == pytest.approx((1 - w) * values[0] + w * values[1])


def test_boundary_errors(tmp_path):
    tr = Trace([1, 2, 3], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="step"):
        distance_at(tr, 7)
    with pytest.raises(ValueError, match="batch_sizes"):
        DistanceConfig(batch_sizes=[32])
    with pytest.raises(TypeError, match="batch_sizes"):
        DistanceConfig(batch_sizes=["a", "b"])
    with pytest.raises(ValueError, match="t_min"):
        DistanceConfig(batch_sizes=[8, 16], t_min=0)
    with pytest.raises(ValueError, match="adapted_epochs"):
        DistanceConfig(adapted_epochs=0)
    with pytest.raises(ValueError, match="model"):
        DistanceConfig(model="nope")
    with pytest.raises(TypeError, match="DistanceConfig"):
        run_distance({"model": "f1"}, tmp_path)


def test_cli_skips_the_adapted_sweep_with_zero_and_prints_json(tmp_path, capsys):
    """``--adapted-epochs 0`` once failed with a zip() length error."""
    from deep.__main__ import main

    argv = [
        "distance",
        "--model",
        "mlp_digits",
        "--data",
        "digits",
        "--batch-sizes",
        "32,64",
        "--epochs",
        "0.5",
        "--adapted-epochs",
        "0",
        "--t-min",
        "2",
        "--trace-per-decade",
        "5",
        "--device",
        "cpu",
        "--runs",
        str(tmp_path),
        "--json",
    ]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["adapted"] == {} and doc["batch_sizes"] == [32, 64]
    assert main(["distance", "--batch-sizes", "32,x", "--runs", str(tmp_path)]) == 2
    assert "--batch-sizes" in capsys.readouterr().err
