"""train_many: the same runs, whatever executes them (this process, loky, a dask cluster)."""

from __future__ import annotations

import numpy as np
import pytest

from deep.sweep import parallel_backend, train_many
from deep.train import Runtime, TrainConfig


def _configs():
    return [
        TrainConfig(
            model="mlp_digits",
            data="digits",
            batch_size=b,
            epochs=1.0,
            max_steps=4,
            lr=0.05,
            eval_every=None,
            trace_per_decade=5,
        )
        for b in (16, 32)
    ]


def test_serial_and_loky_runs_agree_and_are_reused(tmp_path, capsys):
    runtime = Runtime(device="cpu", progress=False)
    serial = train_many(_configs(), tmp_path / "a", runtime=runtime, label="t")
    err = capsys.readouterr().err
    assert "[t] 1/2 runs done" in err and "[t] 2/2 runs done" in err
    parallel = train_many(_configs(), tmp_path / "b", runtime=runtime, n_jobs=2)
    for s, p in zip(serial, parallel, strict=True):
        assert s.path.name == p.path.name  # same identity, whatever ran it
        assert np.array_equal(s.records["distance"], p.records["distance"])
    again = train_many(_configs(), tmp_path / "a", runtime=runtime)
    assert [r.summary for r in again] == [r.summary for r in serial]


def test_a_dask_local_cluster_gives_the_same_runs(tmp_path):
    pytest.importorskip("dask.distributed")
    runtime = Runtime(device="cpu", progress=False)
    serial = train_many(_configs(), tmp_path / "a", runtime=runtime)
    cluster = train_many(_configs(), tmp_path / "b", runtime=runtime, n_jobs=2, backend="dask")
    for s, c in zip(serial, cluster, strict=True):
        assert s.path.name == c.path.name
        assert c.path == tmp_path / "b" / c.path.name  # the caller's folder, as given
        assert np.array_equal(s.records["distance"], c.records["distance"])


def test_backend_errors():
    with pytest.raises(ValueError, match="backend"):
        with parallel_backend("spark"):
            pass
    with pytest.raises(ValueError, match="scheduler"):
        with parallel_backend("loky", "tcp://localhost:8786"):
            pass
    with pytest.raises(ValueError, match="n_jobs"):
        train_many([], "runs", n_jobs=0)
