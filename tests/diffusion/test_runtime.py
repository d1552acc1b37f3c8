"""The one run protocol: Runtime (never hashed), runtime= in every layer, records.run dispatch."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numba
import numpy as np
import pytest

import diffusion.experiments as experiments
from diffusion import records
from diffusion.experiments import WalkConfig, run_walk
from diffusion.records import Run, load_run, run_dir, save_run
from diffusion.runtime import Runtime
from separable.experiments import SeparableRunConfig, run_optimizer

SMALL = WalkConfig(walkers=40, t_max=3e3, per_decade=8)
QUIET = Runtime(progress=False)


def _no_compute(monkeypatch) -> None:
    def fail(cfg):
        raise AssertionError(f"recomputed {cfg}")

    monkeypatch.setattr(experiments, "compute_walk", fail)


# ----------------------------------------------------------------------------- Runtime
def test_runtime_defaults_and_conversions():
    rt = Runtime()
    assert (rt.device, rt.data_root, rt.jobs, rt.threads, rt.progress) == (
        "auto",
        None,
        1,
        None,
        True,
    )
    assert rt.checkpoint_interval_s == 60.0 and rt.checkpoint_every is None
    rt = Runtime(jobs=np.int64(3), threads=np.int32(2), checkpoint_interval_s=5)
    assert type(rt.jobs) is int and type(rt.threads) is int and rt.jobs == 3
    assert type(rt.checkpoint_interval_s) is float
    assert Runtime(checkpoint_interval_s=math.inf).checkpoint_interval_s == math.inf
    assert Runtime(data_root=Path("/data")).data_root == Path("/data")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"device": "gpu"}, ValueError, "device"),
        ({"jobs": 0}, ValueError, "jobs"),
        ({"jobs": 1.0}, TypeError, "jobs"),
        ({"threads": 0}, ValueError, "threads"),
        ({"threads": 2.0}, TypeError, "threads"),
        ({"checkpoint_every": 0}, ValueError, "checkpoint_every"),
        ({"progress": 1}, TypeError, "progress"),
        ({"data_root": 3}, TypeError, "data_root"),
        ({"checkpoint_interval_s": -1.0}, ValueError, "checkpoint_interval_s"),
        ({"checkpoint_interval_s": math.nan}, ValueError, "checkpoint_interval_s"),
        ({"checkpoint_interval_s": "60"}, TypeError, "checkpoint_interval_s"),
    ],
)
def test_runtime_refuses_bad_fields_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        Runtime(**kwargs)


def test_deep_train_reexports_the_shared_runtime():
    pytest.importorskip("torch")
    from deep.train import Runtime as DeepRuntime

    assert DeepRuntime is Runtime


# ----------------------------------------------------------------------------- never hashed
def test_two_runtimes_find_one_walk_folder(tmp_path, monkeypatch):
    first = run_walk(SMALL, tmp_path, runtime=Runtime(threads=1, progress=False))
    _no_compute(monkeypatch)
    other = Runtime(device="cpu", jobs=3, threads=2, progress=True, checkpoint_every=5)
    again = run_walk(SMALL, tmp_path, runtime=other)
    assert again.path == first.path
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]


def test_run_walk_with_a_runtime_reuses_the_run_made_without(tmp_path, monkeypatch):
    plain = run_walk(SMALL, tmp_path)
    mtime = (plain.path / "summary.json").stat().st_mtime_ns
    _no_compute(monkeypatch)
    with_rt = run_walk(SMALL, tmp_path, runtime=Runtime(threads=1, progress=False))
    assert with_rt.path == plain.path
    assert with_rt.summary == plain.summary
    assert (plain.path / "summary.json").stat().st_mtime_ns == mtime


def test_walk_threads_are_set_for_the_computation_and_restored(tmp_path, monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    seen = []
    original = experiments.compute_walk

    def spy(cfg):
        seen.append(numba.get_num_threads())
        return original(cfg)

    monkeypatch.setattr(experiments, "compute_walk", spy)
    before = numba.get_num_threads()
    one = run_walk(SMALL, tmp_path / "a", runtime=Runtime(threads=1, progress=False))
    assert seen == [1] and numba.get_num_threads() == before
    # more threads than numba's pool are capped, not an error
    many = run_walk(SMALL, tmp_path / "b", runtime=Runtime(threads=10_000, progress=False))
    assert seen[-1] == numba.config.NUMBA_NUM_THREADS and numba.get_num_threads() == before
    # threads change the speed, never the result (so they may stay out of the hash)
    assert one.path.name == many.path.name
    for key in one.records:
        np.testing.assert_array_equal(one.records[key], many.records[key])


def test_run_walk_refuses_a_runtime_of_the_wrong_type(tmp_path):
    with pytest.raises(TypeError, match="runtime"):
        run_walk(SMALL, tmp_path, runtime={"threads": 1})


def test_run_optimizer_takes_a_runtime_and_ignores_it(tmp_path, monkeypatch):
    import separable.experiments as sep

    cfg = SeparableRunConfig(data="fig1", t_max=1e3, per_decade=5)
    plain = run_optimizer(cfg, tmp_path)
    monkeypatch.setattr(sep, "_compute", lambda c: pytest.fail("recomputed"))
    again = run_optimizer(cfg, tmp_path, runtime=Runtime(threads=1, jobs=2, device="cpu"))
    assert again.path == plain.path
    with pytest.raises(TypeError, match="runtime"):
        run_optimizer(cfg, tmp_path, runtime="cpu")


# ----------------------------------------------------------------------------- dispatch
def test_records_run_dispatches_walk_and_separable(tmp_path):
    walk = records.run(SMALL, tmp_path, runtime=QUIET)
    assert walk.path == run_walk(SMALL, tmp_path).path
    assert walk.path.name.startswith("walk-")
    cfg = SeparableRunConfig(data="fig1", t_max=1e3, per_decade=5)
    sep = records.run(cfg, tmp_path)
    assert isinstance(sep, Run) and sep.path == run_dir(tmp_path, cfg)
    assert sep.summary == run_optimizer(cfg, tmp_path).summary


def test_records_run_dispatches_the_walk_sweep(tmp_path):
    from diffusion.sweep import WalkSweepConfig, run_walk_sweep

    cfg = WalkSweepConfig.from_walk(SMALL, seeds=(0, 1))
    got = records.run(cfg, tmp_path, runtime=QUIET)
    assert got.path.name.startswith("walksweep-")
    assert got.path == run_walk_sweep(cfg, tmp_path).path
    assert got.summary["seeds"] == [0, 1]


def test_records_run_force_recomputes(tmp_path):
    first = records.run(SMALL, tmp_path, runtime=QUIET)
    mtime = (first.path / "summary.json").stat().st_mtime_ns
    again = records.run(SMALL, tmp_path, runtime=QUIET, force=True)
    assert (again.path / "summary.json").stat().st_mtime_ns > mtime


def test_records_run_dispatches_deep_train_and_gamma(tmp_path):
    pytest.importorskip("torch")
    from deep.gamma import GammaConfig, measure_gamma
    from deep.train import TrainConfig, train

    cpu = Runtime(device="cpu", progress=False)
    tcfg = TrainConfig(model="mlp_digits", data="digits", batch_size=100, epochs=1.0, lr=0.05)
    trained = records.run(tcfg, tmp_path, runtime=cpu)
    assert isinstance(trained, Run) and trained.path.name.startswith("train-")
    assert trained.path == train(tcfg, tmp_path, runtime=cpu).path
    gcfg = GammaConfig(
        model="mlp_digits",
        data="digits",
        batch_size=32,
        epochs=0.5,
        lr=0.05,
        snapshots=4,
        n_directions=4,
        n_radii=3,
        n_eval=64,
    )
    measured = records.run(gcfg, tmp_path, runtime=cpu)
    assert isinstance(measured, Run) and measured.path.name.startswith("gamma-")
    assert measured.path == measure_gamma(gcfg, tmp_path, runtime=cpu).run.path


def test_records_run_sends_distance_to_run_distance_with_jobs(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import deep.distance as distance

    cfg = distance.DistanceConfig()
    folder = save_run(tmp_path, cfg, {"x": np.arange(3)}, {"ok": 1}).path
    calls = []

    def fake(config, runs, *, runtime=None, force=False, n_jobs=1, **kw):
        calls.append((config, Path(runs), runtime, force, n_jobs))
        return SimpleNamespace(path=str(folder))  # like DistanceResult: the folder by name

    monkeypatch.setattr(distance, "run_distance", fake)
    rt = Runtime(device="cpu", jobs=3, progress=False)
    got = records.run(cfg, tmp_path, runtime=rt, force=True)
    assert got.path == folder and got.summary == {"ok": 1}
    assert calls == [(cfg, tmp_path, rt, True, 3)]
    records.run(cfg, tmp_path)
    assert calls[-1][2:] == (None, False, 1)


@dataclass(frozen=True)
class _Unknown:
    seed: int = 0


def test_records_run_refuses_an_unregistered_config(tmp_path):
    with pytest.raises(TypeError, match="no runner is registered for config of type _Unknown"):
        records.run(_Unknown(), tmp_path)
    with pytest.raises(TypeError, match="dict"):
        records.run({"potential": "sinai"}, tmp_path)
    with pytest.raises(TypeError, match="runtime"):
        records.run(SMALL, tmp_path, runtime={"jobs": 2})
    assert not list(tmp_path.iterdir())


def test_register_runner_and_the_result_forms(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "_RUNNERS", dict(records._RUNNERS))
    saved = save_run(tmp_path, _Unknown(), {"t": np.arange(3)}, {"v": 2})
    records.register_runner(_Unknown, lambda c, runs, *, runtime=None, force=False: saved)
    assert records.run(_Unknown(), tmp_path).summary == {"v": 2}
    records.register_runner(
        _Unknown, lambda c, runs, *, runtime=None, force=False: SimpleNamespace(run=saved)
    )
    assert records.run(_Unknown(), tmp_path).path == saved.path
    records.register_runner(_Unknown, lambda c, runs, *, runtime=None, force=False: 42)
    with pytest.raises(TypeError, match="int"):
        records.run(_Unknown(), tmp_path)
    with pytest.raises(TypeError, match="dataclass"):
        records.register_runner(dict, lambda *a, **k: None)
    with pytest.raises(TypeError, match="callable"):
        records.register_runner(_Unknown, 3)
    assert load_run(saved.path).summary == {"v": 2}


def test_every_layer_registers_its_runner():
    import diffusion.sweep as sweep
    import separable.experiments as sep

    known = records.registered_runners()
    assert known[WalkConfig] is run_walk
    assert known[sweep.WalkSweepConfig] is sweep.run_walk_sweep
    assert known[sep.SeparableRunConfig] is sep.run_optimizer
    pytest.importorskip("torch")
    import deep.distance
    import deep.gamma
    import deep.lawmap
    import deep.train

    known = records.registered_runners()
    assert known[deep.train.TrainConfig] is deep.train.train
    assert known[deep.gamma.GammaConfig] is deep.gamma.measure_gamma
    assert deep.distance.DistanceConfig in known and deep.lawmap.LawMapConfig in known
