"""The table runner end to end on a tiny profile: runs, reuse, statistics, files, schema."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

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
