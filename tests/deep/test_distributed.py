"""DDP under torchrun (2 processes, gloo on CPU) against one process with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import torch

from deep.train import TrainConfig, load_checkpoint, train

CONFIG = dict(
    model="mlp_digits",
    data="digits",
    batch_size=64,
    ghost_size=16,
    epochs=1.0,
    lr=0.1,
    eval_every=None,
    trace_per_decade=10,
)

SCRIPT = textwrap.dedent(f"""
    import sys
    import torch
    torch.set_num_threads(1)
    from deep.train import Runtime, TrainConfig, train
    train(TrainConfig(**{CONFIG!r}), sys.argv[1], runtime=Runtime(device="cpu", progress=False))
""")


def test_two_replicas_match_one_process(tmp_path):
    """Each replica holds 32 of the 64 samples: its two ghost batches of 16 are exactly two of
    the single process's four, so the averaged gradients and the weights must agree."""
    script = tmp_path / "ddp_job.py"
    script.write_text(SCRIPT)
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path / "ddp")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    single = train(TrainConfig(**CONFIG), tmp_path / "one", progress=False)
    ddp_folder = next((tmp_path / "ddp").iterdir())
    # the world size is part of the run's identity: the two runs never share a folder
    assert ddp_folder.name != single.path.name
    w_ddp = load_checkpoint(ddp_folder)["model"]
    w_one = load_checkpoint(single.path)["model"]
    steps = single.summary["steps"]
    assert steps >= 20
    for key, value in w_one.items():
        if key.endswith(("weight", "bias")):
            torch.testing.assert_close(w_ddp[key], value, atol=2e-5, rtol=1e-4, msg=key)
    with np.load(ddp_folder / "records.npz") as r:
        # distances and the (replica-averaged) minibatch losses agree as well
        np.testing.assert_allclose(r["distance"], single.records["distance"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(r["extra.loss"], single.records["extra.loss"], rtol=1e-4)
    summary = json.loads((ddp_folder / "summary.json").read_text())["summary"]
    assert summary["world_size"] == 2 and single.summary["world_size"] == 1
