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
    assert "polylog exponent: fit" in text and "limit theory 2" in text and "Kesten" in text
    assert "bootstrap over 60 replicas" in text and "corrected scale Gamma_eff" in text


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


THEORY_ARGS = {  # "--opt=value" so that "-inf" is not read as an option
    "kesten": ["--b={x}"],
    "mfpt": ["--potential=0,{x},1"],
    "deff": ["--potential=0,1,{x}"],
    "kramers": ["--barrier={x}", "--curvature-min=1", "--curvature-max=-1"],
}


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("quantity", sorted(THEORY_ARGS))
def test_theory_refuses_non_finite_arguments(capsys, quantity, bad):
    """NaN or infinite arguments to every theory subcommand exit 2 naming the value.

    Mutant caught: ``float`` as the argparse type (``theory kesten --b nan`` printed nan and
    exited 0).
    """
    argv = ["theory", quantity, *(a.format(x=bad) for a in THEORY_ARGS[quantity])]
    assert _exit_code(argv) == 2
    assert bad in capsys.readouterr().err
    # and every float option, e.g. the temperature
    assert _exit_code(["theory", "deff", "--potential=0,1", f"--temperature={bad}"]) == 2


def _exit_code(argv: list[str]) -> int:
    """What the process would exit with: main's return value or argparse's SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_walk_refuses_a_direct_run_over_max_hours(tmp_path, capsys, monkeypatch):
    """A direct walk estimated over --max-hours exits 2 at once, with the estimate and coarse.

    The rate is fixed (no timing in the assertion): 1e3 walkers x 1e12 steps at 3e8
    walker-steps/s is 926 hours. Mutant caught: no estimate (the run starts).
    """
    import diffusion.walk

    monkeypatch.setattr(diffusion.walk, "measured_rate", lambda: 3e8)
    argv = ["walk", "--t-max", "1e12", "--walkers", "1000", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "926 hours" in err and "--method coarse" in err and "--max-hours 1" in err
    assert not any(tmp_path.iterdir())  # nothing started
    # 10 walkers to 2e4 at the same rate is well under a second: it runs
    small = ["walk", "--t-max", "2e4", "--walkers", "10", "--out", str(tmp_path), "--json"]
    assert main(small) == 0
    # a limit of 1e-9 hours refuses it, and --max-hours itself must be a finite positive number
    assert main([*small, "--force", "--max-hours", "1e-9"]) == 2
    assert "hours" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*small, "--max-hours", "nan"])
