"""Run folders: hashing, reuse, validation and atomic writes (including a killed writer)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from diffusion import records
from diffusion.metrics import Trace, log_schedule
from diffusion.records import (
    IncompleteRunError,
    atomic_write_npz,
    config_hash,
    load_run,
    run_dir,
    run_or_load,
    save_run,
)


@dataclass(frozen=True)
class DemoConfig:
    n: int = 10
    scale: float = 1.5
    label: str = "demo"
    sizes: tuple = (1, 2)
    seed: int = 0


@dataclass
class MutableConfig:
    n: int = 1


@dataclass(frozen=True)
class BadConfig:
    thing: object = object()


def _compute(cfg: DemoConfig):
    t = log_schedule(cfg.n * 100)
    trace = Trace(t, cfg.scale * np.log(t.astype(float)), {"loss": 1.0 / t})
    return trace.to_arrays(), {"final": float(trace.distance[-1])}


def test_same_config_same_folder_and_reuse(tmp_path):
    calls = []

    def compute(cfg):
        calls.append(cfg)
        return _compute(cfg)

    a = run_or_load(tmp_path, DemoConfig(), compute)
    b = run_or_load(tmp_path, DemoConfig(), compute)
    assert len(calls) == 1 and a.path == b.path
    assert a.path.name.startswith("demo-")
    c = run_or_load(tmp_path, DemoConfig(n=11), compute)
    assert c.path != a.path and len(calls) == 2
    run_or_load(tmp_path, DemoConfig(), compute, force=True)
    assert len(calls) == 3


def test_loaded_run_has_config_version_seed_and_trace(tmp_path):
    run = save_run(tmp_path, DemoConfig(seed=7), *_compute(DemoConfig(seed=7)))
    loaded = load_run(run.path)
    assert loaded.config == {"n": 10, "scale": 1.5, "label": "demo", "sizes": [1, 2], "seed": 7}
    assert loaded.meta["seed"] == 7 and loaded.meta["version"]
    assert loaded.meta["hash"] == config_hash(DemoConfig(seed=7))
    tr = loaded.trace()
    np.testing.assert_array_equal(tr.t, log_schedule(1000))
    assert set(tr.extras) == {"loss"}
    assert loaded.summary["final"] == pytest.approx(1.5 * np.log(1000))


def test_hash_is_stable_and_field_sensitive():
    assert config_hash(DemoConfig()) == config_hash(DemoConfig())
    assert config_hash(DemoConfig()) != config_hash(DemoConfig(scale=1.5000001))
    assert run_dir("r", DemoConfig()).parent == Path("r")


def test_config_must_be_a_frozen_jsonable_dataclass(tmp_path):
    with pytest.raises(TypeError, match="dataclass instance"):
        save_run(tmp_path, {"n": 1}, {}, {})
    with pytest.raises(TypeError, match="dataclass instance"):
        config_hash(DemoConfig)
    with pytest.raises(TypeError, match="frozen"):
        config_hash(MutableConfig())
    with pytest.raises(TypeError, match="config.BadConfig.thing"):
        config_hash(BadConfig())
    with pytest.raises(ValueError, match="not finite"):
        config_hash(DemoConfig(scale=float("nan")))


def test_load_run_refuses_incomplete_or_mismatched_folders(tmp_path):
    run = save_run(tmp_path, DemoConfig(), *_compute(DemoConfig()))
    with pytest.raises(IncompleteRunError, match="not a run folder"):
        load_run(tmp_path / "nothing")
    # a summary from another config does not belong
    other = save_run(tmp_path, DemoConfig(n=3), *_compute(DemoConfig(n=3)))
    (run.path / "summary.json").write_text((other.path / "summary.json").read_text())
    with pytest.raises(IncompleteRunError, match="does not belong"):
        load_run(run.path)
    (run.path / "summary.json").unlink()
    with pytest.raises(IncompleteRunError, match="missing"):
        load_run(run.path)
    # a truncated records file is unreadable, not silently accepted
    save_run(tmp_path, DemoConfig(), *_compute(DemoConfig()))
    data = (run.path / "records.npz").read_bytes()
    (run.path / "records.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(IncompleteRunError, match="unreadable"):
        load_run(run.path)


def test_exception_during_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "a.npz"
    atomic_write_npz(target, {"x": np.arange(3)})

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("interrupted mid-write")

    monkeypatch.setattr(records.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_npz(target, {"x": np.arange(10)})
    monkeypatch.undo()
    with np.load(target) as npz:  # the previous complete file is intact
        np.testing.assert_array_equal(npz["x"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]  # temp file cleaned


def _assert_whole_files(path: Path) -> None:
    """Every visible file of a run folder parses completely (no half-written final name)."""
    for name in ("config.json", "summary.json"):
        if (path / name).exists():
            json.loads((path / name).read_text())
    if (path / "records.npz").exists():
        with np.load(path / "records.npz", allow_pickle=False) as npz:
            for key in npz.files:
                assert npz[key].size >= 0  # reads every array in full


def test_killed_writer_leaves_previous_run_or_none(tmp_path):
    """SIGKILL a real process while it rewrites a large run: never a half run that loads.

    Checked after every kill, whichever state it lands in (the old test checked nothing but
    leftovers when every kill gave IncompleteRunError): each file under its final name is
    whole, a run that loads is self-consistent, and run_or_load recovers a complete run.
    Mutant caught (run once): npz written straight to its final name (no temp + replace):
    a kill mid-write leaves a truncated records.npz that fails to load.
    """
    script = textwrap.dedent(
        f"""
        import sys
        from dataclasses import dataclass
        import numpy as np
        from diffusion.records import save_run

        @dataclass(frozen=True)
        class DemoConfig:
            n: int = 10
            scale: float = 1.5
            label: str = "demo"
            sizes: tuple = (1, 2)
            seed: int = 0

        big = np.random.default_rng(0).normal(size=(int(sys.argv[1]),))
        print("writing", flush=True)
        while True:
            arrays = {{"t": np.arange(3), "distance": np.zeros(3), "big": big}}
            save_run({str(tmp_path)!r}, DemoConfig(), arrays, {{"n": 1}})
        """
    )
    first = save_run(tmp_path, DemoConfig(), *_compute(DemoConfig()))
    for delay in (0.3, 0.9, 1.7):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, "3000000"], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # whatever the moment of the kill, every file under its final name is whole
        _assert_whole_files(first.path)
        try:
            run = load_run(first.path)
        except IncompleteRunError:
            run = None  # "none": acceptable, and run_or_load recomputes (checked below)
        if run is not None:  # a run that loads is complete and self-consistent
            assert run.summary in ({"n": 1}, first.summary)
            if run.summary == {"n": 1}:
                assert run.records["big"].shape == (3_000_000,)
            else:
                assert "big" not in run.records
        recovered = run_or_load(tmp_path, DemoConfig(), _compute)
        assert load_run(recovered.path).summary == recovered.summary
    leftovers = [p for p in first.path.iterdir() if p.suffix == ".tmp"]
    # a SIGKILL can leave a temporary file behind; it is never mistaken for a result
    for p in leftovers:
        assert p.name.startswith(".")
    json.loads((first.path / "config.json").read_text())


def test_importing_records_leaves_the_umask_alone_and_files_follow_it(tmp_path):
    """Files get 0o666 minus the process umask, read at write time (a mutant that caches the
    umask at import writes 0o644 here); importing the module never sets the umask."""
    import os
    import subprocess
    import sys

    code = "import os; os.umask(0o027); import diffusion.records; print(oct(os.umask(0)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0o27"
    from diffusion.records import atomic_write_bytes

    before = os.umask(0o027)
    try:
        path = atomic_write_bytes(tmp_path / "f.bin", b"x")
        assert os.stat(path).st_mode & 0o777 == 0o640
    finally:
        os.umask(before)


def test_runs_stored_before_an_explicit_kind_still_load(tmp_path):
    """A walk stored when folders and hashes came from the class name (``WalkConfig``) is
    found by the config that now has ``KIND = "walk"``, in its old folder; a folder there
    written for another hash is not.

    Mutants caught: the legacy hash computed with the new kind (the old folder is never
    found), the legacy folder accepted without checking its hash."""
    from diffusion.experiments import WalkConfig

    @dataclass(frozen=True)
    class Plain:
        potential: str = "sinai"

    cfg = WalkConfig(walkers=10, t_max=1000)
    legacy = records.legacy_run_dir(tmp_path, cfg)
    digest = records._hash(cfg, "WalkConfig")  # how the old code hashed it
    assert legacy == tmp_path / f"walk-{digest[:16]}" != records.run_dir(tmp_path, cfg)

    def store(stored_hash: str) -> None:  # the old code's folder: same files, old hash
        saved = records.save_run(tmp_path / "new", cfg, {"t": np.arange(3)}, {"x": 1})
        for name in ("config.json", "summary.json"):
            doc = json.loads((saved.path / name).read_text())
            if name == "config.json":
                doc["meta"]["hash"] = stored_hash
            else:
                doc["hash"] = stored_hash
            (saved.path / name).write_text(json.dumps(doc))
        if legacy.exists():
            for f in legacy.iterdir():
                f.unlink()
            legacy.rmdir()
        saved.path.rename(legacy)

    store(digest)
    found = records.find_run(tmp_path, cfg)
    assert found is not None and found.path == legacy and found.summary == {"x": 1}
    store(records._hash(WalkConfig(walkers=11, t_max=1000), "WalkConfig"))
    assert records.find_run(tmp_path, cfg) is None
    assert records.legacy_run_dir(tmp_path, Plain()) is None  # no LEGACY_KIND: none


def test_a_staged_file_is_in_place_only_once_committed(tmp_path):
    """``stage_with`` writes beside the destination; the destination keeps its old content
    until ``commit`` (then the new, with the umask's permissions) and after ``discard``.

    Mutants caught: staging straight into the destination; a discard that leaves the
    temporary file behind."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def leftovers():
        return sorted(p.name for p in tmp_path.iterdir() if p.name != "out.bin")

    staged = records.stage_with(target, lambda fh: fh.write(b"new"))
    assert target.read_bytes() == b"old" and len(leftovers()) == 1
    assert staged.commit() == target
    assert target.read_bytes() == b"new" and leftovers() == []
    assert target.stat().st_mode & 0o777 == 0o666 & ~records._umask()
    records.stage_with(target, lambda fh: fh.write(b"other")).discard()
    assert target.read_bytes() == b"new" and leftovers() == []


def test_commit_in_order_stops_at_a_failure_and_leaves_nothing_behind(tmp_path):
    """When a commit fails, the files staged after it are discarded: their destinations are
    untouched and no temporary file is left; the files before it are in place.

    Mutant caught: the remaining staged files committed (or left on disk) after a failure."""
    first, blocked, last = tmp_path / "a.bin", tmp_path / "dir", tmp_path / "c.bin"
    staged = [
        records.stage_with(first, lambda fh: fh.write(b"a")),
        records.stage_with(blocked, lambda fh: fh.write(b"b")),
        records.stage_with(last, lambda fh: fh.write(b"c")),
    ]
    blocked.mkdir()  # a file cannot replace a folder: the second commit fails
    with pytest.raises(OSError):
        records.commit_in_order(staged)
    assert first.read_bytes() == b"a" and blocked.is_dir() and not last.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "dir"]
