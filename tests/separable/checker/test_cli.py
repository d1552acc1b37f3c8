"""``python -m separable check``: table, JSON, exit codes and errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import separable.checker.cli as cli
from separable.__main__ import main
from separable.optim import CustomUpdate


def test_table_for_the_logistic_loss_on_fig1(capsys):
    code = main(
        ["check", "--loss", "log(1+exp(-u))", "--data", "fig1", "--eta", "0.05", "--t-max", "1e5"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "item" in out and "verdict" in out and "evidence" in out
    assert "beta = sup|l''| = 1/4 exactly" in out and "mu- = 1" in out
    assert "every conclusion guaranteed by the theorem was observed" in out


def test_json_report(capsys):
    code = main(["check", "--loss", "exp", "--data", "fig1", "--eta", "1e-3", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["ok"] is True and doc["regime"] == "Thm 4"
    names = [a["name"] for a in doc["assumptions"]]
    assert names[0] == "A2 positive" and names[-1] == "A3 exp tail"
    step = next(i for i in doc["data_checks"] if i["name"] == "step bound")
    assert step["verdict"] == "holds" and "footnote" in step["evidence"]


def test_failing_assumptions_are_printed_with_their_reason(capsys):
    main(["check", "--loss", "max(0,1-u)", "--data", "fig1", "--eta", "0.01", "--t-max", "1e4"])
    out = capsys.readouterr().out
    assert "kink at u = 1" in out
    main(["check", "--loss", "(1-u)^2", "--data", "fig1", "--eta", "0.01", "--t-max", "1e4"])
    assert "violating l'(u) < 0" in capsys.readouterr().out
    main(["check", "--loss", "poly", "--data", "fig1", "--eta", "1e-3", "--t-max", "1e4"])
    assert "polynomial tail" in capsys.readouterr().out


def test_exit_code_is_one_when_a_guaranteed_conclusion_is_missing(monkeypatch, capsys):
    drift = 1e-3 * np.array([1.0, -1.0]) / math.sqrt(2)
    real = cli.check

    def biased_check(*args, **kwargs):
        eta = kwargs["eta"]
        kwargs["optimizer"] = CustomUpdate(lambda t, w, g: w - eta * g + drift, eta, "gd-biased")
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "check", biased_check)
    code = main(
        ["check", "--loss", "logistic", "--data", "fig1", "--eta", "0.007", "--t-max", "1e5"]
    )
    assert code == 1
    assert "GUARANTEED BUT NOT OBSERVED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--loss", "log(1+exp(-u)", "--data", "fig1", "--eta", "1"], "could not be parsed"),
        (["--loss", "exp(-v)", "--data", "fig1", "--eta", "1"], "the name 'v'"),
        (["--loss", "exec(chr(112))", "--data", "fig1", "--eta", "1"], "the call of 'exec'"),
        (["--loss", "logistic", "--data", "fig1", "--eta", "1", "--timeout", "0"], "--timeout"),
        (["--loss", "logistic", "--data", "fig1", "--eta", "0"], "eta must be"),
        (["--loss", "logistic", "--data", "fig1", "--eta", "-2"], "eta must be"),
        (["--loss", "logistic", "--data", "no/such/file.npz", "--eta", "1"], "no such file"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["check"] + argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_malformed_data_files(tmp_path, capsys):
    bad_npz = tmp_path / "bad.npz"
    np.savez(bad_npz, X=np.ones((3, 2)))  # no labels
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,1\n3,-1\n")
    for path, message in ((bad_npz, "lacks array"), (ragged, "same number")):
        with pytest.raises(SystemExit) as info:
            main(["check", "--loss", "logistic", "--data", str(path), "--eta", "0.1"])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "malformed" in err and message in err
