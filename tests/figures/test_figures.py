"""Every figure at the tiny profile: files written and non-trivial, data saved, runs reused.

All figures are built once per module into temporary folders (the ``built`` fixture); the
reuse test builds them a second time from the same runs.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from diffusion.metrics import LawFit
from figures import registry
from figures.__main__ import main
from figures.output import load_data
from figures.registry import FIGURES, build_figures


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time (ns)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    out = tmp_path_factory.mktemp("out")
    results, failures = build_figures(None, profile="tiny", runs=runs, out=out)
    assert failures == []
    return runs, out, {r.name: r for r in results}


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_files_exist_and_are_not_blank(built, name):
    _, out, results = built
    res = results[name]
    assert res.png == out / f"{name}.png" and res.png.stat().st_size > 15_000
    pdf = out / f"{name}.pdf"
    assert pdf in res.paths and pdf.read_bytes()[:5] == b"%PDF-"
    img = imread(res.png)[..., :3]
    assert img.shape[0] > 250 and img.shape[1] > 300
    ink = np.mean(img.min(axis=-1) < 0.9)  # share of pixels that are not (near) white
    assert 0.03 < ink < 0.7
    assert img.std() > 0.1
    arrays, fits = load_data(res.data_file)
    assert res.data_file == out / f"{name}.npz" and arrays
    assert all(a.size > 0 for a in arrays.values())
    for key, fit in res.fits.items():
        assert isinstance(fit, LawFit)
        stored = fits[key]
        stored = stored["fits"][stored["best"]] if "best" in stored else stored
        assert stored["law"] == fit.law and stored["params"] == pytest.approx(fit.params)
    assert res.runs and all((Path(p) / "summary.json").is_file() for p in res.runs)


def test_second_build_recomputes_nothing(built):
    runs, out, first = built
    before = _snapshot(runs)
    data_before = {n: load_data(r.data_file)[0] for n, r in first.items()}
    results, _ = build_figures(None, profile="tiny", runs=runs, out=out)
    assert _snapshot(runs) == before
    for res in results:
        assert res.runs == first[res.name].runs
        again = load_data(res.data_file)[0]
        assert again.keys() == data_before[res.name].keys()
        for key, value in again.items():
            np.testing.assert_array_equal(
                value, data_before[res.name][key], err_msg=f"{res.name}:{key}"
            )


def test_overlay_reuses_the_runs_of_the_other_figures(built):
    _, _, results = built
    walker, gd, deep = results["overlay"].runs
    assert walker in results["sinai"].runs
    assert gd in results["soudry_fig1"].runs
    assert deep in results["distance"].runs


def test_overlay_curves_are_normalised_and_fits_follow_the_same_map(built):
    _, _, results = built
    arrays, fits = load_data(results["overlay"].data_file)
    for key in ("walker", "gd", "deep"):
        t, d = arrays[f"{key}.t"], arrays[f"{key}.distance"]
        np.testing.assert_allclose(arrays[f"{key}.y"], d / d[-1])
        # the walker's trace is on a log-time axis (t = 100 log t): its x is t / t_max there
        log_t = t / 100.0 if arrays[f"{key}.log_time"] else np.log(t)
        np.testing.assert_allclose(arrays[f"{key}.x"], log_t / log_t[-1])
        assert fits[key]["best"] in fits[key]["fits"]


def test_sinai_data_is_the_runs_data_and_the_theory_is_sinai_kesten(built):
    _, _, results = built
    res = results["sinai"]
    arrays, _ = load_data(res.data_file)
    g = arrays["H0.5.renormalised.log_t"]
    np.testing.assert_allclose(arrays["H0.5.theory.mean_abs"], 5.0 / 6.0 * g**2)  # sigma = T = 1
    # the lattice histogram data are the stored final positions over (log t)^2
    lattice = [
        p
        for p in res.runs
        if json.loads((Path(p) / "config.json").read_text())["config"]["method"] == "direct"
        and json.loads((Path(p) / "config.json").read_text())["config"]["potential"] == "sinai"
    ]
    with np.load(Path(lattice[0]) / "records.npz") as npz:
        t, pos = npz["t"], npz["extra.positions"]
    np.testing.assert_allclose(arrays["kesten.b_lattice"], pos[-1] / math.log(t[-1]) ** 2)
    # Kesten's density integrates to its mass on [-3, 3] (Simpson on the drawn grid)
    from scipy.integrate import simpson

    mass = simpson(arrays["kesten.pdf"], x=arrays["kesten.b"])
    assert 0.95 < mass < 1.0


def test_soudry_fig1_loss_prediction_is_norm_squared_over_eta_t(built):
    _, _, results = built
    arrays, _ = load_data(results["soudry_fig1"].data_file)
    X = arrays["data.X"]
    eta = 1.0 / np.linalg.svd(X, compute_uv=False)[0] ** 2  # the JMLR step
    for label, eta_eff in (("GD", eta), ("GDMO", eta / (1 - 0.9))):
        t = arrays[f"{label}.pred.t"].astype(float)
        np.testing.assert_allclose(
            arrays[f"{label}.pred.loss"], 0.5 / (eta_eff * t), rtol=1e-9
        )  # ||w_hat||^2 = 1/2
    np.testing.assert_allclose(arrays["svm.w"], [0.5, 0.5], atol=1e-9)


def test_distance_log_fits_match_an_independent_least_squares(built):
    _, _, results = built
    res = results["distance"]
    arrays, stored = load_data(res.data_file)
    log_fits = {k: f for k, f in stored.items() if k.endswith(".log")}
    assert log_fits and {k.split(".")[0] for k in res.fits} == {k.split(".")[0] for k in log_fits}
    for key, fit in log_fits.items():
        b = key.split(".")[0]
        t, d = arrays[f"{b}.t"].astype(float), arrays[f"{b}.distance"]
        keep = (t >= fit["t_range"][0]) & (t <= fit["t_range"][1])
        slope, intercept = np.polyfit(np.log(t[keep]), d[keep], 1)
        assert fit["params"]["b"] == pytest.approx(slope, rel=1e-8)
        assert fit["params"]["a"] == pytest.approx(intercept, rel=1e-8, abs=1e-10)


def test_table_bars_are_the_mean_accuracy_of_the_runs(built):
    _, out, results = built
    res = results["table"]
    arrays, _ = load_data(res.data_file)
    accs = {}
    for p in res.runs:
        summary = json.loads((Path(p) / "summary.json").read_text())["summary"]
        value = float(summary["final_val_acc"])
        accs.setdefault(p, 100 * value if value <= 1 else value)
    row = [k[: -len(".mean")] for k in arrays if k.endswith(".mean")]
    assert len(row) == 1
    means = arrays[f"{row[0]}.mean"]
    assert means.shape == (len(arrays["regimes"]),) and len(arrays["regimes"]) == 7
    assert np.nanmean(arrays[f"{row[0]}.accuracies"]) == pytest.approx(np.mean(list(accs.values())))
    assert (out / "table.md").read_text().count("|") > 10


@pytest.mark.parametrize("name", list(FIGURES))
def test_build_rejects_an_unknown_profile(name, tmp_path):
    with pytest.raises(ValueError, match="'huge'"):
        registry.load_figure(name).build("huge", tmp_path / "runs", tmp_path / "out")


def test_cli_builds_the_chosen_figures_from_existing_runs(built, tmp_path, capsys):
    runs, _, _ = built
    before = _snapshot(runs)
    code = main(
        [
            "--profile",
            "tiny",
            "--only",
            "soudry_adam",
            "--runs",
            str(runs),
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    assert (tmp_path / "soudry_adam.png").is_file() and (tmp_path / "soudry_adam.npz").is_file()
    assert "soudry_adam" in capsys.readouterr().out
    assert _snapshot(runs) == before
