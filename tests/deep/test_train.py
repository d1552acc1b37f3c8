"""The trainer against independent computations: hand-written SGD, distance, resume, errors."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deep.data import BatchOrder, load_dataset
from deep.ghost_bn import GhostBatchNorm1d
from deep.models import build
from deep.regime import steps_for_epochs
from deep.train import (
    CHECKPOINT_FILE,
    NonFiniteLossError,
    Runtime,
    TrainConfig,
    load_checkpoint,
    load_model,
    train,
)

SMALL = dict(
    model="mlp_digits",
    data="digits",
    batch_size=100,
    epochs=3.0,
    lr=0.05,
    milestones=(2.0,),
    lr_decay=0.2,
    momentum=0.9,
    weight_decay=1e-3,
    trace_per_decade=10,
)
CPU = Runtime(device="cpu", progress=False, checkpoint_interval_s=math.inf)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return train(TrainConfig(**SMALL), root, runtime=CPU), root


def test_weights_equal_a_hand_written_sgd(small_run):
    """Same order and regime, with SGD + momentum + weight decay written out by hand."""
    run, _ = small_run
    cfg = TrainConfig(**SMALL)
    data = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    model = build("mlp_digits", data.num_classes)
    params = list(model.parameters())
    velocity = [torch.zeros_like(p) for p in params]
    n = len(data.train)
    total = math.ceil(3 * n / 100)
    drop = math.ceil(2 * n / 100)
    order = BatchOrder(n, 100, 0)
    for step in range(total):
        idx = order.indices(step)
        loss = F.cross_entropy(model(data.train.x[idx]), data.train.y[idx])
        grads = torch.autograd.grad(loss, params)
        lr = cfg.lr * (0.2 if step >= drop else 1.0)
        with torch.no_grad():
            for p, g, v in zip(params, grads, velocity, strict=True):
                v.mul_(0.9).add_(g + 1e-3 * p)  # the buffer persists across epochs
                p.sub_(lr * v)
    trained = load_model(run)
    for (name, p), q in zip(trained.named_parameters(), params, strict=True):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4, msg=name)
    assert run.summary["steps"] == total


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 1e-3), (0.0, 0.0), (0.5, 0.0)])
def test_the_fused_sgd_makes_torchs_plain_updates_bit_for_bit(momentum, weight_decay):
    """The trainer's optimiser (fused on CPU) and torch's plain SGD, fed the same gradients
    for 20 steps at a changing learning rate, hold the same weights and momenta, bit for bit.

    Mutant caught: the weight decay or the momentum left out of the fused step's settings."""
    from deep.train import make_sgd

    cfg = TrainConfig(**{**SMALL, "momentum": momentum, "weight_decay": weight_decay})
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(shape, generator=gen) for shape in ((64, 30), (64,), (10, 64))]
    ours = [p.clone().requires_grad_(True) for p in start]
    plain = [p.clone().requires_grad_(True) for p in start]
    fused = make_sgd(ours, 0.05, cfg)
    assert all(group["fused"] for group in fused.param_groups)
    reference = torch.optim.SGD(
        plain, lr=0.05, momentum=momentum, weight_decay=weight_decay, foreach=False
    )
    for step in range(20):
        for opt in (fused, reference):
            for group in opt.param_groups:
                group["lr"] = 0.05 / (1 + step)
        for a, b in zip(ours, plain, strict=True):
            a.grad = torch.randn(a.shape, generator=gen)
            b.grad = a.grad.clone()
        fused.step()
        reference.step()
    for a, b in zip(ours, plain, strict=True):
        assert torch.equal(a, b)
        if momentum:
            assert torch.equal(
                fused.state[a]["momentum_buffer"], reference.state[b]["momentum_buffer"]
            )


