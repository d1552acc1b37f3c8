"""The figures framework: names, profiles, the runner, the writers, the style and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from diffusion.metrics import fit_growth, fit_law, log_schedule
from figures import registry, style
from figures.__main__ import main
from figures.output import load_data, save_data, save_figure
from figures.registry import FIGURES, FigureResult, build_figures, check_profile, resolve_names


def test_resolve_names_accepts_repeats_and_comma_lists_in_build_order():
    assert resolve_names(None) == list(FIGURES)
    assert resolve_names([]) == list(FIGURES)
    assert resolve_names(["overlay", "sinai,table"]) == ["sinai", "table", "overlay"]
    assert resolve_names(["sinai", "sinai"]) == ["sinai"]


@pytest.mark.parametrize("bad", [["nope"], ["sinai,nope"]])
def test_resolve_names_rejects_unknown_names_naming_them(bad):
    with pytest.raises(ValueError, match="nope"):
        resolve_names(bad)


def test_check_profile():
    for p in ("tiny", "quick", "full"):
        assert check_profile(p) == p
    with pytest.raises(ValueError, match="'huge'"):
        check_profile("huge")


def test_every_registered_module_has_the_uniform_interface():
    for name in FIGURES:
        module = registry.load_figure(name)
        assert isinstance(module.TITLE, str) and module.TITLE
        assert callable(module.build)


def test_law_text_renders_each_law_and_matches_the_parameters():
    t = log_schedule(1e5, 20)
    fit = fit_law((t, 2.0 + 0.5 * np.log(t)), "log")
    assert fit_text_numbers(style.law_text(fit)) == pytest.approx([2.0, 0.5], rel=1e-3)
    gf = fit_growth((t, 1.0 + 0.3 * np.log(t) ** 2))
    for f in gf.fits.values():
        text = style.law_text(f)
        assert text.startswith("$") and text.endswith("$")


def fit_text_numbers(text: str) -> list[float]:
    import re

    nums = [float(x) for x in re.findall(r"[-+]?\d+\.?\d*", text.replace(" ", ""))]
    return nums


def test_save_figure_and_data_round_trip(tmp_path):
    fig, axes = style.new_figure(1, 2, width="page")
    t = log_schedule(1e4)
    axes[0, 0].semilogx(t, np.log(t))
    paths = save_figure(fig, tmp_path, "demo")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    fit = fit_law((t, np.log(t)), "log")
    data = save_data(tmp_path, "demo", {"t": t, "label": np.asarray(["a", "b"])}, {"curve": fit})
    arrays, fits = load_data(data)
    np.testing.assert_array_equal(arrays["t"], t)
    assert list(arrays["label"]) == ["a", "b"]
    assert fits["curve"]["law"] == "log" and fits["curve"]["params"]["b"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fits"):
        save_data(tmp_path, "demo", {"fits": t}, {"curve": fit})
    with pytest.raises(TypeError, match="'obj'"):
        save_data(tmp_path, "demo", {"obj": np.array([{}, 1], dtype=object)})


def test_new_figure_validates_its_arguments():
    with pytest.raises(ValueError, match="width"):
        style.new_figure(width="poster")
    with pytest.raises(ValueError, match="aspect"):
        style.new_figure(aspect=-1)


def _fake_module(tmp_calls):
    class Fake:
        TITLE = "a fake figure"

        @staticmethod
        def build(profile, runs, out):
            tmp_calls.append(profile)
            if profile == "tiny" and len(tmp_calls) == 1:
                raise RuntimeError("first call fails")
            fig, ax = style.new_figure()
            ax[0, 0].plot([1, 2], [3, 4])
            paths = save_figure(fig, out, "fake")
            data = save_data(out, "fake", {"x": np.arange(2)})
            return FigureResult("fake", paths, data)

    return Fake


def test_runner_keeps_going_past_a_failure_and_reports_it(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setitem(FIGURES, "fake", "fake")
    monkeypatch.setattr(registry, "load_figure", lambda name: _fake_module(calls))
    lines: list[str] = []
    registry.set_progress(lines.append)
    try:
        results, failures = build_figures(
            ["fake"], profile="tiny", runs=tmp_path / "r", out=tmp_path / "o", keep_going=True
        )
        assert results == [] and [f.name for f in failures] == ["fake"]
        assert "first call fails" in failures[0].traceback
        results, failures = build_figures(
            ["fake"], profile="tiny", runs=tmp_path / "r", out=tmp_path / "o"
        )
    finally:
        registry.set_progress(None)
    assert failures == [] and results[0].png == tmp_path / "o" / "fake.png"
    assert any("FAILED" in line for line in lines) and any("done in" in line for line in lines)
    with pytest.raises(RuntimeError):
        calls.clear()
        build_figures(["fake"], profile="tiny", runs=tmp_path / "r", out=tmp_path / "o")


def test_cli_list_and_bad_only(capsys):
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == list(FIGURES)
    with pytest.raises(SystemExit):
        main(["--only", "nope"])
    assert "nope" in capsys.readouterr().err


def test_fits_are_json_text_in_the_data_file(tmp_path):
    t = log_schedule(1e3)
    path = save_data(tmp_path, "x", {"t": t}, {"f": fit_law((t, np.log(t)), "log")})
    with np.load(path) as npz:
        assert json.loads(str(npz["fits"]))["f"]["law"] == "log"
