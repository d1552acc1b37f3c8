"""Distance sweep: equal-epoch and regime-adapted runs, growth-law fits, equal-step comparisons."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from deep.distance import distance_at, run_distance
from diffusion.metrics import Trace, fit_growth
from diffusion.records import atomic_write_json, load_run


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("distance")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test thread setting
    try:
        return run_distance(
            root,
            model="mlp_digits",
            data="digits",
            batch_sizes=(64, 16),
            epochs=2.0,
            adapted_epochs=1.0,
            lr=0.05,
            t_min=5,
            device="cpu",
            trace_per_decade=10,
        )
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
        assert f.log_beats_power == (ref.fits["log"].bic < ref.fits["power"].bic)
        assert f.log_slope[0] == pytest.approx(ref.fits["log"].params["b"])
    assert sweep.smaller_batches_farther == (
        sweep.equal_epochs[16].final_distance > sweep.equal_epochs[64].final_distance
    )


def test_adapted_runs_take_equal_steps_at_sqrt_scaled_rates(sweep):
    steps = {b: int(tr.t[-1]) for b, tr in sweep.adapted.items()}
    assert steps[16] == steps[64] == sweep.adapted_steps
    for b, path in sweep.adapted_runs.items():
        run = load_run(path)
        assert run.config["regime_adaptation"] is True and run.config["base_batch_size"] == 16
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
    text = sweep.table()
    assert "log beats power" in text and "spread" in text


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
        run_distance(tmp_path, batch_sizes=[32])
    with pytest.raises(TypeError, match="batch_sizes"):
        run_distance(tmp_path, batch_sizes=["a", "b"])
    with pytest.raises(ValueError, match="t_min"):
        run_distance(tmp_path, batch_sizes=[8, 16], t_min=0)
