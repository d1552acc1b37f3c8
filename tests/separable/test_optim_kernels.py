"""The compiled optimiser kernels (separable/_kernels.py) against plain numpy references.

The references below are written from the update formulas, one sample at a time, on data
with repeated folded rows (a sample and its mirror image with the opposite label), so that
the kernels' merging of distinct rows is checked against the sum over all samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from separable._kernels import Rule, State, exp_into, make_problem, run_schedule, run_steps
from separable.data import fig1
from separable.optim import GD, SGD, Adam, Momentum, NormalizedGD, _pack_rule, optimize

STEPS = 60


def _data():
    """Fig. 1 plus one more repeated sample: rows repeat 2 and 3 times after folding."""
    ds = fig1()
    Z = np.vstack([ds.Z, ds.Z[:1]])
    return Z, 1.0 / np.linalg.norm(Z, 2) ** 2


def _grad(Z, w):
    """Gradient of sum_n log(1 + exp(-z_n . w)), sample by sample."""
    g = np.zeros_like(w)
    for z in Z:
        g -= z / (1.0 + np.exp(z @ w))
    return g


def _reference(Z, rule, eta, steps):
    """The update rules written from their formulas (numpy, no shared code)."""
    d = Z.shape[1]
    w, m, v = np.zeros(d), np.zeros(d), np.zeros(d)
    for t in range(steps):
        g = _grad(Z, w)
        if isinstance(rule, NormalizedGD):
            w = w - eta * g / np.linalg.norm(g)
        elif isinstance(rule, Adam):
            m = rule.beta1 * m + (1 - rule.beta1) * g
            v = rule.beta2 * v + (1 - rule.beta2) * g * g
            mh, vh = m / (1 - rule.beta1 ** (t + 1)), v / (1 - rule.beta2 ** (t + 1))
            w = w - eta * mh / (np.sqrt(vh) + rule.eps)
        elif isinstance(rule, Momentum) and rule.nesterov:
            # look-ahead iterate y = x + beta v of the classical Nesterov scheme
            x = w - rule.beta * m
            m = rule.beta * m - eta * g
            x = x + m
            w = x + rule.beta * m
        elif isinstance(rule, Momentum):
            m = rule.beta * m - eta * g
            w = w + m
        else:
            w = w - eta * g
    return w


def _state(d, N):
    return State(np.zeros(d), np.zeros(d), np.zeros(d), np.arange(N), np.zeros(1, np.int64))


@pytest.mark.parametrize(
    "rule",
    [GD(), Momentum(beta=0.9), Momentum(beta=0.9, nesterov=True), NormalizedGD(), Adam(0.05)],
    ids=["gd", "heavy-ball", "nesterov", "ngd", "adam"],
)
def test_full_batch_rules_match_per_sample_references(rule):
    """Every full-batch rule equals its formula summed over all samples (repeats included).

    Mutants caught: multiplicities dropped in the merged gradient (each repeated row counted
    once), a sign flip in the gradient, Nesterov's ``beta^2`` term replaced by ``beta``, Adam
    without bias correction.
    """
    Z, eta0 = _data()
    eta = (
        rule.eta
        if rule.eta is not None
        else (eta0 if not isinstance(rule, NormalizedGD) else 1.0 / np.linalg.norm(Z, 2))
    )
    problem = make_problem(Z, 0, 0.0)
    assert problem.UT.shape[1] < Z.shape[0]  # the merge is exercised
    state = _state(Z.shape[1], Z.shape[0])
    t, status = run_steps(problem, _pack_rule(rule, eta, Z.shape[0]), state, 0, STEPS, 0)
    assert (t, status) == (STEPS, 0)
    ref = _reference(Z, rule, eta, STEPS)
    np.testing.assert_allclose(state.w, ref, rtol=1e-12, atol=1e-12)


def test_problem_merges_repeated_rows_with_their_counts():
    """``make_problem`` keeps each distinct row once with its multiplicity, then pads with
    zero rows of count 0 to a multiple of 4 (whole SIMD vectors).

    Mutants caught: counts taken as ones (the merged loss would no longer be the sum), a
    padding row with a nonzero count or nonzero entries."""
    Z, _ = _data()
    problem = make_problem(Z, 0, 0.0)
    rows = {tuple(r) for r in Z}
    K = problem.UT.shape[1]
    assert problem.UT.shape[0] == 2 and K % 4 == 0 and len(rows) <= K < len(rows) + 4
    for col, c in zip(problem.UT.T[: len(rows)], problem.counts, strict=False):
        assert c == np.sum(np.all(Z == col, axis=1))
    assert {tuple(col) for col in problem.UT.T[: len(rows)]} == rows
    np.testing.assert_array_equal(problem.UT[:, len(rows) :], 0.0)
    np.testing.assert_array_equal(problem.counts[len(rows) :], 0.0)
    assert problem.counts.sum() == Z.shape[0]


@pytest.mark.parametrize("seed", range(6))
def test_distinct_rows_are_those_of_np_unique(seed):
    """The distinct rows and counts that ``make_problem`` keeps are ``np.unique(Z, axis=0)``'s,
    on integer-valued rows with many repeats, signed zeros (equal rows) and one column.

    Mutants caught: rows sorted by their last column first; a repeat counted only when it
    differs in every column (``all`` for ``any``)."""
    rng = np.random.default_rng(seed)
    Z = rng.integers(-2, 3, size=(int(rng.integers(1, 40)), 1 + seed % 3)).astype(float)
    Z[rng.random(Z.shape) < 0.2] = -0.0
    rows, counts = np.unique(Z, axis=0, return_counts=True)
    problem = make_problem(Z, 0, 0.0)
    K = rows.shape[0]
    np.testing.assert_array_equal(problem.UT[:, :K], rows.T)
    np.testing.assert_array_equal(problem.counts[:K], counts)


def test_gd_run_matches_the_numpy_loop_over_many_steps():
    """The public GD run on Fig. 1 equals the benchmark's numpy loop after 5,000 steps.

    Mutant caught: any change of the GD step in the hot loop (e.g. ``w += eta g``)."""
    ds = fig1()
    Z = ds.Z
    eta = 1.0 / np.linalg.norm(Z, 2) ** 2
    res = optimize(ds.X, ds.y, GD(eta), t_max=5000)
    w = np.zeros(2)
    for _ in range(5000):
        w = w + eta * (Z.T @ (1.0 / (1.0 + np.exp(Z @ w))))
    np.testing.assert_allclose(res.w, w, rtol=1e-11)


def test_non_finite_gradient_stops_before_the_update():
    """A gradient that overflows stops the run at that step and leaves the weights finite.

    Four rows of 1e308 give a first coordinate of the gradient of -2e308 = -inf at w = 0.
    Mutant caught: the update applied before the finiteness check (weights become inf).
    """
    Z = np.array([[1e308, 0.0], [1e308, 1.0], [1e308, 2.0], [1e308, 3.0]])
    problem = make_problem(Z, 0, 0.0)
    state = _state(2, 4)
    t, status = run_steps(problem, Rule(0, 1.0, 0.0, 0.0, 0.0, 4, False), state, 0, 5, 0)
    assert (t, status) == (0, 1)
    np.testing.assert_array_equal(state.w, [0.0, 0.0])


@pytest.mark.parametrize("kind", [0, 1], ids=["logistic-gd-kernel", "general-kernel"])
def test_a_step_with_margins_beyond_the_exponential_range_equals_numpy(kind):
    """A GD step from weights whose margins ``z . w`` reach +-1e4 (where ``exp`` overflows
    or underflows to 0) and NaN-free values in between equals the numpy step, for the
    specialised logistic kernel (``kind`` 0) and the general full-batch one (heavy ball with
    zero momentum, ``kind`` 1). Mutant caught: the out-of-range fix-up skipped (the
    polynomial's meaningless value used beyond [-708, 709])."""
    Z = np.array([[1.0, 0.0], [-1.0, 0.5], [0.3, 1.0], [0.0, -1.0], [2.0, 2.0]])
    w0 = np.array([1e4, 750.0])
    problem = make_problem(Z, 0, 0.0)
    state = _state(2, Z.shape[0])
    state.w[:] = w0
    eta = 0.1
    assert run_steps(problem, Rule(kind, eta, 0.0, 0.0, 0.0, 5, False), state, 0, 1, 0) == (1, 0)
    with np.errstate(over="ignore"):
        ref = w0 + eta * (Z.T @ (1.0 / (1.0 + np.exp(Z @ w0))))
    assert np.any(np.abs(Z @ w0) > 709)
    np.testing.assert_allclose(state.w, ref, rtol=1e-15)


def test_minibatches_without_replacement_partition_the_samples():
    """Two half-batches of one epoch sum to the full gradient.

    A step of ``1e-200`` leaves every margin at 0 to double precision, so two SGD steps with
    batches of N/2 move ``w`` by ``-eta (g_1 + g_2)``, which equals ``-eta grad L(0)`` exactly
    when the batches partition the samples. Mutants caught: a permutation position that is
    not advanced (the same batch twice), batches drawn with replacement.
    """
    Z, _ = _data()
    Z = Z[:16]
    N = Z.shape[0]
    eta = 1e-200
    problem = make_problem(Z, 0, 0.0)
    state = _state(2, N)
    state.pos[0] = N  # shuffle at the first step
    rule = _pack_rule(SGD(eta, batch_size=N // 2), eta, N)
    assert run_steps(problem, rule, state, 0, 2, 3) == (2, 0)
    np.testing.assert_allclose(state.w, -eta * _grad(Z, np.zeros(2)), rtol=1e-13)
    assert _pack_rule(SGD(eta, batch_size=N), eta, N).batch == N  # a full batch is GD


def test_vectorised_exp_is_within_two_ulp_of_numpy_and_keeps_its_edge_cases():
    """The kernels' SIMD exponential against ``np.exp``: at most 2 ulp on a dense grid of the
    whole normal range, and bit-equal outside it (overflow, subnormals, infinities, NaN).

    Mutants caught: the low half of ln 2 dropped or its sign flipped (errors of ~1e-10
    relative at large |x|), a polynomial one degree short (~10 ulp near |r| = ln 2 / 2), the
    exponent bias off by one (a factor 2), the edge fix-up skipped (finite values where
    ``np.exp`` overflows)."""
    grid = np.linspace(-708.0, 709.0, 400_001)
    rng = np.random.default_rng(0)
    x = np.concatenate([grid, rng.uniform(-1.0, 1.0, 100_000), [0.0, -0.0, 1e-300, -1e-300]])
    out = np.empty_like(x)
    exp_into(x, out)
    ref = np.exp(x)
    assert np.max(np.abs(out - ref) / np.spacing(ref)) <= 2.0
    edges = np.array([-1e300, -800.0, -745.2, -708.3, 709.5, 709.9, 800.0, np.inf, -np.inf, np.nan])
    out = np.empty_like(edges)
    exp_into(edges, out)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out, np.exp(edges))


@pytest.mark.parametrize(
    "kind, loss_id, batch",
    [(0, 0, 17), (4, 0, 17), (0, 1, 17), (0, 0, 5), (1, 0, 5)],
    ids=["gd-logistic", "adam", "gd-exp", "sgd", "sgd-heavy-ball"],
)
def test_schedule_in_one_call_equals_one_call_per_record(kind, loss_id, batch):
    """``run_schedule`` gives bit for bit the weights of ``run_steps`` called once per
    recording time with the same seeds, for the specialised logistic GD kernel, the general
    full-batch kernel and minibatches; a divergence stops both at the same step with the same
    records. Mutants caught: a segment seeded with the wrong draw, a snapshot taken before
    the segment, the step counter restarted per segment."""
    Z, eta = _data()
    problem = make_problem(Z, loss_id, 0.0)
    rule = Rule(kind, eta, 0.9, 0.999, 1e-8, batch, False)
    schedule = np.array([1, 2, 3, 5, 8, 13, 40, 100])
    seeds = np.random.default_rng(3).integers(0, 2**31 - 1, size=schedule.size)
    a = _state(2, Z.shape[0])
    times, weights, status, steps = run_schedule(problem, rule, a, schedule, seeds)
    b = _state(2, Z.shape[0])
    t = 0
    for k, target in enumerate(schedule):
        t, st = run_steps(problem, rule, b, t, int(target), int(seeds[k]))
        np.testing.assert_array_equal(weights[k], b.w)
    assert (status, steps, t) == (0, 100, 100)
    np.testing.assert_array_equal(times, schedule)
    # a step size that overflows: both stop at the same step, with the same records
    big = Rule(kind, 1e306, 0.9, 0.999, 1e-8, batch, False)
    times, weights, status, steps = run_schedule(
        problem, big, _state(2, Z.shape[0]), schedule, seeds
    )
    c, t, kept = _state(2, Z.shape[0]), 0, []
    for k, target in enumerate(schedule):
        t, st = run_steps(problem, big, c, t, int(target), int(seeds[k]))
        if st:
            break
        kept.append(c.w.copy())
    assert status == 1 and steps == t and len(weights) == len(kept)
