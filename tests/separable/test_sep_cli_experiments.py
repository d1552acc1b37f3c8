"""Run records and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from diffusion.records import load_run
from separable.__main__ import main
from separable.data import random_separable
from separable.experiments import SeparableRunConfig, run_optimizer


def test_run_optimizer_writes_and_reuses_a_run(tmp_path):
    cfg = SeparableRunConfig(data="fig1", method="gd", t_max=1e4, per_decade=10)
    run = run_optimizer(cfg, tmp_path)
    again = run_optimizer(cfg, tmp_path)
    assert again.path == run.path and load_run(run.path).summary == run.summary
    s = run.summary
    assert s["status"] == "finished" and s["steps"] == 10**4
    comp = s["comparison"]
    assert comp["predicted"]["theorem"] == "thm4"
    assert comp["measured"]["tL"] == pytest.approx(comp["predicted"]["tL"], rel=0.05)
    tr = run.trace()
    assert tr.t[-1] == 10**4 and tr.extras["w"].shape == (len(tr), 2)
    np.testing.assert_allclose(run.records["svm.w"], [0.5, 0.5])


def test_momentum_prediction_uses_the_effective_step(tmp_path):
    run = run_optimizer(
        SeparableRunConfig(data="fig1", method="momentum", t_max=1e5, per_decade=5), tmp_path
    )
    pred = run.summary["comparison"]["predicted"]
    assert pred["eta"] == pytest.approx(run.summary["eta"] / (1 - 0.9))
    assert run.summary["comparison"]["measured"]["tL"] == pytest.approx(pred["tL"], rel=0.05)


def test_config_validation_and_file_digest(tmp_path):
    with pytest.raises(ValueError, match="method must be one of"):
        SeparableRunConfig(method="lbfgs")
    with pytest.raises(ValueError, match="data must be one of"):
        SeparableRunConfig(data=str(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="t_max must be"):
        SeparableRunConfig(t_max=0.5)
    ds = random_separable(20, 3, seed=1)
    path = tmp_path / "d.npz"
    np.savez(path, X=ds.X, y=ds.y)
    cfg = SeparableRunConfig(data=str(path), t_max=100)
    assert len(cfg.data_digest) == 64
    np.savez(path, X=ds.X * 2, y=ds.y)
    assert SeparableRunConfig(data=str(path), t_max=100).data_digest != cfg.data_digest


def test_cli_svm_json_on_a_csv_file(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("x1,x2,y\n0.5,1.5,1\n1.5,0.5,1\n-0.5,-1.5,0\n-1.5,-0.5,0\n2,3,1\n")
    assert main(["svm", "--data", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(doc["w"], [0.5, 0.5], atol=1e-12)
    assert doc["support"] == [0, 1, 2, 3] and doc["margin"] == pytest.approx(np.sqrt(2))


def test_cli_svm_reports_non_separable_data(tmp_path, capsys):
    path = tmp_path / "xor.csv"
    path.write_text("1,1,1\n-1,-1,1\n1,-1,0\n-1,1,0\n")
    assert main(["svm", "--data", str(path)]) == 1
    assert "not linearly separable" in capsys.readouterr().out


def test_cli_run_text_and_json(tmp_path, capsys):
    out = tmp_path / "runs"
    assert (
        main(["run", "--data", "fig1", "--method", "sgd", "--t-max", "1e4", "--out", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert "t L(t)" in text and "w_tilde" in text and "run: " in text
    assert (
        main(
            [
                "run",
                "--data",
                "fig1",
                "--method",
                "sgd",
                "--t-max",
                "1e4",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["method"] == "sgd" and doc["steps"] == 10**4
    assert len(list(out.iterdir())) == 1  # the second call reused the run


def test_cli_errors_exit_with_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--data", str(tmp_path / "nope.npz")])
    assert info.value.code == 2
    assert "data must be one of" in capsys.readouterr().err
