"""The walk-over-seeds sweep: mean ± sd over independent replicas, children reused."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

import diffusion.experiments as experiments
from diffusion.experiments import WalkConfig
from diffusion.records import load_run, run_dir
from diffusion.runtime import Runtime
from diffusion.sweep import (
    WalkSweepConfig,
    add_parser,
    parse_seeds,
    run_walk_sweep,
)

BASE = {"walkers": 40, "t_max": 3e3, "per_decade": 8}
QUIET = Runtime(progress=False)


def _sweep(seeds) -> WalkSweepConfig:
    return WalkSweepConfig(**BASE, seeds=seeds)


def _children(runs, seeds):
    """The child runs, found independently of the sweep: one WalkConfig per seed."""
    return [load_run(run_dir(runs, WalkConfig(**BASE, seed=s))) for s in seeds]


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = experiments.compute_walk

    def counted(cfg):
        calls.append(cfg.seed)
        return original(cfg)

    monkeypatch.setattr(experiments, "compute_walk", counted)
    return calls


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return runs, run_walk_sweep(_sweep((0, 1, 2)), runs, runtime=QUIET)


# ----------------------------------------------------------------------------- config
def test_config_mirrors_walk_config_with_seeds_for_seed():
    walk = {f.name: f.default for f in dataclasses.fields(WalkConfig)}
    sweep = {f.name: f.default for f in dataclasses.fields(WalkSweepConfig)}
    assert walk.pop("seed") == 0 and "seeds" in sweep
    sweep.pop("seeds")
    assert sweep == walk
    cfg = _sweep([2, np.int64(0), 1])
    assert cfg.seeds == (0, 1, 2) and all(type(s) is int for s in cfg.seeds)
    assert cfg.walk_config(1) == WalkConfig(**BASE, seed=1)
    assert [c.seed for c in cfg.walk_configs()] == [0, 1, 2]
    assert WalkSweepConfig.from_walk(WalkConfig(**BASE, seed=9), (0, 1, 2)) == cfg
    assert _sweep((1, 0)) == _sweep((0, 1))  # order does not name another sweep


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seeds": ()}, ValueError, "at least one"),
        ({"seeds": (0, 1, 1)}, ValueError, "distinct"),
        ({"seeds": (0, -1)}, ValueError, r"seeds\[1\]"),
        ({"seeds": (0, 1.5)}, TypeError, r"seeds\[1\]"),
        ({"seeds": 3}, TypeError, "seeds"),
        ({"seeds": "012"}, TypeError, "seeds"),
        ({"potential": "levy"}, ValueError, "potential"),
        ({"walkers": 0}, ValueError, "walkers"),
    ],
)
def test_config_refuses_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        WalkSweepConfig(**{**BASE, **kwargs})


# ----------------------------------------------------------------------------- aggregate
def test_mean_and_sd_equal_numpy_over_the_child_summaries(swept):
    runs, sweep = swept
    children = _children(runs, (0, 1, 2))
    assert [c.config["seed"] for c in children] == [0, 1, 2]
    assert sweep.summary["runs"] == [c.path.name for c in children]
    assert sweep.summary["seeds"] == [0, 1, 2] and sweep.summary["n_seeds"] == 3

    def check(stats, values):
        values = np.asarray(values, dtype=float)
        assert stats["n"] == values.size
        assert stats["values"] == pytest.approx(values.tolist(), rel=1e-12)
        assert stats["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert stats["sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
        assert stats["sd"] > 0  # the seeds are independent replicas, not one run thrice

    for law, fit in children[0].summary["fit"]["fits"].items():
        for name in fit["params"]:
            check(
                sweep.summary["parameters"][f"{law}.{name}"],
                [c.summary["fit"]["fits"][law]["params"][name] for c in children],
            )
    for key in ("polylog_exponent_measured", "half_width"):
        values = [c.summary[key] for c in children]
        if np.ptp(values) > 0:
            check(sweep.summary["scalars"][key], values)
    check(
        sweep.summary["scalars"]["theory.kesten_mean_abs_measured"],
        [c.summary["theory"]["kesten_mean_abs_measured"] for c in children],
    )
    check(sweep.summary["distance_last"], [c.trace().distance[-1] for c in children])
    assert sum(sweep.summary["choice_frequency"].values()) == 3
    # strings, booleans and lists are not numbers to average
    scalars = sweep.summary["scalars"]
    assert "theory.law" not in scalars and "fit.log_supported" not in scalars
    assert "polylog_exponent_interval" not in scalars


def test_records_hold_the_mean_trace_and_every_seed(swept):
    runs, sweep = swept
    children = _children(runs, (0, 1, 2))
    per_seed = np.column_stack([c.trace().distance for c in children])
    trace = sweep.trace()
    assert sweep.summary["common_grid"] is True
    np.testing.assert_array_equal(trace.t, children[0].trace().t)
    np.testing.assert_array_equal(trace.extras["per_seed"], per_seed)
    np.testing.assert_allclose(trace.distance, per_seed.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(trace.extras["sd"], per_seed.std(axis=1, ddof=1), rtol=1e-12)
    np.testing.assert_array_equal(sweep.records["seeds"], [0, 1, 2])


def test_one_seed_has_no_sd(tmp_path):
    run = run_walk_sweep(_sweep((4,)), tmp_path, runtime=QUIET)
    stats = run.summary["parameters"]["log.b"]
    assert stats["n"] == 1 and stats["sd"] is None and stats["mean"] == stats["values"][0]
    assert np.isnan(run.trace().extras["sd"]).all()


# ----------------------------------------------------------------------------- reuse
def test_children_are_reused_and_only_new_seeds_computed(swept, monkeypatch):
    runs, sweep = swept
    children = _children(runs, (0, 1, 2))
    mtimes = [(c.path / "summary.json").stat().st_mtime_ns for c in children]
    calls = _counting(monkeypatch)
    again = run_walk_sweep(sweep_cfg := _sweep((0, 1, 2)), runs, runtime=QUIET, force=True)
    assert calls == []  # the aggregate was recomputed from the finished children
    assert again.summary == sweep.summary and again.path == sweep.path
    assert [(c.path / "summary.json").stat().st_mtime_ns for c in children] == mtimes
    bigger = run_walk_sweep(_sweep((0, 1, 2, 3)), runs, runtime=QUIET)
    assert calls == [3]
    assert bigger.summary["runs"][:3] == sweep.summary["runs"]
    assert [(c.path / "summary.json").stat().st_mtime_ns for c in children] == mtimes
    assert run_walk_sweep(sweep_cfg, runs).path == sweep.path


def test_changing_seeds_gives_another_folder_and_keeps_the_first(tmp_path):
    first = run_walk_sweep(_sweep((0, 1)), tmp_path, runtime=QUIET)
    stamp = (first.path / "summary.json").stat().st_mtime_ns
    second = run_walk_sweep(_sweep((0, 2)), tmp_path, runtime=QUIET)
    assert second.path != first.path
    assert second.path.name.startswith("walksweep-") and first.path.name.startswith("walksweep-")
    kept = load_run(first.path)
    assert kept.summary == first.summary and kept.summary["seeds"] == [0, 1]
    assert (first.path / "summary.json").stat().st_mtime_ns == stamp
    assert second.summary["seeds"] == [0, 2]
    assert second.summary["runs"][0] == first.summary["runs"][0]
    assert second.summary["runs"][1] != first.summary["runs"][1]


def test_parallel_children_give_the_same_sweep(tmp_path):
    serial = run_walk_sweep(_sweep((5, 6)), tmp_path / "serial", runtime=QUIET)
    parallel = run_walk_sweep(
        _sweep((5, 6)), tmp_path / "parallel", runtime=Runtime(jobs=2, progress=False)
    )
    assert parallel.path.name == serial.path.name
    assert parallel.summary == serial.summary
    for key in serial.records:
        np.testing.assert_array_equal(parallel.records[key], serial.records[key])


def test_progress_lines_name_each_computed_seed(tmp_path, capsys):
    run_walk_sweep(_sweep((0, 1)), tmp_path, runtime=Runtime(progress=True))
    err = capsys.readouterr().err
    assert "2/2 seeds computed (0 reused" in err and "seed 1 -> walk-" in err


def test_refuses_wrong_types(tmp_path):
    with pytest.raises(TypeError, match="WalkSweepConfig"):
        run_walk_sweep(WalkConfig(**BASE), tmp_path)
    with pytest.raises(TypeError, match="runtime"):
        run_walk_sweep(_sweep((0,)), tmp_path, runtime="cpu")


# ----------------------------------------------------------------------------- CLI
def test_parse_seeds():
    assert parse_seeds("5") == (0, 1, 2, 3, 4)
    assert parse_seeds("0,1,2") == (0, 1, 2)
    assert parse_seeds("7,") == (7,)
    for bad in ("", "0", "-1", "a,b", "1,-2"):
        with pytest.raises(argparse.ArgumentTypeError, match="seeds"):
            parse_seeds(bad)


def _cli() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m diffusion")
    add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_cli_runs_the_sweep_and_prints_json(tmp_path, capsys):
    argv = ["sweep", "--seeds", "2", "--walkers", "40", "--t-max", "3e3", "--per-decade", "8"]
    args = _cli().parse_args([*argv, "--runs", str(tmp_path), "--json"])
    assert args.jobs == 1 and args.threads is None and not args.force
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["run"] == str(run_dir(tmp_path, _sweep((0, 1))))
    assert doc["summary"]["seeds"] == [0, 1]
    args = _cli().parse_args([*argv, "--runs", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "mean ± sd" in out and "log.b" in out
    args = _cli().parse_args([*argv, "--runs", str(tmp_path), "--jobs", "0"])
    assert args.func(args) == 2
    assert "jobs" in capsys.readouterr().err
    args = _cli().parse_args([*argv, "--runs", str(tmp_path), "--seeds", "0,-1"])
    assert args.func(args) == 2
    assert "--seeds" in capsys.readouterr().err
    args = _cli().parse_args([*argv[:3], "--potential", "fbm", "--hurst", "0.7", "--runs", "x"])
    from diffusion.options import config_from_args

    assert config_from_args(WalkSweepConfig, args) == WalkSweepConfig(
        potential="fbm", hurst=0.7, seeds=(0, 1)
    )
    assert not (tmp_path / "x").exists()
