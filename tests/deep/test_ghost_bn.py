"""Ghost batch norm against nn.BatchNorm computed independently."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from deep.ghost_bn import (
    GhostBatchNorm1d,
    GhostBatchNorm2d,
    convert_to_ghost,
    ghost_sizes,
    measure_strategies,
)

STRATEGIES = ("loop", "vectorized", "fused")  # "fused" covers 2-D inputs, else the loop


def _pair(kind, c, ghost, strategy, seed=0):
    torch.manual_seed(seed)
    bn = (nn.BatchNorm1d if kind == 1 else nn.BatchNorm2d)(c)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    gbn = (GhostBatchNorm1d if kind == 1 else GhostBatchNorm2d)(c, ghost, strategy=strategy)
    gbn.load_state_dict(bn.state_dict())
    return bn, gbn


def _run(layer, x, dy):
    x = x.clone().requires_grad_(True)
    y = layer(x)
    y.backward(dy)
    return y.detach(), x.grad, layer.weight.grad, layer.bias.grad


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("shape", [(64, 5), (64, 5, 3), (32, 4, 3, 3)])
def test_ghost_at_least_batch_equals_batchnorm(strategy, shape):
    kind = 2 if len(shape) == 4 else 1
    bn, gbn = _pair(kind, shape[1], ghost=shape[0] + 7, strategy=strategy)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=gen) * 3 + 1
    dy = torch.randn(shape, generator=gen)
    for _ in range(3):  # three steps: running statistics accumulate
        ref, got = _run(bn, x, dy), _run(gbn, x, dy)
        for a, b in zip(ref, got, strict=True):
            torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6)
        bn.zero_grad()
        gbn.zero_grad()
    for key in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(
            gbn.state_dict()[key], bn.state_dict()[key], atol=1e-6, rtol=1e-6
        )


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("kind", [1, 2])
def test_4096_ghost_128_equals_batchnorm_per_chunk(strategy, kind):
    shape = (4096, 8) if kind == 1 else (4096, 4, 2, 2)
    bn, gbn = _pair(kind, shape[1], ghost=128, strategy=strategy)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(shape, generator=gen) * 2 - 1
    x[:2048] += 3.0  # ghost batches with different statistics
    dy = torch.randn(shape, generator=gen)
    y, dx, dw, db = _run(gbn, x, dy)
    # reference: an independent BatchNorm on each 128-chunk, gradients accumulated
    xs = x.clone().requires_grad_(True)
    outs, means, variances = [], [], []
    for chunk in xs.split(128):
        ref = (nn.BatchNorm1d if kind == 1 else nn.BatchNorm2d)(shape[1], momentum=1.0)
        ref.weight, ref.bias = bn.weight, bn.bias  # shared affine parameters
        outs.append(ref(chunk))  # momentum 1: running stats := this chunk's mean, unbiased var
        means.append(ref.running_mean)
        variances.append(ref.running_var)
    torch.cat(outs).backward(dy)
    torch.testing.assert_close(y, torch.cat(outs).detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx, xs.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dw, bn.weight.grad, atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(db, bn.bias.grad, atol=1e-3, rtol=1e-5)
    # stated rule: one exponential update per step from the mean of the ghost statistics
    m = 0.1
    torch.testing.assert_close(
        gbn.running_mean, m * torch.stack(means).mean(0), atol=1e-6, rtol=1e-5
    )
    torch.testing.assert_close(
        gbn.running_var, (1 - m) + m * torch.stack(variances).mean(0), atol=1e-6, rtol=1e-5
    )
    assert int(gbn.num_batches_tracked) == 1


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_evaluation_never_splits(strategy):
    bn, gbn = _pair(2, 3, ghost=4, strategy=strategy)
    gen = torch.Generator().manual_seed(3)
    for layer in (bn, gbn):  # give both the same running statistics
        layer.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        layer.running_var.copy_(torch.tensor([2.0, 0.5, 3.0]))
        layer.eval()
    x = torch.randn(7, 3, 2, 2, generator=gen)  # 7 is not a multiple of 4
    torch.testing.assert_close(gbn(x), bn(x), atol=1e-6, rtol=1e-6)
    # one sample at a time gives the same answer: no statistic of the batch is used
    torch.testing.assert_close(torch.cat([gbn(x[i : i + 1]) for i in range(7)]), gbn(x))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 70), ghost=st.integers(2, 24), c=st.integers(1, 4), seed=st.integers(0, 10**6)
)
@pytest.mark.parametrize("width", [3, None])
def test_remainder_policy_and_strategies_agree(n, ghost, c, seed, width):
    """Ghost batches are consecutive, the remainder joins the last; the strategies agree,
    on 3-D inputs and on 2-D ones (``width`` None: where "fused" runs its kernels).

    In float64: with ghost batches of 2 the input gradient is almost all cancellation, and
    float32 strategies differ from each other and from a float64 reference by up to 1e-4
    there (rounding, not a fault of either)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (n, c) if width is None else (n, c, width)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    dy = torch.randn(shape, generator=gen, dtype=torch.float64)
    sizes = ghost_sizes(n, ghost)
    assert (
        sum(sizes) == n
        and all(s >= min(ghost, n) for s in sizes)
        and all(s < 2 * ghost for s in sizes[:-1])
    )
    results = []
    for strategy in STRATEGIES:
        _, gbn = _pair(1, c, ghost, strategy, seed=seed % 97)
        gbn = gbn.double()
        results.append((_run(gbn, x, dy), gbn.running_mean.clone(), gbn.running_var.clone()))
    (a, rm_a, rv_a) = results[0]
    for b, rm_b, rv_b in results[1:]:
        for u, v in zip(a, b, strict=True):
            torch.testing.assert_close(u, v, atol=1e-10, rtol=1e-9)
        torch.testing.assert_close(rm_a, rm_b, atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(rv_a, rv_b, atol=1e-12, rtol=1e-12)
    # independent check of the output: normalise each ghost batch with its own statistics
    bn, _ = _pair(1, c, ghost, "loop", seed=seed % 97)
    bn = bn.double()
    pieces = []
    for chunk in x.split(sizes):
        chunk3 = chunk if width is not None else chunk[:, :, None]
        mean = chunk3.mean(dim=(0, 2), keepdim=True)
        var = chunk3.var(dim=(0, 2), unbiased=False, keepdim=True)
        y = (chunk3 - mean) / torch.sqrt(var + bn.eps) * bn.weight[:, None] + bn.bias[:, None]
        pieces.append(y if width is not None else y[:, :, 0])
    torch.testing.assert_close(a[0], torch.cat(pieces).detach(), atol=1e-10, rtol=1e-10)


def test_convert_to_ghost_keeps_keys_and_values():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.Flatten(),
        nn.Linear(16, 5),
        nn.BatchNorm1d(5, momentum=None),
    )
    model[1].running_mean.fill_(0.3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    convert_to_ghost(model, 8)
    assert isinstance(model[1], GhostBatchNorm2d) and isinstance(model[4], GhostBatchNorm1d)
    assert model[4].momentum is None and model[1].ghost_size == 8
    after = model.state_dict()
    assert list(after) == list(before)
    for k in before:
        assert torch.equal(after[k], before[k]), k
    # cumulative averaging (momentum=None) follows nn.BatchNorm with one ghost batch
    ref = nn.BatchNorm1d(5, momentum=None)
    g = GhostBatchNorm1d(5, 64, momentum=None)
    x = torch.randn(16, 5)
    for _ in range(3):
        ref(x), g(x)
    torch.testing.assert_close(g.running_var, ref.running_var)


def test_bad_arguments():
    with pytest.raises(ValueError, match="ghost_size"):
        GhostBatchNorm1d(4, ghost_size=1)
    with pytest.raises(ValueError, match="strategy"):
        GhostBatchNorm2d(4, strategy="fast")
    with pytest.raises(ValueError, match="4D input"):
        GhostBatchNorm2d(4)(torch.randn(8, 4))
    with pytest.raises(TypeError, match="module"):
        convert_to_ghost("model", 8)


def test_measure_strategies_times_those_that_apply():
    times = measure_strategies((256, 8, 2, 2), 32, repeats=1)
    assert set(times) == {"loop", "vectorized"} and all(t > 0 for t in times.values())
    assert set(measure_strategies((256, 8), 32, repeats=1)) == {"loop", "vectorized", "fused"}
    with pytest.raises(ValueError, match="shape"):
        measure_strategies((256,), 32)


def _per_chunk_reference(kind, c, sizes, momentum, steps, x, dy, affine_from):
    """The authors' scheme: one stock BatchNorm run on each chunk in turn, every step.

    Returns the last step's output and gradients and the layer (its running buffers)."""
    ref = (nn.BatchNorm1d if kind == 1 else nn.BatchNorm2d)(c, momentum=momentum)
    ref.load_state_dict(affine_from.state_dict())
    for _ in range(steps):
        ref.zero_grad()
        xs = x.clone().requires_grad_(True)
        y = torch.cat([ref(chunk) for chunk in xs.split(sizes)])
        y.backward(dy)
    return (y.detach(), xs.grad, ref.weight.grad, ref.bias.grad), ref


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize(("kind", "shape"), [(1, (1000, 6)), (2, (300, 3, 2, 2))])
def test_sequential_rule_equals_stock_batchnorm_per_chunk(strategy, momentum, kind, shape):
    """``running_stats="sequential"``: one update per ghost batch, as the authors' code.

    Two steps of 7 ghost batches of 128 (the last one 232) whose statistics differ, against a
    stock BatchNorm run chunk by chunk: output, input/weight/bias gradients, running mean and
    variance and ``num_batches_tracked``. Mutants caught: the update weights in reverse order
    (the first ghost batch weighted most), ``(1 - m)`` kept per step instead of ``(1 - m)^k``,
    ``num_batches_tracked`` advanced once per step, the cumulative average (momentum None)
    taken per step.
    """
    ghost = 128 if kind == 1 else 40
    bn, _ = _pair(kind, shape[1], ghost, strategy)
    gbn = (GhostBatchNorm1d if kind == 1 else GhostBatchNorm2d)(
        shape[1], ghost, momentum=momentum, strategy=strategy, running_stats="sequential"
    )
    gbn.load_state_dict(bn.state_dict())
    assert list(gbn.state_dict()) == list(bn.state_dict())
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(shape, generator=gen)
    x += torch.arange(shape[0]).reshape(-1, *[1] * (len(shape) - 1)) / shape[0] * 4.0
    dy = torch.randn(shape, generator=gen)
    sizes = ghost_sizes(shape[0], ghost)
    assert len(set(sizes)) == 2  # a merged remainder is exercised
    for _ in range(2):
        gbn.zero_grad()
        got = _run(gbn, x, dy)
    ref, ref_layer = _per_chunk_reference(kind, shape[1], sizes, momentum, 2, x, dy, bn)
    for a, b in zip(ref, got, strict=True):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-5)
    for key in ("running_mean", "running_var"):
        torch.testing.assert_close(
            gbn.state_dict()[key], ref_layer.state_dict()[key], atol=1e-6, rtol=1e-5
        )
    assert int(gbn.num_batches_tracked) == int(ref_layer.num_batches_tracked) == 2 * len(sizes)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mean_rule_weights_ghost_batches_by_size(strategy):
    """``running_stats="mean"`` with unequal ghost batches: size-weighted, once per step.

    1000 rows, ghost 128: six batches of 128 and one of 232. Mutant caught: the plain
    (unweighted) mean of the ghost statistics.
    """
    bn, gbn = _pair(1, 4, 128, strategy)
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(1000, 4, generator=gen) + torch.linspace(0, 5, 1000)[:, None]
    gbn(x)
    sizes = ghost_sizes(1000, 128)
    chunks = x.split(sizes)
    w = torch.tensor(sizes, dtype=torch.float32) / 1000
    mean = sum(wi * ch.mean(0) for wi, ch in zip(w, chunks, strict=True))
    var = sum(wi * ch.var(0, unbiased=True) for wi, ch in zip(w, chunks, strict=True))
    torch.testing.assert_close(gbn.running_mean, 0.1 * mean, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(gbn.running_var, 0.9 + 0.1 * var, atol=1e-6, rtol=1e-5)
    assert int(gbn.num_batches_tracked) == 1


def test_running_stats_rule_is_validated_and_converted():
    """A bad rule names the argument; ``convert_to_ghost`` passes the rule to every layer."""
    with pytest.raises(ValueError, match="running_stats"):
        GhostBatchNorm1d(4, running_stats="ema")
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    convert_to_ghost(model, 8, running_stats="sequential")
    assert model[1].running_stats == "sequential"
    assert "running_stats=sequential" in repr(model[1])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_without_affine_and_with_channels_last(strategy):
    """No affine parameters: per-chunk BatchNorm(affine=False); channels-last input: the same
    gradients as the contiguous one.

    Mutant caught: the backward kernel asked for no parameter gradients when the layer has
    none (the ``.out`` form then fails), a gradient laid out in the wrong memory format.
    """
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(64, 3, generator=gen) * 2 + 1
    dy = torch.randn(64, 3, generator=gen)
    layer = GhostBatchNorm1d(3, 16, affine=False, strategy=strategy)
    xa = x.clone().requires_grad_(True)
    layer(xa).backward(dy)
    ref = nn.BatchNorm1d(3, affine=False)
    xb = x.clone().requires_grad_(True)
    torch.cat([ref(c) for c in xb.split(16)]).backward(dy)
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-6, rtol=1e-5)
    x4 = torch.randn(64, 3, 4, 4, generator=gen)
    dy4 = torch.randn(64, 3, 4, 4, generator=gen)
    grads = []
    for fmt in (torch.channels_last, torch.contiguous_format):
        layer = GhostBatchNorm2d(3, 16, strategy=strategy)
        xi = x4.clone().to(memory_format=fmt).requires_grad_(True)
        layer(xi).backward(dy4)
        grads.append((xi.grad, layer.weight.grad))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_auto_picks_the_fused_kernels_for_2d_cpu_inputs_and_they_match_float64(monkeypatch):
    """Strategy "auto" on a 2-D CPU input runs the compiled kernels; in float64 they match an
    independent float64 computation of Algorithm 1 to 1e-12 (output, input and parameter
    gradients, with a merged remainder and ghost batches of very different scale).

    Mutants caught: a biased variance in the normalisation, the mean term of the input
    gradient dropped, ``dw`` without the ``invstd`` factor, the remainder not merged."""
    import deep.ghost_bn as module

    calls = []
    original = module.ghost_forward
    monkeypatch.setattr(
        module, "ghost_forward", lambda *a, **kw: calls.append(1) or original(*a, **kw)
    )
    layer = GhostBatchNorm1d(6, 50, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-0.5, 0.5)
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(230, 6, generator=gen, dtype=torch.float64)
    x[100:] = x[100:] * 50 + 1e3  # later ghost batches far from the first
    dy = torch.randn(230, 6, generator=gen, dtype=torch.float64)
    assert layer._resolved_strategy(x) == "fused"
    got = _run(layer, x, dy)
    assert calls == [1]

    # independent: autograd through the formula, ghost batches 50, 50, 50, 80
    xs = x.clone().requires_grad_(True)
    w = layer.weight.detach().clone().requires_grad_(True)
    b = layer.bias.detach().clone().requires_grad_(True)
    outs = []
    for chunk in xs.split([50, 50, 50, 80]):
        mean = chunk.mean(0)
        var = ((chunk - mean) ** 2).mean(0)
        outs.append((chunk - mean) / torch.sqrt(var + layer.eps) * w + b)
    torch.cat(outs).backward(dy)
    for mine, ref in zip(got, (torch.cat(outs).detach(), xs.grad, w.grad, b.grad), strict=True):
        torch.testing.assert_close(mine, ref, atol=1e-12, rtol=1e-12)