def test_trace_distance_and_schedule(small_run):
    run, _ = small_run
    trace = run.trace()
    total = run.summary["steps"]
    assert trace.t[0] == 0 and trace.t[-1] == total and trace.distance[0] == 0.0
    n = run.summary["n_train"]
    epoch_ends = [steps_for_epochs(e, n, 100) for e in (1, 2, 3)]
    assert set(epoch_ends) <= set(trace.t.tolist())
    # distance of the final weights, computed here from the rebuilt initial model
    torch.manual_seed(0)
    init = build("mlp_digits", 10)
    final = load_model(run)
    d2 = sum(
        float(((p - q).detach().double() ** 2).sum())
        for p, q in zip(final.parameters(), init.parameters(), strict=True)
    )
    assert trace.distance[-1] == pytest.approx(math.sqrt(d2), rel=1e-5)  # float32 norms
    # per-layer distances add up (in squares) to the total at every recorded step
    layers = np.stack([v for k, v in trace.extras.items() if k.startswith("dist.")], axis=1)
    np.testing.assert_allclose(np.sqrt((layers**2).sum(1)), trace.distance, rtol=1e-12)
    assert layers.shape[1] == len(list(final.parameters()))
    # learning rate of each recorded step: 0.05 before epoch 2, 0.01 after
    drop = steps_for_epochs(2, n, 100)
    np.testing.assert_allclose(
        trace.extras["lr"], np.where(trace.t >= drop, 0.01, 0.05), rtol=1e-12
    )
    # evaluation at each epoch end; the eval trace holds exactly those points
    ev = run.trace("eval.")
    assert ev.t.tolist() == epoch_ends
    assert (
        np.all(np.isfinite(ev.extras["val_acc"]))
        and run.summary["final_val_acc"] == ev.extras["val_acc"][-1]
    )
    assert run.summary["final_val_acc"] > 0.85  # digits with 3 epochs: far above chance (0.1)
    assert np.isnan(trace.extras["val_acc"][1])
    # the loss is recorded at w_t on batch t: step 0 equals the initial model's loss on batch 0
    idx = BatchOrder(n, 100, 0).indices(0)
    data = load_dataset("digits")
    init.train()
    assert trace.extras["loss"][0] == pytest.approx(
        float(F.cross_entropy(init(data.train.x[idx]), data.train.y[idx]).detach()), rel=1e-6
    )


def test_finished_run_is_reused(small_run):
    run, root = small_run
    again = train(TrainConfig(**SMALL), root, runtime=CPU)
    assert again.path == run.path and again.summary["wall_time_s"] == run.summary["wall_time_s"]


def test_ghost_bn_and_regime_adaptation(tmp_path):
    cfg = TrainConfig(
        **{
            **SMALL,
            "epochs": 1.0,
            "milestones": (),
            "batch_size": 256,
            "base_batch_size": 64,
            "ghost_size": 32,
            "regime_adaptation": True,
            "lr_scaling": "sqrt",
            "eval_every": None,
            "warmup_epochs": 0.5,
        }
    )
    run = train(cfg, tmp_path, runtime=CPU)
    n = run.summary["n_train"]
    assert run.summary["steps"] == math.ceil(n / 64)  # as many updates as one epoch at B=64
    assert run.summary["regime_factor"] == 4 and run.summary["peak_lr"] == pytest.approx(0.1)
    model = load_model(run)
    assert any(isinstance(m, GhostBatchNorm1d) and m.ghost_size == 32 for m in model.modules())
    assert run.trace().extras["lr"][0] == pytest.approx(0.05)  # warm-up starts at the base rate


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = TrainConfig(**{**SMALL, "lr": 1e30, "momentum": 0.0, "milestones": ()})
    with pytest.raises(NonFiniteLossError, match=r"at step \d+") as info:
        train(cfg, tmp_path, runtime=replace(CPU, checkpoint_every=1))
    folder = next(tmp_path.iterdir())
    ckpt = load_checkpoint(folder)
    assert 1 <= ckpt["step"] <= info.value.step  # written before the failure, never after
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert not (folder / "summary.json").exists()
    # the message names the checkpoint that is really there
    assert f"the checkpoint of step {ckpt['step']} in" in str(info.value)
    assert info.value.checkpoint_step == ckpt["step"]


def test_non_finite_loss_without_a_checkpoint_says_so(tmp_path):
    """Catches the old message, which claimed a checkpoint was kept when none was written."""
    cfg = TrainConfig(**{**SMALL, "lr": 1e30, "momentum": 0.0, "milestones": ()})
    with pytest.raises(NonFiniteLossError, match="no checkpoint had been written") as info:
        train(cfg, tmp_path, runtime=CPU)
    assert info.value.checkpoint_step is None
    assert not list(tmp_path.rglob("checkpoint*"))


def test_checkpoints_are_time_based_by_default(tmp_path):
    """Default cadence 60 s; with a 0 s interval every step is checkpointed (and the end once).
    Catches a trainer that checkpoints only at the end or ignores the interval."""
    assert Runtime().checkpoint_interval_s == 60.0
    steps: list[int] = []
    cfg = TrainConfig(**{**SMALL, "epochs": 1.0, "milestones": ()})
    run = train(
        cfg, tmp_path, runtime=replace(CPU, checkpoint_interval_s=0.0), on_checkpoint=steps.append
    )
    total = run.summary["steps"]
    assert steps == list(range(1, total + 1))


