"""A table killed mid-run (SIGKILL, no clean-up) finishes with the numbers of an uninterrupted one.

The killed process checkpoints after every step, as the default 60-second clock does on a
run long enough, and dies in the middle of its third training run: two runs finished, one
with a checkpoint at step 4 of 8, the rest not started. Running the same table again must
reuse the two, resume the third at step 4 and give bit-for-bit the records and accuracies of
a table that was never interrupted.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import torch

from deep.profiles import SMOKE, Profile
from deep.table import run_table
from diffusion.records import load_run

OVERRIDES = {"max_steps": 8, "trace_per_decade": 10}
STEPS = 8
KILL_AT_SAVE = 2 * STEPS + 4  # two whole runs (7 mid-run checkpoints + the last), then 4 more

SCRIPT = textwrap.dedent(f"""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    import deep.train as T
    import dataclasses
    from deep.profiles import SMOKE
    from deep.table import run_table

    T.Recorder.due = lambda self, step: step < self.plan.total_steps  # a checkpoint every step
    saved = []
    original = T.Recorder.save

    def save(self, step, model, optimizer, **options):
        complete = original(self, step, model, optimizer, **options)

        def finish():
            complete()
            saved.append(step)
            if len(saved) == {KILL_AT_SAVE}:
                os.kill(os.getpid(), signal.SIGKILL)  # as a crash or a pre-emption

        if options.get("background"):
            return finish
        finish()
        return lambda: None

    T.Recorder.save = save
    profile = dataclasses.replace(SMOKE, seeds=1)
    run_table(profile, sys.argv[1], out=sys.argv[1], overrides={OVERRIDES!r})
""")


def _profile() -> Profile:
    return dataclasses.replace(SMOKE, seeds=1)


def _table(root):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_table(_profile(), root, out=root, overrides=OVERRIDES)
    finally:
        torch.set_num_threads(threads)


def test_a_killed_table_finishes_with_the_numbers_of_an_uninterrupted_one(tmp_path):
    """Catches a loop that writes no mid-run checkpoint (the third run restarts at 0), a resume
    that loses records or random states (records differ), and a table that retrains or skips
    finished runs (resumed_from / counts)."""
    killed_root, plain_root = tmp_path / "killed", tmp_path / "plain"
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    killed = subprocess.run(
        [sys.executable, str(script), str(killed_root)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    folders = sorted(p for p in killed_root.iterdir() if p.is_dir())
    finished = [p for p in folders if (p / "summary.json").exists()]
    assert len(finished) == 2 and len(folders) == 3  # the third died mid-run
    assert not (killed_root / "table.json").exists()

    resumed = _table(killed_root)
    plain = _table(plain_root)

    resumed_from = sorted(
        load_run(p).summary["resumed_from"] for p in killed_root.glob("train-*")
    )  # the training runs (the table's own folder is there too)
    n_runs = len(resumed_from)
    assert n_runs >= 5 and resumed_from == [0] * (n_runs - 1) + [4]
    for row_a, row_b in zip(resumed.rows, plain.rows, strict=True):
        for regime, cell in row_a.cells.items():
            assert cell.accuracies == row_b.cells[regime].accuracies, regime
    for folder in (p for p in plain_root.iterdir() if p.is_dir()):
        twin = killed_root / folder.name
        with np.load(folder / "records.npz") as a, np.load(twin / "records.npz") as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{folder.name}: {key}")
