"""||w - w_0|| per parameter tensor in one compiled pass: exact to float64 rounding against an
independent computation, the same bits on any number of threads, and the trainer's fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deep._distance_kernels import BLOCK, squared_distances
from deep.train import _DistanceMeter

SHAPES = [(3 * BLOCK + 17,), (BLOCK,), (1,), (0,), (37, 41), (2 * BLOCK // 64 + 1, 64), ()]


def _pairs(dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    initial = [torch.randn(s, generator=gen, dtype=dtype) * 10 for s in SHAPES]
    # small moves on large weights: the case where a careless sum loses digits
    moved = [t + 1e-3 * torch.randn(t.shape, generator=gen, dtype=dtype) for t in initial]
    return moved, initial


def _reference(moved, initial):
    """float64 numpy, one tensor at a time (no blocks)."""
    return np.array(
        [
            np.sum((a.detach().numpy().astype(np.float64) - b.numpy().astype(np.float64)) ** 2)
            for a, b in zip(moved, initial, strict=True)
        ]
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_squared_distances_match_float64_and_do_not_depend_on_threads(dtype):
    """Tensors of several blocks, an exact block, a remainder, one value, none and a scalar:
    float64 sums to 1e-13 of numpy's, and bit for bit the same with 1, 2 and 3 threads.

    Mutants caught: a block's offset counted in values instead of bytes, a block credited to
    the wrong tensor, the last partial block dropped, the sum taken in float32 (2e-6 off)."""
    moved, initial = _pairs(dtype)
    ref = _reference(moved, initial)
    one = squared_distances(moved, initial, threads=1)
    np.testing.assert_allclose(one, ref, rtol=1e-13, atol=0)
    assert one[SHAPES.index((0,))] == 0.0
    for threads in (2, 3):
        np.testing.assert_array_equal(squared_distances(moved, initial, threads=threads), one)


def test_squared_distances_refuse_what_they_would_misread():
    """Pairs the kernel cannot read as flat CPU memory of one dtype are refused (the trainer
    then falls back to tensor operations)."""
    a = torch.randn(8, 6)
    cases = [
        ([a], [torch.randn(6, 8)]),  # shapes differ
        ([a], [a.double()]),  # dtypes differ
        ([a.t()], [a.t().contiguous()]),  # not contiguous
        ([a.half()], [a.half()]),  # neither float32 nor float64
        ([a], []),
    ]
    for tensors, initial in cases:
        with pytest.raises(ValueError):
            squared_distances(tensors, initial)


def test_the_trainer_distances_take_the_kernel_on_cpu_and_tensor_operations_otherwise():
    """``deep.train._DistanceMeter``: the compiled pass for contiguous CPU tensors (no scratch
    made); for a transposed view, the scratch path, which agrees to float32 rounding."""
    moved, initial = _pairs(torch.float32, seed=1)
    meter = _DistanceMeter(moved, initial)
    np.testing.assert_allclose(meter(), np.sqrt(_reference(moved, initial)), rtol=1e-13)
    assert meter._scratch is None
    views = [torch.randn(40, 30).t()]
    starts = [v.detach().clone() - 0.01 for v in views]
    got = _DistanceMeter(views, starts)()
    np.testing.assert_allclose(got, np.sqrt(_reference(views, starts)), rtol=1e-5)


def test_the_meter_keeps_its_blocks_and_remakes_them_when_a_tensor_moves():
    """The blocks are made once and read the tensors' current values at every call (as the
    optimiser updates them in place); a parameter given new storage (``p.data = ...``) or a
    non-contiguous layout is noticed: the blocks are remade or the tensor path taken.

    Mutants caught: blocks never remade (a moved tensor's old memory read), remade at every
    call (the point of keeping them)."""
    moved, initial = _pairs(torch.float32, seed=2)
    params = [torch.nn.Parameter(t.clone()) for t in moved]
    meter = _DistanceMeter(params, initial)
    first = meter()
    blocks = meter._blocks
    with torch.no_grad():
        params[0].add_(1.0)  # in place: same blocks, new values
    np.testing.assert_allclose(meter(), np.sqrt(_reference(params, initial)), rtol=1e-13)
    assert meter._blocks is blocks and not np.array_equal(meter(), first)
    params[0].data = params[0].data + 2.0  # new storage
    np.testing.assert_allclose(meter(), np.sqrt(_reference(params, initial)), rtol=1e-13)
    assert meter._blocks is not blocks
    params[4].data = params[4].data.t().contiguous().t()  # same values, not contiguous
    np.testing.assert_allclose(meter(), np.sqrt(_reference(params, initial)), rtol=1e-5)
    assert meter._scratch is not None
