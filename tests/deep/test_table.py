"""The table runner end to end on a tiny profile: runs, reuse, statistics, files, schema."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from deep.profiles import REGIMES, get_profile
from deep.table import (
    CONTROL,
    CSV_COLUMNS,
    TABLE_FILES,
    Cell,
    final_accuracy,
    row_checks,
    run_table,
    table_dir,
)
from diffusion.records import load_run

TINY = get_profile("smoke")  # 8x8 digits, B_S=32 vs B_L=128, one epoch, 2 seeds


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test thread setting
    try:
        return root, run_table(TINY, root / "runs", out=root)
    finally:
        torch.set_num_threads(threads)


def test_tiny_table_runs_every_cell_and_summarises_the_seeds(tiny_table):
    root, result = tiny_table
    row = result.row("Digits")
    assert tuple(row.cells) == REGIMES
    for regime, cell in row.cells.items():
        assert cell.seeds == (0, 1)
        # mean and std recomputed independently from the run folders' summaries
        accs = [100 * load_run(p).summary["final_val_acc"] for p in cell.runs]
        assert cell.accuracies == pytest.approx(accs)
        assert cell.mean == pytest.approx(np.mean(accs))
        assert cell.std == pytest.approx(np.std(accs, ddof=1))
        configs = [load_run(p).config for p in cell.runs]
        assert {c["batch_size"] for c in configs} == {32 if regime == "SB" else 128}
        assert [c["seed"] for c in configs] == [0, 1]
    steps = {g: row.cells[g].steps[0] for g in REGIMES}
    n_train = load_run(row.cells["SB"].runs[0]).summary["n_train"]
    assert steps["SB"] == math.ceil(n_train / 32)
    assert steps["LB"] == steps["LB+LR"] == steps["LB+LR+GBN"] == math.ceil(n_train / 128)
    assert steps["LB+LR+GBN+RA"] == steps["SB"]  # regime adaptation: as many steps as SB
    # the control: SB at twice the epochs, the same seeds, twice the steps
    assert row.control is not None and row.control.seeds == (0, 1)
    assert row.control.steps[0] == 2 * steps["SB"]
    assert load_run(row.control.runs[0]).config["epochs"] == 2 * TINY.recipes[0].epochs


def test_sb_converged_is_false_when_sb_is_cut_short(tiny_table):
    """One epoch of SB on the digits is far from its plateau: the control run at two epochs
    ends elsewhere, and the check says so with the numbers it used."""
    _, result = tiny_table
    row = result.row("Digits")
    check = row.checks["sb_converged"]
    assert check.passed is False
    assert check.numbers["mean"] == pytest.approx(row.cells["SB"].mean)
    assert check.numbers["mean_long"] == pytest.approx(row.control.mean)
    assert check.numbers["difference"] > check.numbers["bound"]
    assert not row.passed


def test_table_files_and_their_schema(tiny_table):
    root, result = tiny_table
    assert set(result.files) == {"markdown", "csv", "json"}
    assert sorted(p.name for p in result.files.values()) == sorted(TABLE_FILES)
    row = result.row("Digits")

    with open(root / "table.csv", newline="") as fh:
        lines = list(csv.reader(fh))
    assert tuple(lines[0]) == CSV_COLUMNS
    assert [ln[3] for ln in lines[1:]] == list(REGIMES) + [CONTROL]
    for ln in lines[1:-1]:
        cell = row.cells[ln[3]]
        assert float(ln[6]) == pytest.approx(cell.mean, abs=1e-4)
        assert float(ln[7]) == pytest.approx(cell.std, abs=1e-4)
        assert [float(a) for a in ln[8].split(";")] == pytest.approx(cell.accuracies, abs=1e-4)
        assert float(ln[9]) == TINY.recipes[0].paper[REGIMES.index(ln[3])]

    doc = json.loads((root / "table.json").read_text())
    assert doc["profile"] == "smoke" and doc["regimes"] == list(REGIMES)
    (jrow,) = doc["rows"]
    assert set(jrow) >= {
        "network",
        "model",
        "dataset",
        "small_batch",
        "large_batch",
        "cells",
        "checks",
    }
    assert set(jrow["cells"]) == set(REGIMES)
    assert set(jrow["checks"]) == {"sb_converged", "lb_below_sb", "ra_matches_sb"}
    for name, check in jrow["checks"].items():
        assert check["passed"] is row.checks[name].passed and check["rule"]
    assert jrow["control"]["mean"] == pytest.approx(row.control.mean)
    assert jrow["n_val"] > 0 and jrow["validation_noise_floor"] > 0
    for name, c in jrow["cells"].items():
        assert c["mean"] == pytest.approx(row.cells[name].mean)
        assert set(c) >= {"mean", "std", "accuracies", "seeds", "runs", "steps", "batch_size"}

    md = (root / "table.md").read_text()
    assert (
        "| Network | Dataset | B_S / B_L | epochs | seeds | SB | LB | +LR | +GBN | +RA "
        "| SB (2E, control) |" in md
    )
    assert f"{row.cells['SB'].mean:.2f} ± {row.cells['SB'].std:.2f}" in md
    for check in row.checks.values():
        assert check.line() in md
    assert "validation noise floor" in md


def test_finished_runs_are_reused(tiny_table, tmp_path):
    root, first = tiny_table
    stamps = {
        p: (load_run(p).path / "summary.json").stat().st_mtime_ns
        for c in first.row("Digits").cells.values()
        for p in c.runs
    }
    again = run_table(TINY, root / "runs", out=tmp_path)
    for regime in REGIMES:
        assert (
            again.row("Digits").cells[regime].accuracies
            == first.row("Digits").cells[regime].accuracies
        )
    assert {p: (load_run(p).path / "summary.json").stat().st_mtime_ns for p in stamps} == stamps


def _cell(regime, accs):
    return Cell(
        regime, 1, tuple(accs), tuple(range(len(accs))), ("",) * len(accs), (1,) * len(accs)
    )


def test_row_checks_use_the_cells_they_need():
    cells = {
        "SB": _cell("SB", [95.0, 96.1, 95.6]),
        "LB": _cell("LB", [93.8, 95.4, 94.8]),
        "LB+LR+GBN+RA": _cell("LB+LR+GBN+RA", [96.0, 96.3, 96.1]),
    }
    checks = row_checks(cells, _cell(CONTROL, [95.4, 95.9, 95.5]))
    assert {k: c.passed for k, c in checks.items()} == {
        "sb_converged": True,
        "lb_below_sb": True,
        "ra_matches_sb": True,
    }
    # RA far above an SB stopped early: the gap is not "closed", it is overshot
    cells["LB+LR+GBN+RA"] = _cell("LB+LR+GBN+RA", [99.0, 99.2, 99.1])
    assert row_checks(cells)["ra_matches_sb"].passed is False
    assert set(row_checks(cells)) == {"lb_below_sb", "ra_matches_sb"}  # no control, no check
    assert row_checks({"SB": cells["SB"]}) == {}


def test_table_dir_is_keyed_by_the_settings(tmp_path):
    a = table_dir(tmp_path, "quick", {"seeds": 3, "models": None})
    b = table_dir(tmp_path, "quick", {"seeds": 5, "models": None})
    assert a != b and a == table_dir(tmp_path, "quick", {"models": None, "seeds": 3})
    assert a.name.startswith("table-quick-")


def test_boundary_errors(tmp_path):
    with pytest.raises(ValueError, match="profile must be one of"):
        run_table("huge", tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        run_table(TINY, tmp_path, seeds=0)
    with pytest.raises(ValueError, match="n_jobs"):
        run_table(TINY, tmp_path, n_jobs=0)
    with pytest.raises(KeyError, match="final validation accuracy"):
        final_accuracy({"steps": 3})
    assert final_accuracy({"final_val_acc": 0.5}) == 50.0


def test_warm_up_against_clipping_columns_train_and_are_compared_by_seed(tmp_path):
    """The two extra columns run with their recipes (the Goyal run's peak rate is the linear
    rule's and it warms up; no run clips) and are compared with +LR seed by seed."""
    from deep.profiles import ALL_REGIMES

    prof = dataclasses.replace(TINY, regimes=("LB+LR", "LB+LIN+WU", "LB+LR-CLIP"))
    result = run_table(prof, tmp_path / "runs", out=tmp_path, control=False)
    row = result.row("Digits")
    goyal = load_run(row.cells["LB+LIN+WU"].runs[0])
    assert goyal.config["grad_clip"] is None and goyal.config["warmup_epochs"] == 5.0
    assert goyal.summary["peak_lr"] == pytest.approx(0.05 * 128 / 32)
    lr = goyal.records["extra.lr"]
    assert lr[0] < lr.max()  # warming up
    assert load_run(row.cells["LB+LR-CLIP"].runs[0]).config["grad_clip"] is None
    comp = row.comparisons["LB+LIN+WU - LB+LR"]
    d = np.array(row.cells["LB+LIN+WU"].accuracies) - np.array(row.cells["LB+LR"].accuracies)
    assert comp["differences"] == pytest.approx(d.tolist())
    assert comp["se"] == pytest.approx(d.std(ddof=1) / np.sqrt(2))
    md = result.markdown()
    assert "warm-up against clipping" in md and "+LIN+WU" in md
    assert set(ALL_REGIMES) >= set(result.regimes)


def test_the_sharpness_columns_are_each_runs_measurement(tmp_path):
    """With ``sharpness=True`` every cell holds the top Hessian eigenvalue and Keskar's
    sharpness of each of its runs, as deep.sharpness measures them with the table's settings
    (catches a column filled from another run or other settings)."""
    from deep.sharpness import sharpness_of_run
    from deep.table import SHARPNESS_SETTINGS

    prof = dataclasses.replace(TINY, regimes=("SB", "LB"))
    result = run_table(prof, tmp_path / "runs", out=tmp_path, control=False, sharpness=True)
    for cell in result.row("Digits").cells.values():
        assert len(cell.sharpness) == len(cell.runs) == len(cell.eps_sharpness)
        for run, top, eps in zip(cell.runs, cell.sharpness, cell.eps_sharpness, strict=True):
            ref = sharpness_of_run(run, **SHARPNESS_SETTINGS)
            assert top == ref.top_eigenvalue and eps == ref.epsilon.sharpness
    assert "(top Hessian eigenvalue)" in result.markdown()
    doc = json.loads((tmp_path / "table.json").read_text())
    assert doc["rows"][0]["cells"]["LB"]["sharpness"] == list(
        result.row("Digits").cells["LB"].sharpness
    )


def test_seeds_and_jobs_follow_the_shared_validation_contract(tmp_path):
    """diffusion.validation: a float seed is a TypeError (``seeds=[0.5, 1]`` ran seeds 0 and 1
    before the shared checks), a bool ``n_jobs`` a TypeError (a ValueError before); numpy
    integers are the ints they hold."""
    from deep.table import _check_seeds

    with pytest.raises(TypeError, match="seeds must be an integer, got float"):
        run_table(TINY, tmp_path, seeds=[0.5, 1])
    with pytest.raises(TypeError, match="seeds must be an integer, got float"):
        run_table(TINY, tmp_path, seeds=2.0)
    with pytest.raises(ValueError, match="seeds must be an integer >= 0, got -1"):
        run_table(TINY, tmp_path, seeds=[-1, 0])
    with pytest.raises(TypeError, match="n_jobs must be an integer, got bool"):
        run_table(TINY, tmp_path, n_jobs=True)
    assert _check_seeds(np.int64(2)) == (0, 1)
    assert _check_seeds(np.array([3, 5])) == (3, 5)
    assert all(type(s) is int for s in _check_seeds(np.array([3, 5])))
    assert not list(tmp_path.iterdir())  # nothing was started


# ----------------------------------------------------------------------------- the table's folder
def _stamp(path) -> int:
    return (path / "summary.json").stat().st_mtime_ns


def _strings(obj):
    """Every string in a JSON document."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def _one_run_table(**kw):
    """A table of one training run (SB, no control, one seed, 3 steps): seconds to train."""
    prof = dataclasses.replace(TINY, regimes=("SB",))
    kw = {"seeds": (0,), "control": False, "overrides": {"max_steps": 3}, **kw}
    return prof, kw


def _no_training(monkeypatch):
    import deep.table

    def refuse(*args, **kwargs):
        raise AssertionError("train_many called: the table was not reused")

    monkeypatch.setattr(deep.table, "train_many", refuse)


def test_the_table_is_a_run_folder_holding_table_json_with_folder_names(tiny_table):
    """summary.json is table.json with each training run named by its folder (relative to the
    runs folder), records.npz every cell's accuracies and seeds (catches a table that writes
    no folder, a summary that drifts from table.json, and absolute machine paths in it)."""
    from deep.table import TableConfig
    from diffusion.records import run_dir

    root, result = tiny_table
    runs = root / "runs"
    path = run_dir(runs, TableConfig(TINY))
    assert result.path == str(path) and path.name.startswith("table-")
    run = load_run(path)
    assert run.meta["kind"] == "TableConfig"
    assert run.config["seeds"] == [0, 1] and run.config["control"] is True
    assert run.config["models"] == ["Digits"] and run.config["sharpness"] is False

    doc = json.loads((root / "table.json").read_text())
    summary = run.summary
    for jrow, srow in zip(doc["rows"], summary["rows"], strict=True):
        for jcell, scell in zip(
            [*jrow["cells"].values(), jrow["control"]],
            [*srow["cells"].values(), srow["control"]],
            strict=True,
        ):
            assert scell["runs"] == [str(p).rsplit("/", 1)[-1] for p in jcell["runs"]]
            jcell["runs"] = scell["runs"]
    doc["wall_seconds"] = summary["wall_seconds"]  # this call's time, the folder's own
    assert summary == doc
    for name in (n for c in result.row("Digits").cells.values() for n in c.runs):
        assert Path(name).name in json.dumps(summary)
    assert not [s for s in _strings(summary) if "/" in s and str(root) in s]
    assert not [s for s in _strings(summary) if s.startswith("/")]

    row = result.row("Digits")
    for regime, cell in [*row.cells.items(), (CONTROL, row.control)]:
        np.testing.assert_array_equal(run.records[f"accuracies.Digits.{regime}"], cell.accuracies)
        np.testing.assert_array_equal(run.records[f"seeds.Digits.{regime}"], cell.seeds)
        for name in summary["rows"][0]["cells" if regime != CONTROL else "control"].get(
            regime, {"runs": []}
        )["runs"]:
            assert (runs / name / "summary.json").is_file()


def test_the_same_table_is_read_from_its_folder_whatever_the_runtime(
    tiny_table, tmp_path, monkeypatch
):
    """Again with the same settings -- from run_table on another device, or from
    diffusion.records.run with any Runtime -- nothing is trained and the folder is not
    rewritten, and the table files read the same (catches a table recomputed on every call,
    or a device or job count in its identity)."""
    from deep.table import TableConfig
    from diffusion.records import run
    from diffusion.runtime import Runtime

    root, first = tiny_table
    runs = root / "runs"
    path = Path(first.path)
    stamp = _stamp(path)
    _no_training(monkeypatch)
    again = run_table(TINY, runs, out=tmp_path, device="auto", n_jobs=2)
    assert again.path == first.path and _stamp(path) == stamp
    assert again.row("Digits").cells["LB"].accuracies == first.row("Digits").cells["LB"].accuracies
    assert again.row("Digits").cells["LB"].runs == first.row("Digits").cells["LB"].runs
    for name in ("table.md", "table.csv"):
        assert (tmp_path / name).read_text() == (root / name).read_text()
    doc, ref = (json.loads((d / "table.json").read_text()) for d in (tmp_path, root))
    assert {k: v for k, v in doc.items() if k != "wall_seconds"} == {
        k: v for k, v in ref.items() if k != "wall_seconds"
    }

    for runtime in (Runtime(device="cpu"), Runtime(device="auto", jobs=2, threads=1)):
        got = run(TableConfig("smoke"), runs, runtime=runtime)
        assert got.path == path and got.summary == load_run(path).summary
    assert _stamp(path) == stamp


def test_table_config_is_stored_resolved():
    """A name and its Profile, a count and its seeds in any order, a mapping and its pairs,
    a model name and its row are the same table; what changes the numbers is another
    (catches a hash of the arguments as spelled, or one that leaves a setting out)."""
    from deep.table import TableConfig
    from diffusion.records import run_dir

    def folder(*args, **kw):
        return run_dir("runs", TableConfig(*args, **kw)).name

    base = folder("smoke", overrides={"max_steps": 3})
    assert base == folder(TINY, seeds=(1, 0), overrides=[("max_steps", 3)], control=True)
    assert base == folder(TINY, models=["mlp_digits"], seeds=2, overrides={"max_steps": 3})
    assert base == folder(dataclasses.replace(TINY, device="cuda"), overrides={"max_steps": 3})
    others = {
        folder("smoke"),
        folder("smoke", overrides={"max_steps": 4}),
        folder("smoke", seeds=(0, 2), overrides={"max_steps": 3}),
        folder("smoke", control=False, overrides={"max_steps": 3}),
        folder("smoke", sharpness=True, overrides={"max_steps": 3}),
        folder(dataclasses.replace(TINY, regimes=("SB", "LB")), overrides={"max_steps": 3}),
    }
    assert len(others) == 6 and base not in others
    config = TableConfig("smoke", overrides={"max_steps": 3, "milestones": [1]})
    assert config.overrides == (("max_steps", 3), ("milestones", (1,)))
    assert config == dataclasses.replace(config) and hash(config) == hash(
        TableConfig(TINY, overrides=config.overrides)
    )
    with pytest.raises(ValueError, match="not a TrainConfig field"):
        TableConfig("smoke", overrides={"max_step": 3})
    with pytest.raises(TypeError, match="control must be True or False"):
        TableConfig("smoke", control=1)


def test_other_seeds_or_overrides_get_their_own_table_folder(tmp_path):
    """Tables with other seeds or overrides are other folders and none overwrites another
    (catches a table folder keyed by the profile alone)."""
    runs = tmp_path / "runs"
    prof, kw = _one_run_table()
    a = run_table(prof, runs, out=tmp_path / "a", **kw)
    stamp = _stamp(Path(a.path))
    b = run_table(prof, runs, out=tmp_path / "b", **{**kw, "seeds": (1,)})
    c = run_table(prof, runs, out=tmp_path / "c", **{**kw, "overrides": {"max_steps": 4}})
    assert len({a.path, b.path, c.path}) == 3
    assert _stamp(Path(a.path)) == stamp
    for res, seed, steps in ((a, 0, 3), (b, 1, 3), (c, 0, 4)):
        run = load_run(res.path)
        (cell,) = run.summary["rows"][0]["cells"].values()
        assert cell["seeds"] == [seed] and cell["steps"] == [steps]
        assert cell["accuracies"] == list(res.row("Digits").cells["SB"].accuracies)
    assert sorted(p.name.split("-")[0] for p in runs.iterdir()) == ["table"] * 3 + ["train"] * 3


def test_force_rewrites_only_the_table_and_lost_runs_are_retrained(tmp_path):
    """``force`` recomputes the table's folder from the finished training runs (none is
    retrained); a table whose training run was deleted is computed again, not served with a
    dangling name."""
    import shutil

    from deep.table import TableConfig
    from diffusion.records import run
    from diffusion.runtime import Runtime

    runs = tmp_path / "runs"
    prof, kw = _one_run_table()
    first = run_table(prof, runs, out=tmp_path, **kw)
    (child,) = first.row("Digits").cells["SB"].runs
    child_stamp, table_stamp = _stamp(Path(child)), _stamp(Path(first.path))
    config = TableConfig(prof, **kw)
    forced = run(config, runs, runtime=Runtime(device="cpu", progress=False), force=True)
    assert forced.path == Path(first.path) and _stamp(forced.path) != table_stamp
    assert _stamp(Path(child)) == child_stamp
    # a summary that reads otherwise than the stored cells give is rewritten from them
    doc = json.loads((forced.path / "summary.json").read_text())
    (cell,) = doc["summary"]["rows"][0]["cells"].values()
    cell["mean"] += 1.0
    (forced.path / "summary.json").write_text(json.dumps(doc))
    mended = run(config, runs, runtime=Runtime(device="cpu", progress=False))
    assert mended.summary == forced.summary == load_run(forced.path).summary
    assert _stamp(Path(child)) == child_stamp
    shutil.rmtree(child)
    again = run_table(prof, runs, out=tmp_path, **kw)
    assert (Path(child) / "summary.json").is_file() and again.path == first.path
    assert again.row("Digits").cells["SB"].accuracies == first.row("Digits").cells["SB"].accuracies


def test_the_cli_prints_the_table_folder(tmp_path, capsys):
    from deep.__main__ import main

    argv = ["table", "--profile", "smoke", "--runs", str(tmp_path), "--seeds", "1"]
    assert main([*argv, "--max-steps", "2", "--no-control", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("table folder: ")]
    folder = Path(line.removeprefix("table folder: "))
    assert folder.parent == tmp_path and folder.name.startswith("table-")
    assert load_run(folder).summary["profile"] == "smoke"
