"""Ghost batch norm on torch's OpenMP team: the runtime found is torch's, the work really runs
on several threads, and the result does not depend on how many (bit for bit)."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
import torch
from numba import carray, cfunc, types

import deep._torch_openmp as omp
from deep._ghost_kernels import ghost_backward, ghost_forward
from deep._torch_openmp import claim
from deep.ghost_bn import GhostBatchNorm1d

OPENMP = "ATen parallel backend: OpenMP" in torch.__config__.parallel_info()
needs_openmp = pytest.mark.skipif(not OPENMP, reason="torch runs without OpenMP here")


_CLAIMS = 200_000


@cfunc(types.void(types.voidptr), nogil=True)
def _claim_all(data):
    """Threads claim numbers 0.._CLAIMS-1 from ``data[0]`` and tick ``data[1 + number]``; each
    then ticks ``data[1 + _CLAIMS]`` once (how many threads ran)."""
    block = carray(data, (_CLAIMS + 2,), np.int64)
    while True:
        j = claim(block, 0)
        if j >= _CLAIMS:
            break
        block[1 + j] += 1
    claim(block, _CLAIMS + 1)


@needs_openmp
def test_the_team_is_the_runtime_torch_drives_and_runs_every_thread():
    """The library found is the one whose thread count torch sets, and a callback handed to
    it runs once on each of the threads asked for, with claims that never collide.

    Mutants caught: a second copy of the runtime loaded (its thread count does not follow
    torch's), the thread count not passed on (the callback runs once), a claim that is a
    plain load and store (two threads claim the same number, the total falls short)."""
    team = omp.torch_team()
    assert team is not None
    before = torch.get_num_threads()
    try:
        for n in (1, 3, 2):
            torch.set_num_threads(n)
            assert team.max_threads() == n
    finally:
        torch.set_num_threads(before)
    for threads in (1, 2, 3):
        block = np.zeros(_CLAIMS + 2, np.int64)
        team.run(_claim_all.address, block.ctypes.data, threads)
        assert block[-1] == threads
        np.testing.assert_array_equal(block[1:-1], 1)  # every number claimed exactly once


def _case(dtype, seed=0):
    rng = np.random.default_rng(seed)
    n, c = 1500, 37
    x = (rng.normal(size=(n, c)) * rng.uniform(0.1, 30, c) + 100).astype(dtype)
    dy = rng.normal(size=(n, c)).astype(dtype)
    w = rng.uniform(0.5, 1.5, c).astype(dtype)
    b = rng.normal(size=c).astype(dtype)
    # many ghost batches of uneven sizes (one of a single row), so threads interleave
    cuts = np.sort(rng.choice(np.arange(2, n - 1), size=60, replace=False))
    starts = np.concatenate([[0, 1], cuts, [n]]).astype(np.int64)
    return x, dy, w, b, starts


def _kernels(x, dy, w, b, starts, threads):
    k, c = starts.size - 1, x.shape[1]
    y, dx = np.empty_like(x), np.empty_like(x)
    mean, invstd, var, dw, db = (np.full((k, c), np.nan) for _ in range(5))
    ghost_forward(x, w, b, starts, 1e-5, y, mean, invstd, var, threads=threads)
    ghost_backward(dy, x, w, starts, mean, invstd, dx, dw, db, threads=threads)
    return y, mean, invstd, var, dx, dw, db


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernels_give_the_same_bits_on_any_number_of_threads(dtype):
    """Every ghost batch is computed whole by one thread, so 2 and 3 threads give exactly the
    one-thread result; and that result is Algorithm 1 (checked in float64 against numpy).

    Mutants caught: a ghost batch claimed twice or never (rows left unwritten or NaN), a
    thread computing with another thread's scratch row."""
    x, dy, w, b, starts = _case(dtype)
    one = _kernels(x, dy, w, b, starts, 1)
    for threads in (2, 3):
        for _ in range(5):  # several tries: an interleaving error need not show every time
            many = _kernels(x, dy, w, b, starts, threads)
            for a, m in zip(one, many, strict=True):
                np.testing.assert_array_equal(a, m)
    if dtype == np.float64:
        y, mean = one[0], one[1]
        for j in range(starts.size - 1):
            rows = x[starts[j] : starts[j + 1]]
            np.testing.assert_allclose(mean[j], rows.mean(0), rtol=1e-13)
            ref = (rows - rows.mean(0)) / np.sqrt(rows.var(0) + 1e-5) * w + b
            np.testing.assert_allclose(y[starts[j] : starts[j + 1]], ref, atol=1e-11)


@needs_openmp
def test_the_layer_uses_the_team_and_matches_one_thread_bit_for_bit(monkeypatch):
    """GhostBatchNorm1d with torch's 2 threads hands both directions to the team and gets the
    one-thread output, input and parameter gradients and running statistics exactly."""
    runs = []
    original = omp.OpenMPTeam.run
    monkeypatch.setattr(
        omp.OpenMPTeam, "run", lambda self, *a: runs.append(a[-1]) or original(self, *a)
    )
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1024, 64, generator=gen) * 3 + 1
    dy = torch.randn(1024, 64, generator=gen)
    results = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            layer = GhostBatchNorm1d(64, 128)
            xi = x.clone().requires_grad_(True)
            layer(xi).backward(dy)
            results.append(
                (xi.grad, layer.weight.grad, layer.bias.grad, layer.running_mean, layer.running_var)
            )
    finally:
        torch.set_num_threads(before)
    assert runs == [2, 2]  # forward and backward, on two threads; none with one thread
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_without_torchs_openmp_the_kernels_run_on_this_thread(monkeypatch):
    """Another parallel backend: no team is looked up, and the kernels still give the same
    bits on one thread."""
    monkeypatch.setattr(torch.__config__, "parallel_info", lambda: "ATen parallel backend: TBB")
    omp._find_team.cache_clear()
    try:
        assert omp.torch_team() is None
        x, dy, w, b, starts = _case(np.float32, seed=1)
        a, m = _kernels(x, dy, w, b, starts, 1), _kernels(x, dy, w, b, starts, 2)
        for u, v in zip(a, m, strict=True):
            np.testing.assert_array_equal(u, v)
    finally:
        omp._find_team.cache_clear()