def test_batch_larger_than_the_training_split_is_refused(tmp_path):
    """digits has 1,437 training samples: B = 5000 would repeat samples within one step."""
    cfg = TrainConfig(**{**SMALL, "batch_size": 5000, "base_batch_size": 5000})
    with pytest.raises(ValueError, match=r"batch_size 5000 exceeds the 1437 samples"):
        train(cfg, tmp_path, runtime=CPU)
    cfg = TrainConfig(**{**SMALL, "batch_size": 1437, "epochs": 1.0, "milestones": ()})
    assert train(cfg, tmp_path, runtime=CPU).summary["steps"] == 1  # the whole split is fine


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_checkpoint_is_refused_and_nothing_runs(tmp_path, capsys):
    """A ``checkpoint.pt`` holding a pickled ``os.system`` call in the run folder: resuming
    refuses it (``weights_only=True``) with a message naming the file; the CLI exits 2.
    Catches ``torch.load(weights_only=False)``, which would run the call."""
    from deep.__main__ import main
    from diffusion.records import run_dir

    cfg = TrainConfig(**{**SMALL, "epochs": 1.0, "milestones": ()})
    folder = run_dir(tmp_path, cfg)
    folder.mkdir(parents=True)
    marker = tmp_path / "pwned"
    torch.save({"step": 1, "model": _Payload(marker)}, folder / CHECKPOINT_FILE)
    with pytest.raises(ValueError, match="checkpoint.pt.* not a readable checkpoint"):
        train(cfg, tmp_path, runtime=CPU)
    argv = [
        "train",
        "--model",
        "mlp_digits",
        "--data",
        "digits",
        "--batch-size",
        "100",
        "--epochs",
        "1",
        "--lr",
        "0.05",
        "--weight-decay",
        "1e-3",
        "--trace-per-decade",
        "10",
        "--lr-decay",
        "0.2",
        "--runs",
        str(tmp_path),
        "--device",
        "cpu",
        "--no-progress",
    ]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and "checkpoint.pt" in capsys.readouterr().err
    assert not marker.exists()


def test_wall_time_adds_up_over_resumed_segments(tmp_path):
    """The checkpoint's elapsed time is carried into the resumed run's summary.
    Catches a summary that counts only the last segment."""
    cfg = TrainConfig(**{**SMALL, "epochs": 1.0, "milestones": ()})
    killed: list[int] = []

    def stop(step):
        if step == 5:
            killed.append(step)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, runtime=replace(CPU, checkpoint_every=5), on_checkpoint=stop)
    folder = next(tmp_path.iterdir())
    ckpt = load_checkpoint(folder)
    ckpt["wall_time_s"] = 1.0e6  # as if the first segment had run for a long time
    torch.save(ckpt, folder / CHECKPOINT_FILE)
    run = train(cfg, tmp_path, runtime=CPU)
    assert run.summary["resumed_from"] == 5
    assert 1.0e6 < run.summary["wall_time_s"] < 1.0e6 + 600


@pytest.mark.parametrize(
    "change, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"ghost_size": 256}, "ghost_size"),
        ({"lr": -0.1}, "lr"),
        ({"model": "lenet"}, "mlp_digits"),
        ({"data": "svhn"}, "digits"),
        ({"eval_every": "often"}, "eval_every"),
    ],
)
def test_bad_config(change, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{**SMALL, **change})


def test_config_follows_the_shared_validation_contract():
    """diffusion.validation: a wrong type is a TypeError (a bool batch size or a float seed was a
    ValueError before the shared checks), an np.bool_ flag is a bool (refused before); values
    the hash keeps as given (grad_clip, milestones) are checked but not converted."""
    with pytest.raises(TypeError, match="batch_size must be an integer, got bool"):
        TrainConfig(**{**SMALL, "batch_size": True})
    with pytest.raises(TypeError, match="seed must be an integer, got float"):
        TrainConfig(**{**SMALL, "seed": 1.0})
    with pytest.raises(TypeError, match="regime_adaptation must be True or False, got int"):
        TrainConfig(**{**SMALL, "regime_adaptation": 1})
    with pytest.raises(ValueError, match="momentum must be a finite number >= 0 and < 1"):
        TrainConfig(**{**SMALL, "momentum": 1.0})
    with pytest.raises(ValueError, match="lr_decay must be a finite number > 0 and <= 1"):
        TrainConfig(**{**SMALL, "lr_decay": 1.5})
    cfg = TrainConfig(**{**SMALL, "regime_adaptation": np.bool_(True)})
    assert cfg.regime_adaptation is True
    assert cfg == TrainConfig(**{**SMALL, "regime_adaptation": True})
    kept = TrainConfig(**{**SMALL, "grad_clip": 1, "milestones": (2,)})
    assert type(kept.grad_clip) is int and type(kept.milestones[0]) is int


