"""A run made by one entry point is found by every other: CLI first, then the figure."""

from __future__ import annotations

import json

from deep.__main__ import main
from figures import distance


def test_the_distance_figure_reuses_the_sweep_the_cli_made(tmp_path, capsys):
    c = distance.SETTINGS["tiny"].config
    argv = [
        "distance",
        "--model", c.model, "--data", c.data,
        "--batch-sizes", ",".join(map(str, c.batch_sizes)),
        "--epochs", str(c.epochs), "--adapted-epochs", str(c.adapted_epochs),
        "--lr", str(c.lr), "--ghost-size", str(c.ghost_size),
        "--trace-per-decade", str(c.trace_per_decade),
        "--device", "auto",  # the figure runs on "cpu": the device is not part of the identity
        "--runs", str(tmp_path), "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    before = {p.parent.name: p.stat().st_mtime_ns for p in tmp_path.glob("*/summary.json")}
    result = distance.compute("tiny", tmp_path)
    after = {p.parent.name: p.stat().st_mtime_ns for p in tmp_path.glob("*/summary.json")}
    assert after == before  # nothing trained, nothing rewritten
    assert result.as_dict()["checks"] == doc["checks"]
    assert (
        result.equal_epochs[c.batch_sizes[0]].run
        == doc["equal_epochs"][str(c.batch_sizes[0])]["run"]
    )
