"""``python -m diffusion``: walk runs and exact theory values."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from diffusion import theory
from diffusion.__main__ import main
from diffusion.experiments import WalkConfig
from diffusion.records import load_run


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_help_runs_as_a_module():
    out = subprocess.run(
        [sys.executable, "-m", "diffusion", "--help"], capture_output=True, text=True, check=True
    )
    assert "walk" in out.stdout and "theory" in out.stdout


def test_theory_kesten(capsys):
    values = _json(capsys, ["theory", "kesten", "--b", "0.5,1,2", "--json"])
    assert values["mean_abs"] == pytest.approx(5 / 6) and values["second_moment"] == pytest.approx(
        61 / 45
    )
    np.testing.assert_allclose(values["pdf"], theory.kesten_pdf([0.5, 1, 2]))
    assert main(["theory", "kesten"]) == 0
    assert "61/45" in capsys.readouterr().out


def test_theory_mfpt_deff_kramers(capsys):
    u = [0.0, 1.0, 2.0, 1.0, 0.0]
    values = _json(capsys, ["theory", "mfpt", "--potential", "0,1,2,1,0", "--json"])
    right, left = theory.metropolis_rates(u, 1.0)
    assert values["mfpt_0_to_N"] == pytest.approx(theory.mfpt(right, left)[0])
    values = _json(
        capsys, ["theory", "deff", "--potential", "0,1.5,0.3", "--temperature", "2", "--json"]
    )
    assert values["d_eff"] == pytest.approx(theory.effective_diffusion([0, 1.5, 0.3], 2.0))
    values = _json(
        capsys,
        [
            "theory",
            "kramers",
            "--barrier",
            "5",
            "--curvature-min",
            "8",
            "--curvature-max",
            "-4",
            "--json",
        ],
    )
    assert values["rate"] == pytest.approx(np.sqrt(32) / (2 * np.pi) * np.exp(-5))


def test_walk_coarse_writes_and_reuses_a_run(tmp_path, capsys):
    argv = [
        "walk",
        "--method",
        "coarse",
        "--t-max",
        "1e30",
        "--walkers",
        "60",
        "--out",
        str(tmp_path),
        "--json",
    ]
    first = _json(capsys, argv)
    run = load_run(first["run"])
    assert run.config["t_max"] == 1e30 and run.config["method"] == "coarse"
    gamma = run.trace().extras["gamma"]
    assert gamma[-1] == pytest.approx(np.log(1e30), abs=0.01)
    summary = first["summary"]
    assert summary["theory"]["polylog_exponent"] == 2.0
    assert 1.0 < summary["polylog_exponent_measured"] < 3.0
    again = _json(capsys, argv)
    assert again["run"] == first["run"] and again["summary"] == summary
    assert main(argv[:-1]) == 0  # the text form prints the fit beside the theory
    text = capsys.readouterr().out
    assert "polylog exponent: measured" in text and "theory 2" in text and "Kesten" in text


def test_walk_direct_bounded_prints_deff(tmp_path, capsys):
    argv = [
        "walk",
        "--potential",
        "bounded",
        "--sigma",
        "2",
        "--walkers",
        "100",
        "--t-max",
        "2e4",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "D_eff (exact)" in text and "rms at the last time" in text


@pytest.mark.parametrize(
    "extra, word",
    [
        (["--temperature", "0"], "temperature"),
        (["--temperature", "-1"], "temperature"),
        (["--sigma", "-1"], "sigma"),
        (["--potential", "fbm", "--hurst", "1.5"], "hurst"),
        (["--potential", "fbm", "--hurst", "0"], "hurst"),
        (["--potential", "field", "--dim", "4"], "dim"),
        (["--dim", "2"], "dim"),
        (["--method", "coarse", "--potential", "bounded"], "coarse"),
        (["--t-max", "1e30"], "t_max"),
    ],
)
def test_walk_bad_input(tmp_path, capsys, extra, word):
    assert main(["walk", "--out", str(tmp_path), *extra]) == 2
    assert word in capsys.readouterr().err


def test_config_validation_messages():
    with pytest.raises(ValueError, match="walkers"):
        WalkConfig(walkers=0)
    with pytest.raises(ValueError, match="potential"):
        WalkConfig(potential="levy")
    with pytest.raises(TypeError, match="dim"):
        WalkConfig(potential="field", dim=2.5, correlation_length=1.0)