def test_numpy_scalars_make_the_same_config():
    """np.int64(100) from a numpy sweep names the same run as 100 (it was rejected before)."""
    from diffusion.records import config_hash

    cfg = TrainConfig(**{**SMALL, "batch_size": np.int64(100), "lr": np.float32(0.5)})
    assert cfg == TrainConfig(**{**SMALL, "lr": 0.5}) and type(cfg.batch_size) is int
    assert config_hash(cfg) == config_hash(TrainConfig(**{**SMALL, "lr": 0.5}))


def test_model_and_data_shapes_must_agree(tmp_path):
    with pytest.raises(ValueError, match=r"takes samples of shape \(3, 32, 32\)"):
        train(TrainConfig(**{**SMALL, "model": "c1"}), tmp_path, runtime=CPU)


RESUME_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from deep.train import Runtime, TrainConfig, train
    cfg = TrainConfig(model="f1", data="mnist5k", batch_size=500, epochs=3.0,
                      eval_every="epoch", trace_per_decade=10)
    runtime = Runtime(device="cpu", progress=False, checkpoint_every=8,
                      checkpoint_interval_s=float("inf"))
    mode, root = sys.argv[1], sys.argv[2]
    def die(step):
        if (mode == "kill" and step >= 8) or (mode == "final" and step == 24):
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, as a crash or a pre-emption
    train(cfg, root, runtime=runtime, on_checkpoint=die)
""")


@pytest.mark.parametrize("mode, killed_at", [("kill", 8), ("final", 24)])
def test_resume_after_kill_is_bitwise_identical(tmp_path, mode, killed_at):
    """Killed after a mid-run checkpoint, or after the final one (written while the final row
    is evaluated, before the run's records exist): the resumed run's records, weights and
    momenta are those of an uninterrupted run, bit for bit.

    Mutant caught: a resume from the final checkpoint that takes the run for finished and
    skips the final row it does not hold."""
    script = tmp_path / "job.py"
    script.write_text(RESUME_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(
        [sys.executable, str(script), mode, str(tmp_path / "a")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    folder_a = next((tmp_path / "a").iterdir())
    assert load_checkpoint(folder_a)["step"] == killed_at
    assert not (folder_a / "summary.json").exists()
    namespace: dict = {}
    exec(compile(RESUME_SCRIPT.split("mode, root")[0], "job", "exec"), namespace)  # same config
    cfg, runtime = namespace["cfg"], namespace["runtime"]
    resumed = train(cfg, tmp_path / "a", runtime=runtime)  # picks up the dead process's checkpoint
    assert resumed.summary["resumed_from"] == killed_at
    train(cfg, tmp_path / "b", runtime=runtime)  # straight through, for comparison
    folder_b = next((tmp_path / "b").iterdir())
    assert folder_a.name == folder_b.name
    with np.load(folder_a / "records.npz") as ra, np.load(folder_b / "records.npz") as rb:
        assert sorted(ra.files) == sorted(rb.files)
        for key in ra.files:
            np.testing.assert_array_equal(ra[key], rb[key], err_msg=key, strict=True)
    ma, mb = (
        load_checkpoint(folder_a / CHECKPOINT_FILE),
        load_checkpoint(folder_b / CHECKPOINT_FILE),
    )
    assert ma["step"] == mb["step"] == 24
    for key in mb["model"]:
        assert torch.equal(ma["model"][key], mb["model"][key]), key
    # no update follows the final checkpoint: it holds no momenta (the weights above, equal
    # after the 16 resumed updates, are what the restored momenta are checked by)
    assert ma["optimizer"] is None and mb["optimizer"] is None


def test_ghost_running_stats_reaches_the_layers_and_keeps_old_folders(tmp_path):
    """The default rule ("mean") is hash-neutral: a config without the field names the same
    folder as before the field existed; "sequential" is another run whose ghost layers use it.
    Catches a rule that is recorded but never handed to convert_to_ghost."""
    import dataclasses

    from deep.ghost_bn import GhostBatchNorm1d
    from diffusion.records import config_hash, config_to_dict

    base = TrainConfig(
        model="mlp_digits", data="digits", batch_size=64, ghost_size=16, epochs=1.0,
        max_steps=2, eval_every=None, trace_per_decade=5,
    )  # fmt: skip
    seq = dataclasses.replace(base, ghost_running_stats="sequential")
    assert "ghost_running_stats" in config_to_dict(base)  # shown in config.json
    fields = {k: v for k, v in config_to_dict(base).items() if k != "ghost_running_stats"}
    import hashlib
    import json

    legacy = {"kind": "train", "config": fields}
    text = json.dumps(legacy, sort_keys=True, separators=(",", ":"), allow_nan=False)
    assert config_hash(base) == hashlib.sha256(text.encode()).hexdigest()
    assert config_hash(seq) != config_hash(base)
    with pytest.raises(ValueError, match="ghost_running_stats"):
        dataclasses.replace(base, ghost_running_stats="median")
    from deep.train import load_model

    run = train(seq, tmp_path, runtime=Runtime(device="cpu", progress=False))
    model = load_model(run.path)
    ghosts = [m for m in model.modules() if isinstance(m, GhostBatchNorm1d)]
    assert ghosts and all(m.running_stats == "sequential" for m in ghosts)


def _flip_a_byte_of_record(path, which: int) -> None:
    """Flip one bit in the middle of the ``which``-th tensor record of a checkpoint's zip."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        records = [i for i in archive.infolist() if "/data/" in i.filename and i.file_size]
    info = records[which]
    with open(path, "r+b") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", fh.read(4))
        fh.seek(info.header_offset + 30 + name_len + extra_len + info.file_size // 2)
        byte = fh.read(1)[0]
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte ^ 0x10]))