def _team_in_child(queue):
    queue.put(omp.torch_team() is None)


@needs_openmp
def test_a_forked_child_does_not_use_the_parents_team():
    """The runtime's worker threads do not survive fork: a forked child runs on one thread."""
    assert omp.torch_team() is not None  # looked up (and cached) in the parent first
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_team_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=60) is True
    finally:
        child.join(timeout=60)


def test_the_kernels_refuse_arrays_they_would_misread():
    """The team's callbacks rebuild every array from its address and x's shape, so each
    argument's shape, dtype and layout is checked first, with the argument named."""
    x, dy, w, b, starts = _case(np.float32, seed=2)
    k, c = starts.size - 1, x.shape[1]
    stats = [np.empty((k, c)) for _ in range(3)]
    good = dict(x=x, weight=w, bias=b, starts=starts, eps=1e-5, y=np.empty_like(x))
    bad_cases = {
        "y": dict(y=np.empty((x.shape[0] - 1, c), np.float32)),
        "weight": dict(weight=w.astype(np.float64)),
        "x": dict(x=np.asfortranarray(x)),
        "starts": dict(starts=starts[::-1].copy()),
    }
    for name, change in bad_cases.items():
        args = {**good, **change}
        with pytest.raises(ValueError, match=name):
            ghost_forward(*args.values(), *stats, threads=2)
    with pytest.raises(ValueError, match="mean"):
        ghost_backward(dy, x, w, starts, np.empty((k, c), np.float32), stats[1],
                       np.empty_like(x), *stats[1:], threads=2)  # fmt: skip
