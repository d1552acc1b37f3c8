"""``python -m deep``: the train subcommand end to end, its errors, and the registration hook."""

from __future__ import annotations

import json
import re

import pytest

from deep.__main__ import SUBCOMMAND_MODULES, build_parser, main
from diffusion.records import load_run


def test_train_writes_a_run(tmp_path, capsys):
    argv = [
        "train",
        "--model",
        "mlp_digits",
        "--data",
        "digits",
        "--batch-size",
        "256",
        "--base-batch-size",
        "64",
        "--lr-scaling",
        "sqrt",
        "--ghost-size",
        "32",
        "--regime-adaptation",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        "--runs",
        str(tmp_path),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    path = out.splitlines()[0].removeprefix("run: ")
    run = load_run(path)
    shown = json.loads(out[out.index("{") :])
    assert shown["steps"] == run.summary["steps"] == -(-run.summary["n_train"] // 64)
    assert run.config["ghost_size"] == 32 and run.config["regime_adaptation"] is True
    assert run.summary["peak_lr"] == pytest.approx(0.2)


def test_device_cpu_and_auto_share_a_run_folder(tmp_path, capsys):
    """The device is an execution setting, not part of the run's identity: the ``auto`` command
    finds the folder written by the ``cpu`` one and reuses it (same wall time, no training).
    Catches a device field hashed into the run folder's name."""
    argv = ["train", "--model", "mlp_digits", "--data", "digits", "--epochs", "1"]
    argv += ["--no-progress", "--runs", str(tmp_path)]
    outputs = []
    for device in ("cpu", "auto"):
        assert main([*argv, "--device", device]) == 0
        outputs.append(capsys.readouterr().out)
    paths = [out.splitlines()[0] for out in outputs]
    walls = [json.loads(out[out.index("{") :])["wall_time_s"] for out in outputs]
    assert paths[0] == paths[1] and walls[0] == walls[1]
    assert len(list(tmp_path.iterdir())) == 1 and paths[0].split("/")[-1].startswith("train-")


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--model", "resnet50", "--data", "digits"], "invalid choice: 'resnet50'"),
        (
            ["train", "--model", "f1", "--data", "mnist", "--data-root", "/nonexistent-folder"],
            "not a folder",
        ),
        (["train", "--model", "f1", "--data", "digits", "--batch-size", "0"], "batch_size"),
        (["train", "--model", "f1", "--data", "digits", "--lr", "-1"], "lr must be"),
    ]
    + [
        (["train", "--model", "mlp_digits", "--data", "digits", *extra], match)
        for extra, match in [
            (["--batch-size", "5000", "--base-batch-size", "128"], "exceeds the 1437 samples"),
            (["--lr-decay", "5"], "lr_decay must be a finite number > 0 and <= 1, got 5.0"),
            (["--momentum", "1.5"], "momentum must be a finite number >= 0 and < 1, got 1.5"),
            (["--momentum", "-0.1"], "momentum must be"),
            (["--ghost-size", "1"], "ghost_size must be an integer >= 2"),
            (["--ghost-size", "256"], "ghost_size .* must not exceed batch_size"),
            (["--base-batch-size", "0"], "base_batch_size must be"),
            (["--epochs", "0"], "epochs must be"),
            (["--epochs", "nan"], "epochs must be a finite"),
            (["--weight-decay", "-1"], "weight_decay must be"),
            (["--warmup-epochs", "-1"], "warmup_epochs must be"),
            (["--grad-clip", "0"], "grad_clip must be"),
            (["--milestones", "2", "-1"], "milestones must be"),
            (["--seed", "-1"], "seed must be"),
            (["--trace-per-decade", "0"], "trace_per_decade must be"),
            (["--eval-every", "0"], "eval_every must be"),
            (["--eval-every", "often"], "--eval-every must be"),
            (["--max-steps", "0"], "max_steps must be"),
            (["--replicas", "2"], "replicas is 2 but this process is one of 1"),
            (["--replicas", "0"], "replicas must be"),
            (["--bn-mode", "global"], "invalid choice: 'global'"),
            (["--lr-scaling", "cubic"], "invalid choice: 'cubic'"),
            (["--augment", "mixup"], "invalid choice: 'mixup'"),
            (["--checkpoint-interval", "-1"], "checkpoint_interval_s must be"),
            (["--checkpoint-every", "0"], "checkpoint_every must be"),
            (["--threads", "0"], "threads must be"),
        ]
    ],
)
def test_errors_are_messages(tmp_path, capsys, argv, match):
    """Every recipe and runtime field: a bad value exits 2 with a message naming it, before any
    training. Catches an unvalidated field (e.g. ``--lr-decay 5`` was accepted)."""
    with pytest.raises(SystemExit) as info:
        main([*argv, "--runs", str(tmp_path), "--no-progress", "--device", "cpu"])
    assert info.value.code == 2
    assert re.search(match, capsys.readouterr().err)


def test_subcommand_hook(monkeypatch):
    """A module named in SUBCOMMAND_MODULES that defines add_parser becomes a subcommand."""
    import sys
    import types

    import deep.__main__ as cli

    module = types.ModuleType("fake_deep_subcommand")

    def add_parser(subparsers):
        p = subparsers.add_parser("fake-table", help="a registered subcommand")
        p.set_defaults(func=lambda args: 7)

    module.add_parser = add_parser
    monkeypatch.setitem(sys.modules, "fake_deep_subcommand", module)
    monkeypatch.setattr(
        cli,
        "SUBCOMMAND_MODULES",
        (*SUBCOMMAND_MODULES, "fake_deep_subcommand", "deep.no_such_module"),
    )
    assert "fake-table" in build_parser().format_help()
    assert main(["fake-table"]) == 7