@pytest.mark.parametrize("which", [0, -1])
def test_a_flipped_bit_in_a_checkpoint_is_refused(tmp_path, which):
    """torch.load never checks the zip's CRCs, so checkpoints carry a CRC-32 of their tensors,
    which load_checkpoint checks: a flipped bit in the first or the last tensor record (a
    model weight; the random state, inside a list) is a ValueError naming the file, where it
    used to load silently. Checkpoints without the checksum (older ones) still load.

    Mutants caught: the checksum not checked, a checksum that skips the tensors in lists."""
    run = train(TrainConfig(**{**SMALL, "max_steps": 3}), tmp_path, runtime=CPU)
    path = run.path / CHECKPOINT_FILE
    intact = load_checkpoint(path)
    assert "crc32" not in intact  # checked and removed
    _flip_a_byte_of_record(path, which)
    with pytest.raises(ValueError, match=r"checkpoint.*checkpoint\.pt.*corrupted"):
        load_checkpoint(path)
    torch.save(intact, path)  # as written before checkpoints carried the checksum
    assert torch.equal(load_checkpoint(path)["initial"][-1], intact["initial"][-1])


@pytest.mark.parametrize("cores, threads, spare", [(2, 2, False), (2, 1, True), (1, 1, False)])
def test_the_final_checkpoint_is_finished_on_a_thread_while_the_evaluation_runs(
    tmp_path, monkeypatch, cores, threads, spare
):
    """The final checkpoint is finished on a writer thread while the final evaluation runs.
    With a core free of torch's threads the thread writes the files; with as many torch
    threads as cores a writer would take turns with torch's OpenMP team, so the files are
    serialised first, on the main thread, and the thread only waits for the disk (fsync) and
    renames them. Either way the checkpoint is in place, whole, when the run returns.

    Mutants caught: the whole write on the thread on every machine (or never); the fsync
    left on the main thread."""
    import threading

    import deep.train as train_module
    import diffusion.records as records_module

    monkeypatch.setattr(train_module.os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(train_module.torch, "get_num_threads", lambda: threads)
    assert train_module._core_to_spare() is spare
    serialised, synced = [], []
    save_checkpoint, fsync = train_module._save_checkpoint, records_module.os.fsync

    def serialise_spy(payload, fh):
        serialised.append(threading.current_thread().name)
        return save_checkpoint(payload, fh)

    def fsync_spy(fd):
        synced.append((threading.current_thread().name, os.readlink(f"/proc/self/fd/{fd}")))
        return fsync(fd)

    monkeypatch.setattr(train_module, "_save_checkpoint", serialise_spy)
    monkeypatch.setattr(records_module.os, "fsync", fsync_spy)
    cfg = TrainConfig(**{**SMALL, "epochs": 1.0, "milestones": ()})
    run = train(cfg, tmp_path, runtime=CPU)
    on_thread = [name.startswith("checkpoint") for name in serialised]
    assert on_thread == [spare]  # one checkpoint, the final one
    ckpt_syncs = [name for name, target in synced if ".checkpoint.pt." in target]
    assert len(ckpt_syncs) == 1 and ckpt_syncs[0].startswith("checkpoint")
    assert run.summary["steps"] == run.records["t"][-1]
    final = load_checkpoint(tmp_path / run.path.name / CHECKPOINT_FILE)
    assert final["step"] == run.summary["steps"]
