"""Regimes: lr scaling, regime adaptation (equal update counts), warm-up, schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deep.regime import Schedule, adapt_regime, build_schedule, scale_lr, steps_for_epochs


def test_scaling_rules():
    assert scale_lr(0.1, 4096, 128, "sqrt") == pytest.approx(0.1 * math.sqrt(32), rel=1e-15)
    assert scale_lr(0.1, 4096, 128, "linear") == pytest.approx(3.2, rel=1e-15)
    assert scale_lr(0.1, 4096, 128, "none") == 0.1
    assert scale_lr(0.1, 64, 256, "sqrt") == pytest.approx(0.05)


def test_adaptation_128_to_4096_multiplies_by_32():
    regime = adapt_regime(50, (10, 20, 30), 4096, 128)
    assert regime.factor == 32
    assert regime.epochs == 1600 and regime.milestones == (320, 640, 960)
    assert adapt_regime(50, (10,), 4096, 128, adapt=False).epochs == 50


def _plan(batch, adapt, n=4000, epochs=50, milestones=(10, 20, 30), warmup=0.0, scaling="sqrt"):
    return build_schedule(
        base_lr=0.1,
        batch_size=batch,
        base_batch_size=128,
        lr_scaling=scaling,
        epochs=epochs,
        milestones=milestones,
        lr_decay=0.1,
        warmup_epochs=warmup,
        n_samples=n,
        regime_adaptation=adapt,
    )


def test_updates_and_drops_match_the_small_batch_run():
    small, _, small_steps = _plan(128, False)
    large, _, large_steps = _plan(4096, True)
    assert small_steps == math.ceil(50 * 4000 / 128) == large_steps
    assert (
        large.boundaries
        == small.boundaries
        == tuple(math.ceil(m * 4000 / 128) for m in (10, 20, 30))
    )
    assert large.peak_lr == pytest.approx(small.peak_lr * math.sqrt(32))
    # without adaptation the large batch makes 32 times fewer updates
    _, _, unadapted = _plan(4096, False)
    assert unadapted == math.ceil(50 * 4000 / 4096)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60000),
    base=st.integers(1, 512),
    k=st.integers(1, 64),
    epochs=st.floats(0.01, 300, allow_nan=False),
    frac=st.floats(0.01, 0.99),
)
def test_adapted_update_count_equals_small_batch_count(n, base, k, epochs, frac):
    _, _, small = build_schedule(
        base_lr=0.1,
        batch_size=base,
        base_batch_size=base,
        lr_scaling="none",
        epochs=epochs,
        milestones=(epochs * frac,),
        lr_decay=0.5,
        warmup_epochs=0.0,
        n_samples=n,
        regime_adaptation=True,
    )
    s_large, _, large = build_schedule(
        base_lr=0.1,
        batch_size=base * k,
        base_batch_size=base,
        lr_scaling="none",
        epochs=epochs,
        milestones=(epochs * frac,),
        lr_decay=0.5,
        warmup_epochs=0.0,
        n_samples=n,
        regime_adaptation=True,
    )
    assert large == small
    assert s_large.boundaries[0] == steps_for_epochs(epochs * frac, n, base)


def test_schedule_is_piecewise_constant_per_step():
    s = Schedule(1.0, boundaries=(10, 20), factors=(0.1, 0.5))
    assert [s(k) for k in (0, 9, 10, 19, 20, 10**6)] == pytest.approx([1, 1, 0.1, 0.1, 0.05, 0.05])
    # C1's regime goes up first: factors above 1 are allowed
    assert Schedule(1e-3, (5,), (10.0,))(5) == pytest.approx(1e-2)


@given(st.lists(st.integers(0, 40), min_size=1, max_size=30))
def test_schedule_is_a_pure_function_of_the_step(steps):
    """Called in any order, any number of times, the rate of step k is the fresh schedule's:
    no hidden state. Catches a schedule that multiplies its rate in place at each boundary
    it is asked about (the authors' regime replay), or caches the last step."""
    s = Schedule(1.0, boundaries=(10, 20), factors=(0.1, 0.5), warmup_steps=5, warmup_start=0.2)
    seen = [s(k) for k in steps]
    fresh = [Schedule(1.0, (10, 20), (0.1, 0.5), 5, 0.2)(k) for k in steps]
    assert seen == fresh
    expected = [
        (0.2 + 0.8 * k / 5 if k < 5 else 1.0) * (0.1 if k >= 10 else 1) * (0.5 if k >= 20 else 1)
        for k in steps
    ]
    assert seen == pytest.approx(expected, rel=1e-12)


def test_warmup_reaches_target_at_stated_step():
    sched, _, total = _plan(4096, True, warmup=5.0, scaling="linear")
    w = sched.warmup_steps
    assert w == math.ceil(5 * 4000 / 4096)
    assert sched(0) == pytest.approx(0.1)  # starts at the base (small-batch) rate, as Goyal et al.
    assert sched(w) == pytest.approx(3.2)
    assert sched(w - 1) < 3.2
    lrs = [sched(k) for k in range(w + 1)]
    assert all(b > a for a, b in zip(lrs, lrs[1:], strict=False))  # linear increase
    assert lrs[1] - lrs[0] == pytest.approx((3.2 - 0.1) / w)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: scale_lr(-0.1, 128, 128, "sqrt"), "base_lr"),
        (lambda: scale_lr(0.1, 0, 128, "sqrt"), "batch_size"),
        (lambda: scale_lr(0.1, 128, 128, "cubic"), "rule"),
        (lambda: adapt_regime(10, (5, 3), 256, 128), "increasing"),
        (lambda: adapt_regime(10, (12,), 256, 128), "before the last epoch"),
        (lambda: Schedule(0.1, (5,), ()), "same length"),
        (lambda: Schedule(0.1, warmup_start=2.0), "warmup_start"),
        (lambda: Schedule(0.1)(-1), "step"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_arguments_follow_the_shared_validation_contract():
    """diffusion.validation: numpy integers are ints (np.int64 batch sizes were refused before),
    a wrong type is a TypeError (a bool warm-up or a float batch size was a ValueError)."""
    assert scale_lr(0.1, np.int64(512), np.int64(128), "linear") == pytest.approx(0.4)
    assert steps_for_epochs(np.float32(1.0), np.int64(1000), np.int64(100)) == 10
    sched = Schedule(np.float64(0.1), (np.int64(5),), (np.float32(0.5),))
    assert type(sched.boundaries[0]) is int and sched(5) == pytest.approx(0.05)
    with pytest.raises(TypeError, match="batch_size must be an integer, got float"):
        scale_lr(0.1, 512.0, 128, "linear")
    with pytest.raises(TypeError, match="warmup_steps must be an integer, got bool"):
        Schedule(0.1, warmup_steps=True)
    with pytest.raises(ValueError, match="boundaries must be an integer >= 0, got -1"):
        Schedule(0.1, (-1,), (0.5,))
